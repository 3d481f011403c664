package admin

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"

	"github.com/reeve-edge/reeve/raft"
)

// GET /metrics: the node's metrics in the Prometheus text format. Every
// family is listed in docs/metrics.md.
//
// Three sources make up an answer:
//
//   - the node's metrics.Set (Node.Metrics), which the Raft store (proposal latency),
//     the Kafka listener (requests, records, ISR changes), the election
//     controller (elections, fallbacks) and this package (a module's
//     fallbacks) write into as things happen. One set per node, not the
//     library's global one, so several nodes in one process keep apart;
//   - state read at scrape time (writeState): partitions by health, nodes,
//     Raft groups, event outboxes, policy modules. Gauges of state are
//     computed from the node's applied metadata, never kept up to date by
//     hand, so they cannot drift;
//   - the Go runtime's and the process's own metrics (go_*, process_*).

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	s.n.Metrics.WritePrometheus(&b)
	s.writeState(&b)
	metrics.WriteProcessMetrics(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// livez answers 200 while the process serves HTTP: unlike /readyz it does
// not depend on the cluster, so a supervisor restarts only a hung process,
// never one that merely lost its quorum.
func livez(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }

// writeState writes the figures read from the node's state now.
func (s *Server) writeState(w io.Writer) {
	st := s.n.Store
	live := s.n.Liveness
	self := st.NodeID()
	timeout := s.n.LeaderTimeout

	gauge(w, `reeve_build_info{version="`+labelValue(s.n.Version)+`"}`, 1)
	gauge(w, "reeve_ready", boolValue(st.Ready()))

	states := map[raft.NodeState]int{raft.NodeActive: 0, raft.NodeJoining: 0, raft.NodeRemoved: 0}
	alive := 0
	for _, n := range st.Nodes() {
		states[n.State]++
		if n.State != raft.NodeRemoved && live.Alive(n.ID, timeout) {
			alive++
		}
	}
	family(w, "reeve_nodes", "gauge")
	for _, state := range []raft.NodeState{raft.NodeActive, raft.NodeJoining, raft.NodeRemoved} {
		fmt.Fprintf(w, "reeve_nodes{state=%q} %d\n", state, states[state])
	}
	gauge(w, "reeve_nodes_alive", alive)

	var total, under, offline, leaderless, led int
	for _, t := range st.Topics() {
		for _, p := range st.Partitions(t) {
			total++
			switch {
			case p.Leader == raft.NoLeader:
				offline++
			case p.Leader == self:
				led++
			case !live.Alive(p.Leader, timeout):
				leaderless++
			}
			if len(p.ISR) < len(p.Replicas) {
				under++
			}
		}
	}
	gauge(w, "reeve_partitions", total)
	gauge(w, "reeve_partitions_under_replicated", under)
	gauge(w, "reeve_partitions_offline", offline)
	gauge(w, "reeve_partitions_leaderless", leaderless)
	gauge(w, "reeve_partitions_led", led)

	var groupsLed, groupsLeaderless int
	var outboxes []uint64
	for _, g := range st.Groups() {
		switch leader, ok := st.GroupLeader(g); {
		case !ok || leader == 0:
			groupsLeaderless++
		case leader == self:
			groupsLed++
		}
		if _, ok := st.Outbox(g); ok {
			outboxes = append(outboxes, g)
		}
	}
	gauge(w, "reeve_raft_groups_led", groupsLed)
	gauge(w, "reeve_raft_groups_leaderless", groupsLeaderless)

	family(w, "reeve_events_outbox_pending", "gauge")
	for _, g := range outboxes {
		ob, _ := st.Outbox(g)
		fmt.Fprintf(w, "reeve_events_outbox_pending{group=\"%d\"} %d\n", g, ob.Pending)
	}
	family(w, "reeve_events_outbox_dropped_total", "counter")
	for _, g := range outboxes {
		ob, _ := st.Outbox(g)
		fmt.Fprintf(w, "reeve_events_outbox_dropped_total{group=\"%d\"} %d\n", g, ob.Dropped)
	}
	var published uint64
	if s.n.EventsPublished != nil {
		published = s.n.EventsPublished()
	}
	metrics.WriteCounterUint64(w, "reeve_events_published_total", published)

	rules := s.n.Policies.Info()
	metrics.WriteCounterUint64(w, "reeve_policy_modules_loaded_total", uint64(rules.Loaded))
	metrics.WriteCounterUint64(w, "reeve_policy_modules_refused_total", uint64(rules.Refused))
}

// family writes a family's TYPE line (and its empty HELP) once, before
// its labelled series.
func family(w io.Writer, name, typ string) { metrics.WriteMetadataIfNeeded(w, name, typ) }

func gauge(w io.Writer, name string, v int) { metrics.WriteGaugeUint64(w, name, uint64(v)) }

func boolValue(b bool) int {
	if b {
		return 1
	}
	return 0
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// labelValue escapes s for use inside a Prometheus label's quotes.
func labelValue(s string) string { return labelEscaper.Replace(s) }
