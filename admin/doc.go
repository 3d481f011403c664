// Package admin is a node's admin HTTP endpoint: health and readiness
// probes, /metrics in the Prometheus text format, the JSON API
// (docs/admin-api.md) and the status page.
//
// The answers are package api's types, converted from the node's Raft
// state and election records in this package (convert.go), so no Raft
// state type reaches the wire. The server reads the node through Node,
// which package appliance fills in; it starts nothing but its own HTTP
// server, which Close stops.
package admin
