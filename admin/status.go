package admin

import (
	"fmt"
	"net/http"
	"time"

	"github.com/reeve-edge/reeve/api"
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
func (s *Server) Status() api.Status {
	st := s.n.Store
	live := s.n.Liveness
	now := time.Now()
	timeout := s.n.LeaderTimeout
	out := api.Status{Cluster: st.ClusterName(), NodeID: st.NodeID(), Version: s.n.Version, Ready: st.Ready(), Nodes: []api.NodeStatus{}}
	led, groups := map[uint64]int{}, map[uint64]int{}
	for _, g := range st.Groups() {
		if l, ok := st.GroupLeader(g); ok {
			groups[l]++
		}
	}
	for _, t := range st.Topics() {
		for _, p := range st.Partitions(t) {
			out.Partitions.Total++
			switch {
			case p.Leader == raft.NoLeader:
				out.Partitions.Offline++
				if len(out.Partitions.OfflineList) < statusListMax {
					out.Partitions.OfflineList = append(out.Partitions.OfflineList, fmt.Sprintf("%s-%d", t.Name, p.Partition))
				}
			default:
				led[p.Leader]++
			}
			if len(p.ISR) < len(p.Replicas) {
				out.Partitions.UnderReplicated++
			}
		}
	}
	for _, n := range st.Nodes() {
		ns := api.NodeStatus{Node: apiNode(n), Alive: live.Alive(n.ID, timeout), PartitionsLed: led[n.ID], GroupsLed: groups[n.ID]}
		if n.ID != st.NodeID() {
			ns.HeartbeatAgeMs = float64(now.Sub(live.LastSeen(n.ID)).Milliseconds())
		}
		out.Nodes = append(out.Nodes, ns)
	}
	recs := s.n.Decisions.Records()
	out.Elections = apiElections(recs[max(0, len(recs)-statusElections):])
	return out
}
