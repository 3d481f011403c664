// Command grow allocates memory without bound in reeve_decide, in chunks
// that double, until the memory cap stops it: Go's runtime then fails with
// "out of memory" and aborts with an unreachable instruction, a trap.
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

// hoard keeps every chunk reachable, so the collector cannot free any.
// Each chunk takes fresh pages from memory.grow, so it is real memory
// whether or not it is written. The chunks double so that the cap is
// reached within a call's deadline: growing the memory a megabyte at a
// time takes wazero milliseconds a step.
var hoard [][]byte

func init() {
	sdk.Handle(func(sdk.Input) sdk.Decision {
		for size := 1 << 20; ; size *= 2 {
			hoard = append(hoard, make([]byte, size))
		}
	})
}

func main() {}
