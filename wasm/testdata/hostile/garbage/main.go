// Command garbage answers reeve_decide with bytes that do not decode (raw
// ABI, no SDK); the setting mode picks another malformed answer: "count"
// (one decision too few), "kind" (an unknown decision kind), "short" (a
// header promising more than follows), "outside" (an answer past the end
// of memory) or "fail" (a negative result, reported failure).
package main

import (
	"encoding/binary"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

var (
	in, out []byte
	mode    string
)

//go:wasmexport reeve_abi_version
func abiVersion() int32 { return abi.Major }

//go:wasmexport reeve_alloc
func alloc(n int32) int32 {
	in = make([]byte, max(n, 1))
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport reeve_init
func initSettings(ptr, n int32) int32 {
	if n == 0 {
		return 0
	}
	settings, err := abi.DecodeSettings(in[:n])
	if err != nil {
		return 1
	}
	for _, s := range settings {
		if s.Key == "mode" {
			mode = s.Value
		}
	}
	return 0
}

//go:wasmexport reeve_decide
func decide(ptr, n int32) int64 {
	partitions := 0
	if b, err := abi.DecodeBatch(in[:n]); err == nil {
		partitions = len(b.Partitions)
	}
	keep := func(k int) []abi.Decision {
		ds := make([]abi.Decision, max(k, 0))
		for i := range ds {
			ds[i] = abi.Decision{Kind: abi.DecideKeep, Reason: "garbage"}
		}
		return ds
	}
	switch mode {
	case "count":
		out = abi.AppendDecisions(out[:0], keep(partitions-1))
	case "kind":
		ds := keep(partitions)
		if len(ds) > 0 {
			ds[0].Kind = 7
		}
		out = abi.AppendDecisions(out[:0], ds)
	case "short":
		out = abi.AppendDecisions(out[:0], keep(partitions))
		binary.LittleEndian.PutUint32(out[2:], uint32(partitions+5))
	case "outside":
		return int64(0x7fff_0000)<<32 | 0x10_0000 // 2 GiB in, far past any cap
	case "fail":
		return -7
	default:
		out = append(out[:0], "\xde\xad\xbe\xef this is not an answer"...)
	}
	return int64(uintptr(unsafe.Pointer(&out[0])))<<32 | int64(len(out))
}

func main() {}
