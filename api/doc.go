// Package api is the JSON reeve shows the world: the bodies of the admin
// HTTP API (docs/admin-api.md) and the events it publishes on NATS
// (docs/events.md), with the NATS subjects they go to.
//
// These types are a public contract, kept apart from the Raft state they
// are made from: package admin converts raft and policy values into them
// at the edge, package events converts raft events (events.FromRaft), the
// CLI and any other client decode them, and a change to the Raft snapshot
// format never changes them by accident (nor the other way round). Golden
// files pin each format on its own: packages admin and events test the
// JSON of every endpoint and event, package raft the snapshot bytes.
//
// The package depends on the standard library only, so a client can
// import it without pulling in the server.
//
// Usage, from a client:
//
//	resp, err := http.Get("http://127.0.0.1:9644/v1/status")
//	if err != nil { ... }
//	defer resp.Body.Close()
//	var st api.Status
//	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil { ... }
//	fmt.Println(st.Summary()) // nodes alive 3/3, leading 2 of 6 partitions, ...
//
//	// The subject of every leader change of topic line1.temp in cluster site1:
//	subject := "reeve.site1." + api.EventLeaderChanged + "." + api.TopicToken("line1.temp") + ".*"
package api
