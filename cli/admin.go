package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/reeve-edge/reeve/api"
)

// adminClient calls a node's admin JSON API for the CLI.
type adminClient struct {
	base string
	// token is sent as Authorization: Bearer; "" sends none.
	token string
	// tokenFrom says where token was read, for the error a refused token
	// gets: "--token-file FILE" or "admin.token_file of FILE".
	tokenFrom string
}

// do sends a request and decodes a 2xx answer into out; any other answer
// becomes an error carrying the server's message.
func (c *adminClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := &http.Client{Timeout: 90 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin endpoint at %s: %w (is reeve running? pass --admin HOST:PORT or -c FILE)", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer from %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		var e api.Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return c.unauthorized()
		}
		return fmt.Errorf("%s", msg)
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return nil
		}
		return json.Unmarshal(data, out)
	}
	return nil
}

// unauthorized is the error for a 401 answer: what to pass, or that the
// token passed is not the node's.
func (c *adminClient) unauthorized() error {
	if c.token == "" {
		return fmt.Errorf("the node at %s wants its admin token: pass --token-file FILE (the file the node's admin.token_file names), "+
			"or -c FILE with the node's configuration", c.base)
	}
	return fmt.Errorf("the node at %s refused the admin token from %s: pass the node's own with --token-file FILE or -c FILE",
		c.base, c.tokenFrom)
}

// kvFlag collects repeated KEY=VALUE flags.
type kvFlag map[string]string

func (k kvFlag) String() string { return fmt.Sprint(map[string]string(k)) }
func (k kvFlag) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	k[key] = value
	return nil
}

func cmdTopic(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: reeve topic create|list|describe|delete ...")
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("reeve topic "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	partitions := fs.Int("p", 1, "number of `partitions`")
	rf := fs.Int("r", 0, "replication `factor` (default: 3, or the node count when smaller)")
	settings := kvFlag{}
	fs.Var(settings, "config", "topic setting `KEY=VALUE` (repeatable)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	needName := func() (string, bool) {
		if len(pos) != 1 {
			fmt.Fprintf(stderr, "usage: reeve topic %s NAME\n", sub)
			return "", false
		}
		return pos[0], true
	}
	var raw json.RawMessage
	switch sub {
	case "create":
		name, ok := needName()
		if !ok {
			return exitUsage
		}
		if *partitions < 1 || *partitions > 1<<20 {
			fmt.Fprintf(stderr, "reeve topic create: -p %d: use 1 or more partitions\n", *partitions)
			return exitUsage
		}
		r := *rf
		if r == 0 {
			var nodes []api.Node
			if err := c.do("GET", "/v1/nodes?stale=true", nil, &nodes); err != nil {
				return fail(stderr, err)
			}
			r = min(3, activeCount(nodes))
		}
		req := api.CreateTopicRequest{Name: name, Partitions: int32(*partitions), ReplicationFactor: int16(r), Config: settings}
		var t api.Topic
		if err := c.do("POST", "/v1/topics", req, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		json.Unmarshal(raw, &t)
		fmt.Fprintf(stdout, "created topic %s (id %s) with %d partition(s), replication factor %d\n", t.Name, t.ID, t.Partitions, t.ReplicationFactor)
	case "list":
		var topics []api.Topic
		if err := c.do("GET", "/v1/topics", nil, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		json.Unmarshal(raw, &topics)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tID\tPARTITIONS\tREPLICATION")
		for _, t := range topics {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", t.Name, t.ID, t.Partitions, t.ReplicationFactor)
		}
		tw.Flush()
	case "describe":
		name, ok := needName()
		if !ok {
			return exitUsage
		}
		var d api.TopicDescription
		if err := c.do("GET", "/v1/topics/"+url.PathEscape(name), nil, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		json.Unmarshal(raw, &d)
		fmt.Fprintf(stdout, "topic %s  id %s  partitions %d  replication %d\n", d.Name, d.ID, d.Partitions, d.ReplicationFactor)
		for k, v := range d.Config {
			fmt.Fprintf(stdout, "  %s=%s\n", k, v)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tLEADER\tLEADER-EPOCH\tISR\tREPLICAS\tPARTITION-EPOCH\tGROUP")
		for _, p := range d.PartitionStates {
			leader := strconv.FormatUint(p.Leader, 10)
			if p.Leader == api.NoLeader {
				leader = "none"
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\n", p.Partition, leader, p.LeaderEpoch, ids(p.ISR), ids(p.Replicas), p.PartitionEpoch, p.Group)
		}
		tw.Flush()
	case "delete":
		name, ok := needName()
		if !ok {
			return exitUsage
		}
		if err := c.do("DELETE", "/v1/topics/"+url.PathEscape(name), nil, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		fmt.Fprintf(stdout, "deleted topic %s\n", name)
	default:
		fmt.Fprintf(stderr, "reeve topic: unknown subcommand %q (create, list, describe, delete)\n", sub)
		return exitUsage
	}
	return exitOK
}

func cmdNode(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: reeve node list|add|remove ...")
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("reeve node "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	id := fs.Uint64("id", 0, "the new node's `ID`")
	raftAddr := fs.String("raft-address", "", "the new node's Raft `HOST:PORT`")
	force := fs.Bool("force", false, "add the node even though nothing answers at its raft address yet")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	var raw json.RawMessage
	switch sub {
	case "list":
		var nodes []api.Node
		if err := c.do("GET", "/v1/nodes", nil, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		json.Unmarshal(raw, &nodes)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tRAFT\tKAFKA\tLABELS")
		for _, n := range nodes {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", n.ID, n.State, n.RaftAddress, n.KafkaAddress, labels(n.Labels))
		}
		tw.Flush()
	case "add":
		if *id == 0 || *raftAddr == "" {
			fmt.Fprintln(stderr, "usage: reeve node add --id N --raft-address HOST:PORT")
			return exitUsage
		}
		if err := c.do("POST", "/v1/nodes", api.AddNodeRequest{ID: *id, RaftAddress: *raftAddr, Force: *force}, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		fmt.Fprintf(stdout, "added node %d (%s) to every raft group as a non-voter; it becomes a voter in each once it has caught up there\n", *id, *raftAddr)
	case "remove":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "usage: reeve node remove ID")
			return exitUsage
		}
		if err := c.do("DELETE", "/v1/nodes/"+url.PathEscape(pos[0]), nil, &raw); err != nil {
			return fail(stderr, err)
		}
		if *af.json {
			stdout.Write(raw)
			return exitOK
		}
		fmt.Fprintf(stdout, "removed node %s from every raft group\n", pos[0])
	default:
		fmt.Fprintf(stderr, "reeve node: unknown subcommand %q (list, add, remove)\n", sub)
		return exitUsage
	}
	return exitOK
}

func fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "reeve: %v\n", err)
	return exitFailure
}

func activeCount(nodes []api.Node) int {
	n := 0
	for _, x := range nodes {
		if x.State == api.NodeActive {
			n++
		}
	}
	return max(n, 1)
}

func ids(v []uint64) string {
	s := make([]string, len(v))
	for i, id := range v {
		s[i] = strconv.FormatUint(id, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func labels(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func cmdElect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve elect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	af := newAdminFlags(fs)
	topic := fs.String("topic", "", "the `TOPIC`")
	partition := fs.Int("partition", -1, "the `PARTITION`")
	to := fs.Uint64("to", 0, "the `NODE` to elect (default: the policy's choice)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	if *topic == "" || *partition < 0 {
		fmt.Fprintln(stderr, "usage: reeve elect --topic T --partition P [--to NODE]")
		return exitUsage
	}
	c, ok := af.client(stderr)
	if !ok {
		return exitUsage
	}
	var raw json.RawMessage
	path := fmt.Sprintf("/v1/topics/%s/partitions/%d/elect", url.PathEscape(*topic), *partition)
	if err := c.do("POST", path, api.ElectRequest{To: *to}, &raw); err != nil {
		return fail(stderr, err)
	}
	if *af.json {
		stdout.Write(raw)
		return exitOK
	}
	var p api.Partition
	if err := json.Unmarshal(raw, &p); err != nil {
		return fail(stderr, fmt.Errorf("decode the election's answer: %w", err))
	}
	fmt.Fprintf(stdout, "%s-%d: leader %d at epoch %d, ISR %s\n", *topic, *partition, p.Leader, p.LeaderEpoch, ids(p.ISR))
	return exitOK
}
