// Package wasm runs election policies written as WebAssembly modules, in a
// wazero sandbox: no file system, network, environment or arguments, a
// memory cap, a deadline on every call, bounded tables, call stack, file
// size and compile work, and the module's output routed to the daemon's
// log. The ABI and its encoding are in package wasm/abi and
// docs/policy-abi.md.
//
// A Runtime compiles modules (with a compilation cache on disk); a Module
// is compiled code whose imports and exports were checked; a Policy is an
// instance of a module with its settings, self-tested, ready to decide: a
// policy.Policy. A Policy that traps or overruns its deadline discards its
// instance and makes a fresh one for the next call. Modules keeps a policy
// folder's compiled modules and each file's last good one on disk, for
// policy.Rules.
//
//	rt, err := wasm.NewRuntime(ctx, wasm.Config{CacheDir: dir, Logger: log})
//	code, err := rt.ReadModule("prefer-label.wasm")
//	mod, err := rt.Compile(ctx, "prefer-label.wasm", code)
//	p, err := mod.Instantiate(ctx, wasm.Settings(map[string]string{"label": "power", "value": "mains"}), policy.Shape{})
//	decisions, err := p.Decide(ctx, inputs)
//
// The safety check of every answer and the fallback are package policy's.
//
// # Rationale
//
// One instance per Policy, calls serialized by a mutex: a WASI reactor's
// memory is not safe for concurrent calls, and elections are rare. A call
// past its deadline is stopped and its instance closed; the next call
// instantiates again from the compiled module, which costs microseconds to
// a few milliseconds.
//
// The deadline is enforced by the module itself, instrumented at Compile
// (instrument.go): it counts down a budget of work at function entries and
// loop headers and asks the host for more when it runs out, and the host
// stops a call whose deadline has passed. wazero's own mechanism,
// WithCloseOnContextDone, leaves the machine code for Go at every loop
// header, about 25 ns a time, and Go's WebAssembly passes one at every
// taken jump: it made a Go policy four to five times slower than its code.
// It also never stopped recursion that fans out without looping, which the
// instrumented module pays for at every function entry.
package wasm
