// Package guesttest holds no code, only tests: election policies written
// in Go and built as WebAssembly guests (wasm/examples, the hostile ones in
// wasm/testdata/hostile), run the way a node runs them — policy.Rules over
// wasm.Modules — to check what the policy and wasm packages' own tests
// cannot alone: a Go guest decides as the built-in policy does, modules
// swap under load without a mixed round, and hostile modules are refused
// or fall back. BenchmarkPolicyDecide and BenchmarkPolicyCompile measure a
// decision's and a compile's cost (make bench).
package guesttest
