// Package cli is the reeve command line. Main dispatches: reeve serve
// loads the configuration and hands it to the Serve function package
// appliance gives it; config check works on a local file, and policy check
// and policy test run a module locally (with packages wasm and policy);
// events --follow subscribes to NATS; the other commands (topic, node,
// elect, status, partitions, elections) are clients of a node's admin API.
//
// A client knows the API, not the server: it decodes the admin API's and
// the events' JSON into package api's types, and never imports admin,
// events or raft (.ci/deps-check keeps it so).
//
// Main returns the exit status: 0 done, 1 the command failed, 2 bad
// arguments or a bad configuration file.
//
// Usage, with serve a Serve that runs a node until it stops (package
// appliance gives one):
//
//	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, version, serve))
package cli
