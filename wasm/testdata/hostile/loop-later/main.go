// Command loop-later passes reeve's self-test, then never returns from a
// real election round: it tests the per-call deadline on a loaded module.
// It uses the raw ABI (no SDK).
package main

import (
	"strings"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

var in, out []byte

//go:wasmexport reeve_abi_version
func abiVersion() int32 { return abi.Version }

//go:wasmexport reeve_alloc
func alloc(n int32) int32 {
	in = make([]byte, max(n, 1))
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

var spin int

//go:wasmexport reeve_decide
func decide(ptr, n int32) int64 {
	b, err := abi.DecodeBatch(unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n))
	if err != nil {
		return -1
	}
	for _, p := range b.Partitions {
		if !strings.HasPrefix(p.Topic, "reeve") {
			for {
				spin++
			}
		}
	}
	ds := make([]abi.Decision, len(b.Partitions))
	for i := range ds {
		ds[i] = abi.Decision{Kind: abi.DecideKeep, Reason: "self-test"}
	}
	out = abi.AppendDecisions(out[:0], ds)
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}

func main() {}
