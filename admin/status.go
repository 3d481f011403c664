package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

const (
	statusElections = 10 // decisions in a status answer
	statusListMax   = 20
)

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

// Status is the cluster at a glance from this node's view: the body of
// GET /v1/status, and what systemd's STATUS= line summarizes.
func (s *Server) Status() api.Status { return statusBody(s.gatherStatus()) }

// heartbeat is one node's entry in the answering node's heartbeat table.
type heartbeat struct {
	Alive    bool      // heard within the leader timeout
	LastSeen time.Time // when last heard
}

// gatherHeartbeats reads the heartbeat table's entry for each of nodes.
func (s *Server) gatherHeartbeats(nodes []raft.Node) map[uint64]heartbeat {
	live := s.n.Liveness
	out := make(map[uint64]heartbeat, len(nodes))
	for _, n := range nodes {
		out[n.ID] = heartbeat{Alive: live.Alive(n.ID, s.n.LeaderTimeout), LastSeen: live.LastSeen(n.ID)}
	}
	return out
}

// statusInput is what a GET /v1/status answer is made of: the answering
// node's applied metadata, heartbeat table and decision log.
type statusInput struct {
	Cluster string
	Self    uint64 // the answering node
	Version string
	Ready   bool
	Nodes   []raft.Node // the registry, by id
	// Topics are every topic with its partitions, in the order the
	// offline list names them: gatherTopics' (topics by name, partitions
	// by index).
	Topics []topicPartitions
	// GroupLeaders holds each Raft group's leader, for the groups whose
	// leader is known.
	GroupLeaders map[uint64]uint64
	Heartbeats   map[uint64]heartbeat // by node id
	// Now is when the heartbeat ages are measured to, read before the
	// heartbeats.
	Now       time.Time
	Decisions []policy.DecisionRecord // the decision log, oldest first
}

func (s *Server) gatherStatus() statusInput {
	st := s.n.Store
	in := statusInput{Cluster: st.ClusterName(), Self: st.NodeID(), Version: s.n.Version, Ready: st.Ready(),
		Now: time.Now(), GroupLeaders: map[uint64]uint64{}}
	for _, g := range st.Groups() {
		if l, ok := st.GroupLeader(g); ok {
			in.GroupLeaders[g] = l
		}
	}
	in.Topics = s.gatherTopics()
	in.Nodes = st.Nodes()
	in.Heartbeats = s.gatherHeartbeats(in.Nodes)
	in.Decisions = s.n.Decisions.Records()
	return in
}

// statusBody is the body of GET /v1/status: partitions counted by health
// with the first statusListMax offline ones named, each node with its
// liveness and what it leads, and the last statusElections decisions.
func statusBody(in statusInput) api.Status {
	out := api.Status{Cluster: in.Cluster, NodeID: in.Self, Version: in.Version, Ready: in.Ready, Nodes: []api.NodeStatus{}}
	led, groups := map[uint64]int{}, map[uint64]int{}
	for _, l := range in.GroupLeaders {
		groups[l]++
	}
	for _, tp := range in.Topics {
		for _, p := range tp.Partitions {
			out.Partitions.Total++
			switch {
			case p.Leader == raft.NoLeader:
				out.Partitions.Offline++
				if len(out.Partitions.OfflineList) < statusListMax {
					out.Partitions.OfflineList = append(out.Partitions.OfflineList, fmt.Sprintf("%s-%d", tp.Topic.Name, p.Partition))
				}
			default:
				led[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				out.Partitions.UnderReplicated++
			}
		}
	}
	for _, n := range in.Nodes {
		hb := in.Heartbeats[n.ID]
		ns := api.NodeStatus{Node: apiNode(n), Alive: hb.Alive, PartitionsLed: led[n.ID], GroupsLed: groups[n.ID]}
		if n.ID != in.Self {
			ns.HeartbeatAgeMs = float64(in.Now.Sub(hb.LastSeen).Milliseconds())
		}
		out.Nodes = append(out.Nodes, ns)
	}
	out.Elections = apiElections(in.Decisions[max(0, len(in.Decisions)-statusElections):])
	return out
}
