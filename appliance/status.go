package appliance

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

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
	Elections []policy.DecisionRecord `json:"elections"`
}

// NodeStatus is one node with its liveness as the answering node sees it.
type NodeStatus struct {
	raft.Node
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
	// OfflineList names up to statusListMax offline partitions, topic-partition.
	OfflineList []string `json:"offline_list,omitempty"`
}

const (
	statusElections = 10 // decisions in a status answer
	statusListMax   = 20
)

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

// status gathers the cluster at a glance from this node's view.
func (s *Server) status() Status {
	st := s.store
	now := time.Now()
	timeout := s.cfg.Election.LeaderTimeout.Duration
	out := Status{Cluster: st.ClusterName(), NodeID: st.NodeID(), Version: Version, Ready: st.Ready()}
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
		ns := NodeStatus{Node: n, Alive: s.live.Alive(n.ID, timeout), PartitionsLed: led[n.ID], GroupsLed: groups[n.ID]}
		if n.ID != st.NodeID() {
			ns.HeartbeatAgeMs = float64(now.Sub(s.live.LastSeen(n.ID)).Milliseconds())
		}
		out.Nodes = append(out.Nodes, ns)
	}
	recs := s.decisions.Records()
	out.Elections = recs[max(0, len(recs)-statusElections):]
	if out.Elections == nil {
		out.Elections = []policy.DecisionRecord{}
	}
	return out
}

// summary is the status in one line, for systemd's STATUS= and the log.
func (st Status) summary() string {
	led := 0
	for _, n := range st.Nodes {
		if n.ID == st.NodeID {
			led = n.PartitionsLed
		}
	}
	p := st.Partitions
	return fmt.Sprintf("nodes alive %d/%d, leading %d of %d partitions, %d offline, %d under-replicated",
		st.alive(), len(st.Nodes), led, p.Total, p.Offline, p.UnderReplicated)
}

// alive counts the active nodes that are alive.
func (st Status) alive() int {
	n := 0
	for _, node := range st.Nodes {
		if node.Alive && node.State == raft.NodeActive {
			n++
		}
	}
	return n
}

// cmdStatus prints GET /v1/status: nodes, partition health, recent
// elections.
func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	var raw json.RawMessage
	if err := c.do("GET", "/v1/status", nil, &raw); err != nil {
		return fail(stderr, err)
	}
	if *af.json {
		stdout.Write(raw)
		return exitOK
	}
	var st Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fail(stderr, fmt.Errorf("decode status: %w", err))
	}
	printStatus(stdout, st)
	return exitOK
}

func printStatus(w io.Writer, st Status) {
	p := st.Partitions
	fmt.Fprintf(w, "cluster %s  (seen from node %d, %s)\n", st.Cluster, st.NodeID, st.Version)
	fmt.Fprintf(w, "nodes alive %d/%d  partitions %d  offline %d  under-replicated %d\n\n",
		st.alive(), len(st.Nodes), p.Total, p.Offline, p.UnderReplicated)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tALIVE\tHEARTBEAT-AGE\tLEADS\tRAFT-GROUPS\tKAFKA\tLABELS")
	for _, n := range st.Nodes {
		age := "-"
		if n.ID != st.NodeID {
			age = (time.Duration(n.HeartbeatAgeMs) * time.Millisecond).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", n.ID, n.State, yesNo(n.Alive), age,
			n.PartitionsLed, n.GroupsLed, n.KafkaAddress, labels(n.Labels))
	}
	tw.Flush()
	if len(p.OfflineList) > 0 {
		more := ""
		if p.Offline > len(p.OfflineList) {
			more = fmt.Sprintf(" and %d more", p.Offline-len(p.OfflineList))
		}
		fmt.Fprintf(w, "\noffline (no eligible leader): %s%s\n", strings.Join(p.OfflineList, ", "), more)
	}
	fmt.Fprintf(w, "\nrecent elections decided by node %d:\n", st.NodeID)
	printElections(w, st.Elections)
}

// printElections writes decision records as a table, newest first.
func printElections(w io.Writer, recs []policy.DecisionRecord) {
	if len(recs) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPARTITION\tREASON\tFROM\tTO\tEPOCH\tPOLICY\tLATENCY\tRESULT\tWHY")
	for _, e := range slices.Backward(recs) {
		result := "committed"
		if !e.Committed {
			result = "failed: " + e.Error
		}
		to := fmt.Sprint(e.To)
		if e.To == 0 {
			to = "none"
		}
		fmt.Fprintf(tw, "%s\t%s-%d\t%s\t%d\t%s\t%d\t%s\t%.1fms\t%s\t%s\n", e.Time.Local().Format("15:04:05.000"),
			e.Topic, e.Partition, e.Reason, e.From, to, e.LeaderEpoch, e.Policy, e.LatencyMs, result, e.Why)
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
