// Package appliance wires reeve together: it parses the command line, builds
// the logger, opens the Raft store, serves the admin endpoint (health,
// readiness and the JSON API the CLI uses), and handles signals. It is the
// only package that knows every other part; nothing imports it.
//
// Usage, from main:
//
//	os.Exit(appliance.Main(os.Args[1:], os.Stdout, os.Stderr))
package appliance
