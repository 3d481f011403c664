// Command trap executes a WebAssembly unreachable instruction in every
// reeve_decide, a trap no Go recover can catch, not even the SDK's.
package main

import "github.com/reeve-edge/reeve/wasm/sdk"

// unreachable is the instruction itself, in trap_wasm.s.
func unreachable()

func init() {
	sdk.Handle(func(sdk.Input) sdk.Decision {
		unreachable()
		return sdk.Keep("unreachable")
	})
}

func main() {}
