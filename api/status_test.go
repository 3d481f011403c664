package api

import "testing"

// TestStatus_Summary: the line systemd shows counts active members only,
// so a removed node does not leave a healthy cluster looking degraded.
func TestStatus_Summary(t *testing.T) {
	st := Status{NodeID: 1, Nodes: []NodeStatus{
		{Node: Node{ID: 1, State: NodeActive}, Alive: true, PartitionsLed: 2},
		{Node: Node{ID: 2, State: NodeActive}, Alive: false},
		{Node: Node{ID: 3, State: NodeRemoved}},
		{Node: Node{ID: 4, State: NodeJoining}, Alive: true},
	}, Partitions: PartitionsSummary{Total: 3, Offline: 1, UnderReplicated: 2}}
	want := "nodes alive 1/2, leading 2 of 3 partitions, 1 offline, 2 under-replicated"
	if got := st.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}
