package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats.go"

	"github.com/reeve-edge/reeve/api"
)

// cmdEvents runs `reeve events --follow`: it subscribes to the cluster's
// events and prints them, one line each for a person on a terminal, JSON
// lines (the message bodies) when piped or with --json.
func cmdEvents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reeve events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `FILE` whose [events] and cluster name to use")
	url := fs.String("nats", "", "NATS server `URL` (default: events.nats_url, else the embedded server's address)")
	follow := fs.Bool("follow", false, "keep printing events as they come (required)")
	asJSON := fs.Bool("json", false, "print JSON lines even on a terminal")
	subject := fs.String("subject", "", "subscribe to this `SUBJECT` instead of every event of the cluster, e.g. reeve.site1.leader_changed.>")
	if _, err := parseInterspersed(fs, args); err != nil {
		return exitUsage
	}
	if !*follow {
		fmt.Fprintln(stderr, "usage: reeve events --follow [-c FILE] [--nats URL] [--subject SUBJECT] [--json]")
		return exitUsage
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return exitUsage
	}
	e := cfg.Events
	if *url == "" {
		*url = e.NATSURL
		if *url == "" {
			*url = "nats://" + dialable(e.EmbeddedListen)
		}
	}
	if *subject == "" {
		*subject = e.SubjectPrefix + "." + cfg.Cluster.Name + ".>"
	}
	opts := []nats.Option{nats.Name("reeve events"), nats.MaxReconnects(-1)}
	if e.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(e.CredentialsFile))
	}
	if e.NKeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(e.NKeySeedFile)
		if err != nil {
			return fail(stderr, fmt.Errorf("events.nkey_seed_file %s: %w", e.NKeySeedFile, err))
		}
		opts = append(opts, opt)
	}
	if e.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(e.TLSCAFile))
	}
	if e.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(e.TLSCertFile, e.TLSKeyFile))
	}
	nc, err := nats.Connect(*url, opts...)
	if err != nil {
		return fail(stderr, fmt.Errorf("connect to NATS at %s: %w (is reeve running with events on? pass --nats URL or -c FILE)", *url, err))
	}
	defer nc.Close()
	human := !*asJSON
	if f, ok := stdout.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		human = false
	}
	msgs := make(chan *nats.Msg, 1024)
	if _, err := nc.ChanSubscribe(*subject, msgs); err != nil {
		return fail(stderr, fmt.Errorf("subscribe to %s: %w", *subject, err))
	}
	if err := nc.Flush(); err != nil {
		return fail(stderr, fmt.Errorf("subscribe to %s: %w", *subject, err))
	}
	if human {
		fmt.Fprintf(stderr, "following %s on %s\n", *subject, nc.ConnectedUrl())
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	for {
		select {
		case <-sig:
			return exitOK
		case m := <-msgs:
			if !human {
				stdout.Write(append(m.Data, '\n'))
				continue
			}
			fmt.Fprintln(stdout, eventLine(m))
		}
	}
}

// eventLine is one event for a person to read.
func eventLine(m *nats.Msg) string {
	var env api.Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return fmt.Sprintf("%s (undecodable: %v)", m.Subject, err)
	}
	d := env.Data
	ts := env.Time.Local().Format("15:04:05.000")
	switch {
	case strings.HasPrefix(string(d.Type), "policy_"):
		return fmt.Sprintf("%s %-17s %s on node %d: %s", ts, d.Type, d.Policy, d.Node, d.Detail)
	case strings.HasPrefix(string(d.Type), "node_"):
		return fmt.Sprintf("%s %-17s node %d", ts, d.Type, d.Node)
	case d.Type == "leader_changed" || d.Type == "partition_offline":
		to := fmt.Sprint(d.Leader)
		if d.Leader == 0 {
			to = "none"
		}
		unclean := ""
		if d.Unclean {
			unclean = " UNCLEAN"
		}
		return fmt.Sprintf("%s %-17s %s-%d: %d -> %s epoch %d isr %s (%s, %s, %.1f ms)%s", ts, d.Type, d.Topic, d.Partition,
			d.PreviousLeader, to, d.LeaderEpoch, ids(d.ISR), d.Reason, d.Policy, d.LatencyMs, unclean)
	case strings.HasPrefix(string(d.Type), "isr_"):
		return fmt.Sprintf("%s %-17s %s-%d: isr %s -> %s", ts, d.Type, d.Topic, d.Partition, ids(d.PreviousISR), ids(d.ISR))
	}
	return fmt.Sprintf("%s %-17s %s", ts, d.Type, m.Subject)
}
