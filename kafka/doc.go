// Package kafka will hold reeve's Kafka wire protocol: the listener, one file
// per API family, the partition logs on disk, replication (leader and
// follower side) and the group coordinator.
//
// It reads partition metadata through an interface it declares and that
// raft.Store satisfies, so it never imports raft. The package is empty until
// the Kafka protocol work lands (see DESIGN.md, "Data flow").
package kafka
