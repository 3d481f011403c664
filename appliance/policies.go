package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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

// wasmConfig is the sandbox [election] configures.
func wasmConfig(e config.Election) wasm.Config {
	return wasm.Config{
		MemoryLimit:      uint64(e.PolicyMemoryMiB) << 20,
		Timeout:          e.PolicyTimeout.Duration,
		MaxModuleBytes:   int64(e.PolicyMaxModuleMiB) << 20,
		MaxFunctionBytes: e.PolicyMaxFunctionKiB << 10,
		MaxTableElements: uint32(e.PolicyMaxTableElements),
		MaxStackBytes:    uint32(e.PolicyMaxStackKiB) << 10,
	}
}

// newPolicies sets up the rules and, with a policy folder, the wasm
// runtime (its compilation cache and the last good modules under the data
// dir). Nothing is loaded until the first Reload.
func newPolicies(ctx context.Context, cfg *config.Config, store *raft.Store, log *slog.Logger) (*policy.Rules, *wasm.Runtime, error) {
	e := cfg.Election
	var mods policy.Modules
	var rt *wasm.Runtime
	if e.PolicyDir != "" {
		wc := wasmConfig(e)
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

// policyLoadEvent is a policy_loaded or policy_rejected event.
func policyLoadEvent(file, digest string, err error, topics string) raft.Event {
	if err != nil {
		return raft.Event{Type: raft.EventPolicyRejected, Policy: file, PolicyDigest: digest, Detail: err.Error()}
	}
	return raft.Event{Type: raft.EventPolicyLoaded, Policy: file, PolicyDigest: digest, Detail: "topics " + topics}
}

// policyFallbackEvent is a policy_fell_back event.
func policyFallbackEvent(r policy.FallbackReport) raft.Event {
	return raft.Event{Type: raft.EventPolicyFellBack, Policy: r.Policy, PolicyDigest: r.Digest,
		Detail: fmt.Sprintf("%s: %s (%d partitions decided by first-isr)", r.Cause, r.Err, r.Partitions)}
}

// PoliciesInfo is the body of GET /v1/policies.
type PoliciesInfo struct {
	policy.RulesInfo
	Fallbacks int `json:"fallbacks"` // decisions first-isr made in place of a failed policy
}

func (s *Server) listPolicies(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, PoliciesInfo{RulesInfo: s.policies.Info(), Fallbacks: s.decisions.Fallbacks()})
}

func (s *Server) closePolicies(ctx context.Context) {
	s.policies.Close(ctx)
	if s.policyRT != nil {
		s.policyRT.Close(ctx)
	}
}
