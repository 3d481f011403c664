package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reeve-edge/reeve/api"
)

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
	var st api.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fail(stderr, fmt.Errorf("decode status: %w", err))
	}
	printStatus(stdout, st)
	return exitOK
}

func printStatus(w io.Writer, st api.Status) {
	p := st.Partitions
	fmt.Fprintf(w, "cluster %s  (seen from node %d, %s)\n", st.Cluster, st.NodeID, st.Version)
	fmt.Fprintf(w, "nodes alive %d/%d  partitions %d  offline %d  under-replicated %d\n\n",
		st.Alive(), st.Active(), p.Total, p.Offline, p.UnderReplicated)
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
func printElections(w io.Writer, recs []api.Election) {
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
