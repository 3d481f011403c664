// Command wrong-abi is a well-formed module whose reeve_abi_version returns
// 1, an ABI this reeve no longer speaks (raw ABI, no SDK).
package main

import "unsafe"

var in, out []byte

//go:wasmexport reeve_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport reeve_alloc
func alloc(n int32) int32 {
	in = make([]byte, max(n, 1))
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

// decide answers nothing useful; reeve must refuse the module before it
// calls it.
//
//go:wasmexport reeve_decide
func decide(ptr, n int32) int64 { return -1 }

func main() {}
