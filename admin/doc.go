// Package admin is a node's admin HTTP endpoint: health and readiness
// probes, /metrics in the Prometheus text format, the JSON API
// (docs/admin-api.md) and the status page.
//
// A guard stands in front of every route (guard.go): the Host header must
// name the node, a state-changing request must be JSON and not come from
// another site's web page, and with admin.token_file set requests carry
// its token (Server.SetToken replaces it on a reload).
//
// The answers are package api's types, converted from the node's Raft
// state and election records in this package (mostly in convert.go), so
// no Raft state type reaches the wire. The server reads the node through
// Node, which package appliance fills in, and runs manual elections
// through the Elections interface declared here. It starts no goroutine
// of its own beyond its HTTP server's: Serve runs in the caller's, and
// Close stops the server, letting requests in flight finish until its
// context ends.
//
// Usage:
//
//	srv, err := admin.Listen("127.0.0.1:9644", admin.Node{Store: store, Elections: elections,
//		Decisions: decisions, Liveness: live, Policies: rules, Metrics: set,
//		LeaderTimeout: 10 * time.Second, Version: version, Log: log})
//	if err != nil { ... } // the port is taken
//	go srv.Serve()        // returns nil after Close
//	...
//	srv.Close(ctx) // requests in flight may finish until ctx ends
package admin
