package api

import "fmt"

// Status is the body of GET /v1/status: the cluster at a glance, as the
// answering node sees it (its heartbeat table, its applied metadata, its
// decision log).
type Status struct {
	Cluster    string            `json:"cluster"`
	NodeID     uint64            `json:"node_id"`
	Version    string            `json:"version"`
	Ready      bool              `json:"ready"`
	Nodes      []NodeStatus      `json:"nodes"`
	Partitions PartitionsSummary `json:"partitions"`
	// Elections are the answering node's latest decisions, newest last.
	Elections []Election `json:"elections"`
}

// NodeStatus is one node with its liveness as the answering node sees it.
type NodeStatus struct {
	Node
	Alive          bool    `json:"alive"`
	HeartbeatAgeMs float64 `json:"heartbeat_age_ms"` // 0 for the answering node itself
	PartitionsLed  int     `json:"partitions_led"`
	GroupsLed      int     `json:"raft_groups_led"`
}

// PartitionsSummary counts partitions by health.
type PartitionsSummary struct {
	Total           int `json:"total"`
	Offline         int `json:"offline"`          // no leader
	UnderReplicated int `json:"under_replicated"` // ISR smaller than the replica set
	// OfflineList names the first offline partitions (up to 20),
	// topic-partition.
	OfflineList []string `json:"offline_list,omitempty"`
}

// Summary is the status in one line, for systemd's STATUS= and the log.
func (st Status) Summary() string {
	led := 0
	for _, n := range st.Nodes {
		if n.ID == st.NodeID {
			led = n.PartitionsLed
		}
	}
	p := st.Partitions
	return fmt.Sprintf("nodes alive %d/%d, leading %d of %d partitions, %d offline, %d under-replicated",
		st.Alive(), st.Active(), led, p.Total, p.Offline, p.UnderReplicated)
}

// Active counts the active members: a joining or removed node is not one
// the cluster waits for.
func (st Status) Active() int {
	n := 0
	for _, node := range st.Nodes {
		if node.State == NodeActive {
			n++
		}
	}
	return n
}

// Alive counts the active nodes that are alive.
func (st Status) Alive() int {
	n := 0
	for _, node := range st.Nodes {
		if node.Alive && node.State == NodeActive {
			n++
		}
	}
	return n
}

// Partitions is the body of GET /v1/partitions: every partition, with what
// each replica looks like from the answering node.
type Partitions struct {
	NodeID uint64 `json:"node_id"` // the answering node
	// Stale is true when the metadata is the answering node's local view
	// (?stale=true), false when it was read after a Raft barrier.
	Stale bool `json:"stale"`
	// Offsets is true when replicas were asked for their log end offsets
	// (the default; ?offsets=false skips it).
	Offsets    bool            `json:"offsets"`
	Partitions []PartitionInfo `json:"partitions"`
}

// PartitionInfo is one partition's replicated state and Raft group, and
// what each of its replicas looks like from the answering node.
type PartitionInfo struct {
	PartitionState
	// ReplicaStates follows Replicas' order (preferred leader first).
	ReplicaStates []ReplicaInfo `json:"replica_states"`
	// MaxLag is the largest Lag among the in-sync followers, -1 when no
	// follower's lag is known.
	MaxLag int64 `json:"max_lag"`
}

// ReplicaInfo is one replica of a partition.
type ReplicaInfo struct {
	Node   uint64 `json:"node"`
	Leader bool   `json:"leader"`
	InISR  bool   `json:"in_isr"`
	Alive  bool   `json:"alive"` // heard within the leader timeout by the answering node
	// LogEndOffset is where this replica's log ends, -1 when unknown (the
	// node is dead, did not answer, or offsets were not asked).
	LogEndOffset int64 `json:"log_end_offset"`
	// Lag is the leader's log end offset minus this replica's: 0 for the
	// leader, -1 when either is unknown.
	Lag int64 `json:"lag"`
}
