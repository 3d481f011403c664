package appliance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm"
)

// cmdPolicy runs `reeve policy check|test`: an author's loop without a
// cluster.
func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "check" && args[0] != "test") {
		fmt.Fprintln(stderr, "usage: reeve policy check FILE.wasm [--setting KEY=VALUE]...\n       reeve policy test FILE.wasm|first-isr --scenario S.toml [--setting KEY=VALUE]... [--json]")
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("reeve policy "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	settings := kvFlag{}
	fs.Var(settings, "setting", "a policy setting `KEY=VALUE`, as in [[election.rules]] settings (repeatable)")
	scenarioPath := fs.String("scenario", "", "scenario `FILE` (TOML: [[node]] and [[partition]] tables)")
	asJSON := fs.Bool("json", false, "print decisions as JSON")
	memMiB := fs.Int("memory-mib", 16, "memory cap in `MiB`, as election.policy_memory_mib")
	timeout := fs.Duration("timeout", 50*time.Millisecond, "per-call deadline, as election.policy_timeout")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "reeve policy %s: name one module file\n", sub)
		return exitUsage
	}
	file := pos[0]
	ctx := context.Background()
	var mod *wasm.Policy
	if !(sub == "test" && file == config.BuiltinPolicy) {
		guestLog, _ := newLogger(config.Log{Level: "info", Format: "auto"}, stderr)
		rt, err := wasm.NewRuntime(ctx, wasm.Config{MemoryLimit: uint64(*memMiB) << 20, Timeout: *timeout, Logger: guestLog})
		if err != nil {
			return fail(stderr, err)
		}
		defer rt.Close(ctx)
		code, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "reeve policy %s: %v\n", sub, err)
			return exitUsage
		}
		start := time.Now()
		m, err := rt.Compile(ctx, filepath.Base(file), code)
		if err != nil {
			fmt.Fprintf(stderr, "reeve policy %s: %v\n", sub, err)
			return exitUsage
		}
		compiled := time.Since(start)
		mod, err = m.Instantiate(ctx, settingsOf(settings))
		if err != nil {
			fmt.Fprintf(stderr, "reeve policy %s: %v\n", sub, err)
			return exitUsage
		}
		if sub == "check" {
			fmt.Fprintf(stdout, "ok %s: policy ABI %d, %s, compiled in %v, self-test of %d partitions passed\n",
				file, 1, m.Digest(), compiled.Round(time.Millisecond), len(wasm.SelfTestBatch().Partitions))
			return exitOK
		}
	}
	if *scenarioPath == "" {
		fmt.Fprintln(stderr, "reeve policy test: --scenario FILE is required")
		return exitUsage
	}
	sc, err := config.LoadScenario(*scenarioPath)
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintf(stderr, "scenario: %v\n", e)
			}
		} else {
			fmt.Fprintf(stderr, "scenario: %v\n", err)
		}
		return exitUsage
	}
	in := scenarioInputs(sc)
	var ds []policy.Decision
	name := config.BuiltinPolicy
	if mod == nil {
		ds, _ = policy.FirstISR{}.Decide(ctx, in)
	} else {
		name = mod.Module().Name()
		idx := make([]int, len(in))
		for i := range idx {
			idx[i] = i
		}
		ds, err = decideWith(ctx, mod, in, idx)
		if err != nil {
			return fail(stderr, err)
		}
	}
	return printDecisions(stdout, name, in, ds, *asJSON)
}

// scenarioInputs turns a scenario into policy inputs as a controller would
// build them: the leader of a leader_timeout or controlled_shutdown round
// is never alive.
func scenarioInputs(sc *config.Scenario) []policy.Input {
	nodes := map[uint64]config.ScenarioNode{}
	for _, n := range sc.Nodes {
		nodes[n.ID] = n
	}
	var out []policy.Input
	for _, p := range sc.Partitions {
		reason := policy.Reason(p.Reason)
		if reason == "" {
			reason = policy.ReasonLeaderTimeout
		}
		in := policy.Input{Topic: p.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Reason: reason, Unclean: p.Unclean}
		for i, r := range p.Replicas {
			n := nodes[r]
			alive := n.IsAlive() && !(r == p.Leader && (reason == policy.ReasonLeaderTimeout || reason == policy.ReasonControlledShutdown))
			leo := int64(-1)
			if len(p.LogEndOffsets) == len(p.Replicas) {
				leo = p.LogEndOffsets[i]
			}
			in.Replicas = append(in.Replicas, policy.Replica{ID: r, Alive: alive, HeartbeatAge: n.HeartbeatAge.Duration,
				InISR: slices.Contains(p.ISR, r), Labels: n.Labels, LogEndOffset: leo})
		}
		out = append(out, in)
	}
	return out
}

// scenarioDecision is one line of `reeve policy test --json`.
type scenarioDecision struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Kind      string `json:"kind"` // leader, keep, none
	Leader    uint64 `json:"leader"`
	Reason    string `json:"reason"`
	Valid     bool   `json:"valid"`
	Error     string `json:"error,omitempty"`
}

func printDecisions(w io.Writer, name string, in []policy.Input, ds []policy.Decision, asJSON bool) int {
	out := make([]scenarioDecision, len(in))
	invalid := 0
	for i, d := range ds {
		sd := scenarioDecision{Topic: in[i].Topic, Partition: in[i].Partition, Kind: "leader", Leader: d.Leader, Reason: d.Reason, Valid: true}
		switch {
		case d.Keep:
			sd.Kind, sd.Leader = "keep", in[i].Leader
		case d.Leader == 0:
			sd.Kind = "none"
		}
		if err := policy.Validate(in[i], d); err != nil {
			sd.Valid, sd.Error = false, err.Error()
			invalid++
		}
		out[i] = sd
	}
	if asJSON {
		printJSON(w, out)
	} else {
		fmt.Fprintf(w, "policy %s, %d partitions\n", name, len(out))
		for _, d := range out {
			verdict := ""
			if !d.Valid {
				verdict = "  REFUSED: " + d.Error
			}
			what := d.Kind
			if d.Kind != "none" {
				what = fmt.Sprintf("%s %d", d.Kind, d.Leader)
			}
			fmt.Fprintf(w, "%s-%d\t%s\t(%s)%s\n", d.Topic, d.Partition, what, strings.TrimSpace(d.Reason), verdict)
		}
	}
	if invalid > 0 {
		return exitFailure
	}
	return exitOK
}
