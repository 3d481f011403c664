package cli

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
	"github.com/reeve-edge/reeve/logging"
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
	cacheDir := fs.String("cache", defaultPolicyCache(), "compilation cache `DIR`, shared with runs of the same reeve build (\"\": none)")
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
		guestLog, _ := logging.New(config.Log{Level: "info", Format: "auto"}, stderr)
		wc := wasm.ElectionConfig(config.Default().Election)
		wc.MemoryLimit, wc.Timeout, wc.Logger, wc.CacheDir = uint64(*memMiB)<<20, *timeout, guestLog, *cacheDir
		rt, err := wasm.NewRuntime(ctx, wc)
		if err != nil && wc.CacheDir != "" { // an unwritable cache only costs time
			wc.CacheDir = ""
			rt, err = wasm.NewRuntime(ctx, wc)
		}
		if err != nil {
			return fail(stderr, err)
		}
		defer rt.Close(ctx)
		code, err := rt.ReadModule(file)
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
		mod, err = m.Instantiate(ctx, wasm.Settings(settings), policy.Shape{})
		if err != nil {
			fmt.Fprintf(stderr, "reeve policy %s: %v\n", sub, err)
			return exitUsage
		}
		if sub == "check" {
			fmt.Fprintf(stdout, "ok %s: %s, compiled in %v, self-test passed (a fixed batch and sampled ones)\n",
				file, m.Digest(), compiled.Round(time.Millisecond))
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
		name = mod.Name()
		ds, err = mod.Decide(ctx, in)
		if err != nil {
			return fail(stderr, err)
		}
	}
	return printDecisions(stdout, name, sc, in, ds, *asJSON)
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
	Expected  string `json:"expected,omitempty"` // the scenario's expect, if set
	Matches   *bool  `json:"matches,omitempty"`  // whether the answer is the expected one
}

// printDecisions shows each answer, whether the controller would accept
// it (policy.Validate) and whether it is the one the scenario expects. It
// returns exitFailure if any answer is invalid or unexpected.
func printDecisions(w io.Writer, name string, sc *config.Scenario, in []policy.Input, ds []policy.Decision, asJSON bool) int {
	out := make([]scenarioDecision, len(in))
	invalid, mismatched := 0, 0
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
		if kind, leader, _ := sc.Partitions[i].Expected(); kind != "" {
			ok := kind == sd.Kind && (kind != "leader" || leader == sd.Leader)
			sd.Expected, sd.Matches = sc.Partitions[i].Expect, &ok
			if !ok {
				mismatched++
			}
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
			if d.Matches != nil && !*d.Matches {
				verdict += "  UNEXPECTED: the scenario expects " + d.Expected
			}
			what := d.Kind
			if d.Kind != "none" {
				what = fmt.Sprintf("%s %d", d.Kind, d.Leader)
			}
			fmt.Fprintf(w, "%s-%d\t%s\t(%s)%s\n", d.Topic, d.Partition, what, strings.TrimSpace(d.Reason), verdict)
		}
	}
	if invalid > 0 || mismatched > 0 {
		return exitFailure
	}
	return exitOK
}

// defaultPolicyCache is where `reeve policy check|test` keeps compiled
// modules: the user's cache folder, so an author's loop compiles a module
// once.
func defaultPolicyCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "reeve", "policy-cache")
}
