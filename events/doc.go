// Package events carries the cluster's events from the Raft outboxes to
// NATS. docs/events.md describes what subscribers see.
//
// Events are recorded in Raft first: partition groups append leader and
// ISR events themselves, in the same entry as the change; a Recorder
// appends the node and policy events a node observes to the cluster
// group's outbox. A Publisher on each node drains the outboxes of the
// groups that node leads onto NATS, in order, and records its progress
// through Raft, so delivery is at least once across leader changes. A
// Link is the NATS connection, to configured servers or to a server
// embedded in the process. With events off, Discard keeps the outboxes
// from filling.
//
// What goes on the wire is package api's Envelope and Event, converted
// from raft.Event here (FromRaft) and nowhere else.
package events
