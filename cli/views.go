package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/reeve-edge/reeve/api"
)

// The read-only views of the CLI beyond `reeve status`: who leads what
// (`reeve partitions`) and why it moved (`reeve elections`).

// cmdPartitions prints GET /v1/partitions: each partition's leader, epoch,
// ISR and how far each replica lags the leader.
func cmdPartitions(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve partitions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	topic := fs.String("topic", "", "only this `TOPIC`")
	unhealthy := fs.Bool("unhealthy", false, "only offline and under-replicated partitions")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	q := url.Values{}
	if *topic != "" {
		q.Set("topic", *topic)
	}
	path := "/v1/partitions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var raw json.RawMessage
	if err := c.do("GET", path, nil, &raw); err != nil {
		return fail(stderr, err)
	}
	var info api.Partitions
	if err := json.Unmarshal(raw, &info); err != nil {
		return fail(stderr, fmt.Errorf("decode partitions: %w", err))
	}
	if *unhealthy {
		kept := info.Partitions[:0]
		for _, p := range info.Partitions {
			if p.Leader == api.NoLeader || len(p.ISR) < len(p.Replicas) {
				kept = append(kept, p)
			}
		}
		info.Partitions = kept
	}
	if *af.json {
		if !*unhealthy {
			stdout.Write(raw)
			return exitOK
		}
		printJSON(stdout, info)
		return exitOK
	}
	printPartitions(stdout, info)
	return exitOK
}

func printPartitions(w io.Writer, info api.Partitions) {
	if len(info.Partitions) == 0 {
		fmt.Fprintln(w, "no partitions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tISR\tREPLICAS\tMAX-LAG\tDOWN\tGROUP")
	for _, p := range info.Partitions {
		leader := strconv.FormatUint(p.Leader, 10)
		if p.Leader == api.NoLeader {
			leader = "OFFLINE"
		}
		var down []string
		for _, r := range p.ReplicaStates {
			if !r.Alive {
				down = append(down, strconv.FormatUint(r.Node, 10))
			}
		}
		fmt.Fprintf(tw, "%s-%d\t%s\t%d\t%s\t%s\t%s\t%s\t%d\n", p.Topic, p.Partition, leader, p.LeaderEpoch,
			ids(p.ISR), ids(p.Replicas), lagText(p), orDash(strings.Join(down, ",")), p.Group)
	}
	tw.Flush()
	if !info.Offsets {
		fmt.Fprintln(w, "(log end offsets not asked: lag unknown)")
	}
}

// lagText is a partition's largest in-sync lag: "-" with no followers,
// "?" when no follower's lag is known.
func lagText(p api.PartitionInfo) string {
	switch {
	case len(p.Replicas) < 2:
		return "-"
	case p.MaxLag < 0:
		return "?"
	}
	return strconv.FormatInt(p.MaxLag, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdElections prints a node's decision log (GET /v1/elections): every
// election it ran as a controller, newest first, with the reason, the
// policy's choice and why.
func cmdElections(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve elections", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	topic := fs.String("topic", "", "only this `TOPIC`'s elections")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	var recs []api.Election
	if err := c.do("GET", "/v1/elections", nil, &recs); err != nil {
		return fail(stderr, err)
	}
	if *topic != "" {
		kept := recs[:0]
		for _, r := range recs {
			if r.Topic == *topic {
				kept = append(kept, r)
			}
		}
		recs = kept
	}
	if *af.json {
		if recs == nil {
			recs = []api.Election{}
		}
		printJSON(stdout, recs)
		return exitOK
	}
	printElections(stdout, recs)
	return exitOK
}

// printJSON writes v as indented JSON, as the admin API answers.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
