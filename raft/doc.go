// Package raft is reeve's source of truth for cluster metadata: one
// Dragonboat NodeHost per process running a cluster group (node registry,
// topics, replica assignment) and K partition groups (per-partition
// replicas, leader, leader epoch, ISR and partition epoch).
//
// Every change is a typed, versioned command committed through Raft; the
// state machines are deterministic (no clock, no randomness, no I/O in
// Update), and partition updates are compare-and-set on the leader and
// partition epochs, so a stale or duplicated proposal is rejected, never
// applied twice. The leader of each partition group is the controller of
// that group's partitions.
//
// Usage:
//
//	s, err := raft.Open(raft.Config{NodeID: 1, ClusterName: "site-a",
//		RaftAddress: "10.0.0.1:9093", DataDir: "/var/lib/reeve",
//		InitialMembers: map[uint64]string{1: "10.0.0.1:9093", 2: "10.0.0.2:9093", 3: "10.0.0.3:9093"},
//		PartitionGroups: 4, RTT: 50 * time.Millisecond, ElectionRTT: 20, HeartbeatRTT: 2})
//	if err != nil { ... }
//	defer s.Close()
//	if err := s.WaitReady(ctx); err != nil { ... }
//	t, err := s.CreateTopic(ctx, raft.TopicSpec{Name: "orders", Partitions: 6, ReplicationFactor: 3})
//	feed := s.Changes() // committed changes, in apply order per group
//
// # Notes
//
// Reads through the view methods (Topic, Partition, Nodes, ...) come from
// the local replica and may lag the leader; call Barrier first where a read
// must be linearizable.
package raft
