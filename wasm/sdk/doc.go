// Package sdk is what an election policy written in Go imports: it turns
// reeve's binary policy ABI (docs/policy-abi.md, package abi) into one
// function from a typed Input to a Decision, and builds to a WebAssembly
// module that reeve runs sandboxed when a partition needs a leader.
//
// A policy is a main package that registers its handler from an init
// function:
//
//	package main
//
//	import "github.com/reeve-edge/reeve/wasm/sdk"
//
//	func init() { sdk.Handle(decide) }
//
//	// decide elects the first live in-sync replica other than the leader
//	// when the leader is gone, and otherwise keeps the leader.
//	func decide(in sdk.Input) sdk.Decision {
//		if in.Reason != sdk.LeaderTimeout && in.Reason != sdk.ControlledShutdown {
//			return sdk.Keep("the leader is fine")
//		}
//		for _, r := range in.Replicas {
//			if r.ID != in.Leader && r.Alive && r.InISR {
//				return sdk.Elect(r.ID, "first live in-sync replica")
//			}
//		}
//		return sdk.FirstISR(in) // unclean election, or offline
//	}
//
//	func main() {}
//
// Build it as a WASI reactor, whose main is never run:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o my-policy.wasm .
//
// The package builds natively too, so a policy's decide can be unit tested
// with go test like any other function. wasm/examples holds complete
// policies; make policies builds them.
//
// FirstISR decides as reeve's built-in policy does, and FirstISROf does the
// same among the replicas a predicate admits, so a policy that only rules
// some nodes out is one line (see its example).
//
// # Versions
//
// The SDK speaks policy ABI abi.Major.abi.Minor: its module exports both,
// and reeve runs it when reeve's major is the same and its minor the same
// or later. A reeve of a later minor adds fields the SDK skips, so a
// module needs rebuilding only to use them, or when the major changes.
// docs/policy-abi.md says how to depend on the SDK from a module outside
// reeve's repository.
//
// # Settings
//
// A policy's settings table in reeve's configuration reaches the function
// registered with Init, once, before the first decision; an error refuses
// the module:
//
//	func init() {
//		sdk.Init(func(settings map[string]string) error {
//			label = settings["label"]
//			if label == "" {
//				return errors.New("setting label is required")
//			}
//			return nil
//		})
//		sdk.Handle(decide)
//	}
//
// # Rules for handlers
//
// reeve calls the handler once per partition, in input order, never
// concurrently. The Input and its Replicas are reused for the next call
// and must not be kept; a Replica's Labels map is shared by every replica
// of that node and must not be modified.
//
// Whatever a handler returns, reeve checks it: a new leader must be a
// replica that is alive and in the ISR, or alive when the topic allows
// unclean election. A decision that fails the check is replaced by the
// built-in first-ISR policy's for that partition.
//
// A handler that panics fails the whole batch: the SDK recovers the panic,
// logs it with the partition, and reports failure, and reeve decides that
// round with its built-in policy. The module stays loaded. A trap (running
// out of memory, for instance) or overrunning the deadline discards the
// instance instead.
//
// Log and its helpers write to reeve's log, attributed to the policy and
// rate limited, so a handler should not log for every partition of a
// large batch. Now is the wall clock as reeve reports it.
//
// # Performance and memory
//
// The SDK decodes into buffers it reuses, interns topic names and builds a
// node's label map only when its labels change, so deciding a batch
// allocates nothing but what the handler allocates. Constant reason
// strings keep it that way. A reason built per decision with fmt is
// garbage, and slow: fmt.Sprintf costs more than the rest of a decision.
//
// In a module the SDK turns Go's percentage-based collection off and sets
// a soft memory limit of 8 MiB instead (see debug.SetMemoryLimit), and it
// yields to the Go scheduler every 1024 partitions, without which a
// collection in a single-threaded module could not finish. A policy whose
// handler allocates nothing starts in 3 MiB of memory, needs about 8 MiB
// for a batch of 10,000 partitions, and never collects; one that formats a
// reason per decision peaks at about 12 MiB on that batch and collects as
// it goes, a pause the call that collects pays for. Both fit reeve's
// default cap of 16 MiB.
//
// reeve checks each call's deadline at every function entry and loop
// header of the module, and Go's WebAssembly passes a loop header at every
// taken jump; a check costs a few nanoseconds. What costs more is Go's
// runtime working a byte at a time, as it compares and hashes strings: the
// SDK interns topic names and compares labels a word at a time, and a
// handler that makes a few passes over its replicas adds little.
//
// A Go module imports, besides reeve's log and now_unix_ms, the WASI
// functions Go's runtime and its os package need to start, including
// fd_fdstat_set_flags, which package os calls on standard input and output
// as it initializes.
package sdk
