package admin

import (
	"net/http"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/raft"
)

// GET /v1/cluster: the cluster's name, the answering node, the node
// registry and every Raft group the node runs, with its leader, its log's
// extent and its event outbox.

func (s *Server) getCluster(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, clusterBody(s.gatherCluster()))
}

// clusterInput is what a GET /v1/cluster answer is made of.
type clusterInput struct {
	Cluster         string
	Self            uint64 // the answering node
	Version         string
	Ready           bool
	PartitionGroups int         // K, 0 before the node has learnt it
	Nodes           []raft.Node // the registry, by id
	Groups          []groupInput
}

// groupInput is one Raft group as the answering node runs it.
type groupInput struct {
	ID      uint64
	Leader  uint64 // 0 when none is known
	Applied uint64 // the local replica's applied index
	// Partitions counts the partitions the group holds: 0 for the
	// cluster group, which holds the registry and the topics.
	Partitions int
	Log        raft.GroupLog      // zero when the node cannot read the group's log
	Outbox     *raft.OutboxStatus // nil when the node keeps no outbox for the group
}

// gatherCluster reads the store's groups in its order, cluster group
// first.
func (s *Server) gatherCluster() clusterInput {
	st := s.n.Store
	in := clusterInput{Cluster: st.ClusterName(), Self: st.NodeID(), Version: s.n.Version, Ready: st.Ready(),
		PartitionGroups: st.PartitionGroups(), Nodes: st.Nodes()}
	for _, g := range st.Groups() {
		gi := groupInput{ID: g, Applied: st.AppliedIndex(g)}
		gi.Leader, _ = st.GroupLeader(g)
		gi.Log, _ = st.Log(g)
		if ob, ok := st.Outbox(g); ok {
			gi.Outbox = &ob
		}
		if g != raft.ClusterGroup {
			gi.Partitions = len(st.GroupPartitions(g))
		}
		in.Groups = append(in.Groups, gi)
	}
	return in
}

// clusterBody is the body of GET /v1/cluster; it lists the groups in
// in.Groups' order.
func clusterBody(in clusterInput) api.Cluster {
	out := api.Cluster{Cluster: in.Cluster, NodeID: in.Self, Version: in.Version, Ready: in.Ready,
		PartitionGroups: in.PartitionGroups, Nodes: apiNodes(in.Nodes), Groups: make([]api.Group, 0, len(in.Groups))}
	for _, g := range in.Groups {
		out.Groups = append(out.Groups, apiGroup(g.ID, g.Leader, g.Applied, g.Partitions, g.Log, g.Outbox))
	}
	return out
}
