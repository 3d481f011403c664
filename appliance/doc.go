// Package appliance wires reeve together and runs it. Main parses the
// command line: reeve serve runs a node; config check and policy
// check/test work on local files; events follows NATS; the other
// subcommands (topic, node, elect, status, partitions, elections) are
// clients of a node's admin API.
//
// Start builds a node from a *config.Config: the Raft store, the Kafka
// listener, the election policies (a wasm runtime over the policy folder)
// and the election controller, the NATS connection (an embedded server
// when none is configured) with the event publisher, and the admin HTTP
// endpoint (health, readiness, /metrics, the JSON API and the status
// page). The adapters between the parts live here: kafkaCluster and
// policyMetadata present raft.Store as the interfaces packages kafka and
// policy declare. Around a running node, serve handles signals (SIGHUP
// reloads, SIGTERM moves leadership away before exiting) and speaks
// systemd's notify protocol (READY, STATUS, WATCHDOG, RELOADING,
// STOPPING).
//
// It is the only package that knows every other part; only main imports
// it.
//
// Usage, from main:
//
//	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr))
package appliance
