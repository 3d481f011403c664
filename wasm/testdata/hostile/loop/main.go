// Command loop never returns from reeve_decide, not even for the self-test:
// it tests the per-call deadline (Go's WebAssembly code is never preempted,
// so only the host can stop it).
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

var spins uint64 // a global, so that the loop is not optimized away

func init() {
	sdk.Handle(func(sdk.Input) sdk.Decision {
		for {
			spins++
		}
	})
}

func main() {}
