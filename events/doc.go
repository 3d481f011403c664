// Package events carries the cluster's events from the Raft outboxes to
// NATS. docs/events.md describes what subscribers see.
//
// Events are recorded in Raft first: partition groups append leader and
// ISR events themselves, in the same entry as the change; a Recorder
// appends the events a node observes to the cluster group's outbox, the
// policy events it is handed and, on the cluster group's leader, node_up
// and node_down from the liveness table. A Publisher on each node drains
// the outboxes of the groups that node leads onto NATS, in order, and
// records its progress through Raft, so delivery is at least once across
// leader changes. A Link is the NATS connection, to configured servers or
// to a server embedded in the process (with a JetStream stream when
// events.embedded_jetstream is on). With events off, Discard keeps the
// outboxes from filling.
//
// What goes on the wire is package api's Envelope and Event, converted
// from raft.Event here (FromRaft) and nowhere else.
//
// Usage, as package appliance wires it:
//
//	link, err := events.Connect(ctx, cfg, log) // embedded server when events.nats_url is ""
//	if err != nil { ... }
//	defer link.Close()
//	pub := events.NewPublisher(store, link.Conn(), cfg.Events.SubjectPrefix, log, events.PublisherOptions{})
//	go pub.Run(ctx)
//	rec := events.NewRecorder(store, live, time.Second, 10*time.Second, log)
//	go rec.Run(ctx)
//	rec.Record(events.PolicyLoad("prefer-label.wasm", digest, nil, "line1.*")) // never blocks
package events
