// Package appliance wires reeve together and runs it. Main hands the
// command line to package cli, giving it the function that runs a node
// for reeve serve, with the logger package logging builds.
//
// Start builds a node from a *config.Config, in dependency order: the Raft
// store, the Kafka listener, the election policies (a wasm runtime over
// the policy folder), the event link, publisher and recorder (package
// events, with an embedded NATS server when none is configured; with
// events off, only a goroutine that discards the outboxes), the election
// controller, the admin endpoint (package admin), and last the serving
// loops and background goroutines. The adapters between the parts live
// here: kafkaCluster and policyMetadata present raft.Store as the
// interfaces packages kafka and policy declare, electionsAPI gives admin
// the manual elections, and quorumWatch tells kafka whether the node
// still reaches its Raft quorum.
//
// A lifecycle (lifecycle.go) owns every part and goroutine Start starts.
// Close cancels them all, undoes the steps in reverse order, and returns
// only when every goroutine Start started has ended; a Start that fails
// part way is undone the same way.
//
// Around a running node, serve handles signals (SIGHUP reloads, SIGTERM
// moves leadership away before exiting, SIGINT exits) and speaks systemd's
// notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING); the
// goroutines it adds for systemd are its own and end before Close.
//
// Tests inject faults through Options. Only a binary built with -tags
// reeve_testhooks (main's testhooks.go) fills them from environment
// variables; a production build passes none (main's nohooks.go).
//
// It is the only package that knows every other part; only main imports
// it.
//
// Usage, from main:
//
//	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr, appliance.Options{}))
//
// and in process, as the tests run a node:
//
//	s, err := appliance.Start(cfg, log, appliance.Options{})
//	if err != nil { ... }
//	defer s.Close() // returns once every goroutine Start started has ended
package appliance
