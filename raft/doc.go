// Package raft is reeve's source of truth for cluster metadata: one
// Dragonboat NodeHost per process running a cluster group (node registry,
// topics, replica assignment, producer id blocks) and K partition groups
// (per-partition replicas, leader, leader epoch, ISR and partition epoch,
// and consumer groups' committed offsets). Nodes exchange Raft messages
// over reeve's own transport (transport.go): framed TCP opened by a hello
// carrying an id derived from the cluster name, so nodes of different
// clusters refuse each other. That id is no secret: every message a peer
// sends is checked before Dragonboat sees it (transport_guard.go), and
// connections are bounded in time and frame size, but over plain TCP a
// node cannot tell a member from one that forges its id. With
// Config.NodeCert (reeve.toml's tls section) every connection is mutual
// TLS 1.3 against the cluster CA, the hello inside it (transport_tls.go):
// a listener believes messages and chunks only from the node the dialer's
// certificate names, and a dialer talks only to the node it knows at the
// address it dialed. TLS and plain nodes cannot talk, so a cluster turns
// it on everywhere at once.
//
// Every change is a typed, versioned command committed through Raft; the
// state machines are deterministic (no clock, no randomness, no I/O in
// Update), and partition updates are compare-and-set on the leader and
// partition epochs, so a stale or duplicated proposal is rejected, never
// applied twice. The leader of each partition group is the controller of
// that group's partitions.
//
// Every group also keeps an event outbox (outbox.go): partition groups
// append leader and ISR changes in the same apply as the change, anyone can
// append node and policy events, and the group's leader publishes them and
// acknowledges its progress through Raft, so a new leader resumes there.
//
// Usage:
//
//	s, err := raft.Open(raft.Config{NodeID: 1, ClusterName: "site-a",
//		RaftAddress: "10.0.0.1:9093", DataDir: "/var/lib/reeve",
//		InitialMembers: map[uint64]string{1: "10.0.0.1:9093", 2: "10.0.0.2:9093", 3: "10.0.0.3:9093"},
//		PartitionGroups: 4, RTT: 50 * time.Millisecond, ElectionRTT: 20, HeartbeatRTT: 2,
//		NodeCert: nc}) // nc from config.LoadNodeCert; nil for plain TCP
//	if err != nil { ... }
//	defer s.Close()
//	if err := s.WaitReady(ctx); err != nil { ... }
//	t, err := s.CreateTopic(ctx, raft.TopicSpec{Name: "orders", Partitions: 6, ReplicationFactor: 3})
//	feed := s.Changes() // committed changes, in apply order per group
//
//	// An event publisher, while this node leads group g:
//	for {
//		wake := s.OutboxChanged() // before reading, so no append is missed
//		events, _ := s.PendingEvents(g, 256)
//		if n := publish(events); n > 0 { // each with Nats-Msg-Id: events[i].ID
//			err = s.AckEvents(ctx, g, events[n-1].Seq)
//		}
//		<-wake
//	}
//
// # Notes
//
// Reads through the view methods (Topic, Partition, Nodes, ...) come from
// the local replica and may lag the leader; call Barrier first where a read
// must be linearizable.
package raft
