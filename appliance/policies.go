package appliance

import (
	"context"
	"log/slog"
	"path"
	"path/filepath"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
	"github.com/reeve-edge/reeve/wasm"
)

// This file wires the election policies: package policy owns the rules,
// their reload and the fallback; package wasm runs the modules. appliance
// hands them the configuration, the cluster's shape and the events.

// policyRules converts [[election.rules]] to policy.Rule.
func policyRules(cfg []config.PolicyRule) []policy.Rule {
	out := make([]policy.Rule, len(cfg))
	for i, r := range cfg {
		out[i] = policy.Rule{Topics: r.Topics, Policy: r.Policy, Settings: r.Settings}
	}
	return out
}

// newPolicies sets up the rules and, with a policy folder, the wasm
// runtime (its compilation cache and the last good modules under the data
// dir). Nothing is loaded until the first Reload.
func newPolicies(ctx context.Context, cfg *config.Config, store *raft.Store, log *slog.Logger) (*policy.Rules, *wasm.Runtime, error) {
	e := cfg.Election
	var mods policy.Modules
	var rt *wasm.Runtime
	if e.PolicyDir != "" {
		wc := wasm.ElectionConfig(e)
		wc.CacheDir, wc.Logger = filepath.Join(cfg.Node.DataDir, "policy-cache"), log
		var err error
		if rt, err = wasm.NewRuntime(ctx, wc); err != nil {
			return nil, nil, err
		}
		mods = wasm.NewModules(rt, e.PolicyDir, filepath.Join(cfg.Node.DataDir, "policy-last-good"))
	}
	rules := policy.NewRules(policyRules(e.Rules), mods, e.PolicyTimeout.Duration, log)
	rules.ShapeOf = func(topics string) policy.Shape { return clusterShape(store, topics) }
	return rules, rt, nil
}

// clusterShape is what the elections of a rule's topics look like: the
// cluster's nodes and the topics the pattern matches.
func clusterShape(store *raft.Store, pattern string) policy.Shape {
	var sh policy.Shape
	for _, n := range store.Nodes() {
		sh.Nodes = append(sh.Nodes, policy.ShapeNode{ID: n.ID, Labels: n.Labels})
	}
	for _, t := range store.Topics() {
		if ok, _ := path.Match(pattern, t.Name); ok {
			sh.Topics = append(sh.Topics, policy.ShapeTopic{Name: t.Name, Partitions: t.Partitions, ReplicationFactor: int(t.ReplicationFactor)})
		}
	}
	return sh
}
