// Package api is the JSON reeve shows the world: the bodies of the admin
// HTTP API (docs/admin-api.md) and the events it publishes on NATS
// (docs/events.md), with the NATS subjects they go to.
//
// These types are a public contract, kept apart from the Raft state they
// are made from: the admin server and the event publisher convert raft and
// policy values into them at the edge, the CLI and any other client decode
// them, and a change to the Raft snapshot format never changes them by
// accident (nor the other way round). Golden files pin both: the admin and
// events packages test the JSON of every endpoint and event, package raft
// the snapshot bytes.
//
// The package depends on the standard library only, so a client can
// import it without pulling in the server.
package api
