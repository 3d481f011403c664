//go:build wasip1

package sdk

import (
	"runtime/debug"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// The module's imports and exports, as docs/policy-abi.md defines them, and
// the collector's settings for a module. The exports only convert between
// pointers and slices; the work is in engine.go, which has no build tag so
// that its tests run natively.

// memoryLimit is the soft limit on the memory Go's runtime manages in a
// module, set so that all of the module's memory, with the 2.5 MiB of
// static data Go places before its heap, stays under reeve's default cap of
// 16 MiB: a handler that formats a reason per decision peaks at about
// 12 MiB on a batch of 10,000 partitions. The collector runs only as the
// limit nears, never on a percentage of the live heap (GOGC is off), so a
// handler that allocates nothing never pays for a collection, not even
// while the first large batch sizes the SDK's buffers. That matters
// because reeve bounds every call with a deadline, under which a
// collection costs tens of milliseconds per few megabytes of heap: with
// Go's default the first batch of 10,000 partitions took about twice reeve's
// default deadline of 50 ms. An author whose module runs under a larger
// cap may call debug.SetMemoryLimit in an init function, which runs after
// this one.
const memoryLimit = 8 << 20

func init() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(memoryLimit)
}

//go:wasmimport reeve log
func hostLog(level int32, msg string)

//go:wasmimport reeve now_unix_ms
func hostNow() int64

//go:wasmexport reeve_abi_version
func exportABIVersion() int32 { return abi.Major }

//go:wasmexport reeve_abi_minor
func exportABIMinor() int32 { return abi.Minor }

//go:wasmexport reeve_alloc
func exportAlloc(size int32) uint32 {
	buf := rt.alloc(int(size))
	if buf == nil {
		Log(LevelError, "reeve_alloc: size out of range")
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport reeve_decide
func exportDecide(ptr, n uint32) int64 {
	data, err := rt.inputAt(uintptr(ptr), int(n))
	if err == nil {
		var out []byte
		if out, err = rt.decide(data); err == nil {
			return int64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | int64(len(out))
		}
	}
	Log(LevelError, "reeve_decide: "+err.Error())
	return -1
}

//go:wasmexport reeve_init
func exportInit(ptr, n uint32) int32 {
	data, err := rt.inputAt(uintptr(ptr), int(n))
	if err == nil {
		err = rt.init(data)
	}
	if err != nil {
		Log(LevelError, "reeve_init: "+err.Error())
		return 1
	}
	return 0
}
