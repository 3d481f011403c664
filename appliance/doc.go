// Package appliance wires reeve together and runs it. Main hands the
// command line to package cli, giving it the function that runs a node
// for reeve serve.
//
// Start builds a node from a *config.Config, in dependency order: the Raft
// store, the Kafka listener, the election policies (a wasm runtime over
// the policy folder), the event link, publisher and recorder (package
// events, with an embedded NATS server when none is configured), the
// election controller, and the admin endpoint (package admin). The
// adapters between the parts live here: kafkaCluster and policyMetadata
// present raft.Store as the interfaces packages kafka and policy declare.
// A lifecycle owns every part and goroutine Start starts; Close undoes
// them in reverse order and returns when all have ended.
//
// Around a running node, serve handles signals (SIGHUP reloads, SIGTERM
// moves leadership away before exiting) and speaks systemd's notify
// protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING).
//
// Tests inject faults through Options; a production build passes none
// (main's nohooks.go), so no environment variable reaches the node.
//
// It is the only package that knows every other part; only main imports
// it.
//
// Usage, from main:
//
//	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr, appliance.Options{}))
package appliance
