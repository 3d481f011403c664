// Command later passes reeve's self-test, then misbehaves in every real
// election round as its setting "mode" says: "loop" never returns (the
// per-call deadline must stop it), "trap" panics (the instance must be
// replaced). It uses the raw ABI, no SDK.
package main

import (
	"strings"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

var (
	in, out []byte
	mode    string
	spin    int
)

//go:wasmexport reeve_abi_version
func abiVersion() int32 { return abi.Major }

//go:wasmexport reeve_alloc
func alloc(n int32) int32 {
	in = make([]byte, max(n, 1))
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

func input(ptr, n int32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(uintptr(ptr))), n) }

//go:wasmexport reeve_init
func initSettings(ptr, n int32) int32 {
	settings, err := abi.DecodeSettings(input(ptr, n))
	if err != nil {
		return 1
	}
	for _, s := range settings {
		if s.Key == "mode" {
			mode = s.Value
		}
	}
	if mode != "loop" && mode != "trap" {
		return 1
	}
	return 0
}

//go:wasmexport reeve_decide
func decide(ptr, n int32) int64 {
	b, err := abi.DecodeBatch(input(ptr, n))
	if err != nil {
		return -1
	}
	for _, p := range b.Partitions {
		if strings.HasPrefix(p.Topic, "reeve") {
			continue // the self-test
		}
		if mode == "trap" {
			panic("later: a real round")
		}
		for {
			spin++
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
