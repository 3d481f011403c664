package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
	"github.com/reeve-edge/reeve/wasm"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// policyRules is the policy.Policy the controllers run: each partition
// goes to the policy of the first [[election.rules]] entry whose pattern
// matches its topic (first-isr when none does), modules run through
// package wasm, and a batch whose module fails is decided by first-isr.
// Every decision names the policy that made it.
type policyRules struct {
	log *slog.Logger
	rt  *wasm.Runtime  // nil without a policy folder
	reg *wasm.Registry // nil without a policy folder
	// rules is the rule list in force; a reload swaps it whole, so a round
	// decides with one list.
	rules   atomic.Pointer[[]*rule]
	timeout time.Duration // one module call's deadline ([election] policy_timeout)
	// emit, if set, records a policy event (loaded, rejected, fell back);
	// it must not block.
	emit func(raft.Event)
	// fellBack, if set, is told of every batch a module failed to decide
	// (first-isr decided it); it must not block.
	fellBack func(policy string, err error)

	reloadMu  sync.Mutex
	scanErr   string       // the last folder error logged, guarded by reloadMu
	loaded    atomic.Int64 // modules swapped in
	refused   atomic.Int64 // modules refused at load
	fallbacks atomic.Int64 // batches decided by first-isr because a module failed
}

// errNotLoaded: a rule's module has not been loaded (missing or refused).
var errNotLoaded = errors.New("not loaded")

// rule is one [[election.rules]] entry and the policy instance it runs.
type rule struct {
	cfg     config.PolicyRule
	cur     atomic.Pointer[wasm.Policy] // nil: built-in, or no good module yet
	missing atomic.Pointer[string]      // why no module was available, as last logged (nil: it is)
	failed  *wasm.Module                // the last module that failed to instantiate; guarded by reloadMu
}

var _ policy.Policy = (*policyRules)(nil)

// newPolicyRules sets up the rules and, with a policy folder, the wasm
// runtime (its compilation cache under the data dir) and a first load.
func newPolicyRules(ctx context.Context, cfg *config.Config, log *slog.Logger) (*policyRules, error) {
	pr := &policyRules{log: log, timeout: cfg.Election.PolicyTimeout.Duration}
	rules := make([]*rule, 0, len(cfg.Election.Rules))
	for _, r := range cfg.Election.Rules {
		rules = append(rules, &rule{cfg: r})
	}
	pr.rules.Store(&rules)
	e := cfg.Election
	if e.PolicyDir == "" {
		return pr, nil
	}
	rt, err := wasm.NewRuntime(ctx, wasm.Config{
		CacheDir:         filepath.Join(cfg.Node.DataDir, "policy-cache"),
		MemoryLimit:      uint64(e.PolicyMemoryMiB) << 20,
		Timeout:          e.PolicyTimeout.Duration,
		Logger:           log,
		MaxModuleBytes:   int64(e.PolicyMaxModuleMiB) << 20,
		MaxFunctionBytes: e.PolicyMaxFunctionKiB << 10,
		MaxTableElements: uint32(e.PolicyMaxTableElements),
		MaxStackBytes:    uint32(e.PolicyMaxStackKiB) << 10,
	})
	if err != nil {
		return nil, err
	}
	pr.rt, pr.reg = rt, wasm.NewRegistry(rt, e.PolicyDir)
	pr.Reload(ctx)
	return pr, nil
}

// Reload rescans the policy folder and swaps in every new or changed
// module a rule uses, once it has been instantiated with the rule's
// settings and passed its self-test. A module that fails leaves the rule
// on its previous module (or on first-isr if it never had one).
func (pr *policyRules) Reload(ctx context.Context) {
	if pr.reg == nil {
		return
	}
	pr.reloadMu.Lock()
	defer pr.reloadMu.Unlock()
	res, err := pr.reg.Scan(ctx)
	if err != nil {
		if err.Error() != pr.scanErr { // said once, not every scan
			pr.log.Error("election policies: cannot read the policy folder; keeping the loaded policies", "err", err)
			pr.scanErr = err.Error()
		}
		return
	}
	pr.scanErr = ""
	for name, err := range res.Refused {
		pr.refused.Add(1)
		pr.log.Error("election policy rejected; the previous version stays in use", "policy", name, "err", err)
		pr.event(raft.Event{Type: raft.EventPolicyRejected, Policy: name, Detail: err.Error()})
	}
	var retired []*wasm.Policy
	for _, r := range pr.current() {
		if r.cfg.Policy == config.BuiltinPolicy {
			continue
		}
		mod, loadErr := pr.reg.Module(r.cfg.Policy)
		cur := r.cur.Load()
		if mod == nil {
			if loadErr == nil {
				loadErr = fmt.Errorf("no file %s in %s", r.cfg.Policy, pr.reg.Dir())
			}
			if m := r.missing.Load(); m == nil || *m != loadErr.Error() { // said once, not every scan
				pr.log.Warn("election policy not available; first-isr decides its topics", "policy", r.cfg.Policy,
					"topics", r.cfg.Topics, "err", loadErr)
				why := loadErr.Error()
				r.missing.Store(&why)
			}
			continue
		}
		r.missing.Store(nil)
		if (cur != nil && cur.Module() == mod) || r.failed == mod {
			continue // running it, or it failed with these settings already
		}
		p, err := mod.Instantiate(ctx, settingsOf(r.cfg.Settings))
		if err != nil {
			r.failed = mod
			pr.refused.Add(1)
			pr.log.Error("election policy rejected; the previous version stays in use", "policy", r.cfg.Policy,
				"topics", r.cfg.Topics, "digest", mod.Digest(), "err", err)
			pr.event(raft.Event{Type: raft.EventPolicyRejected, Policy: r.cfg.Policy, PolicyDigest: mod.Digest(), Detail: err.Error()})
			continue
		}
		r.cur.Store(p)
		pr.loaded.Add(1)
		pr.log.Info("election policy loaded", "policy", r.cfg.Policy, "topics", r.cfg.Topics, "digest", mod.Digest())
		pr.event(raft.Event{Type: raft.EventPolicyLoaded, Policy: r.cfg.Policy, PolicyDigest: mod.Digest(),
			Detail: "topics " + r.cfg.Topics})
		if cur != nil {
			retired = append(retired, cur)
		}
	}
	for _, old := range retired {
		pr.retire(ctx, old)
	}
}

// retire closes an instance no rule runs any more (Close waits for a call
// in flight), and its module once no rule runs it and the folder holds a
// newer version. Callers hold reloadMu.
func (pr *policyRules) retire(ctx context.Context, old *wasm.Policy) {
	old.Close(ctx)
	mod := old.Module()
	for _, r := range pr.current() {
		if p := r.cur.Load(); p != nil && p.Module() == mod {
			return
		}
	}
	if pr.reg != nil {
		if m, _ := pr.reg.Module(mod.Name()); m == mod {
			return // the folder's current version: a rule may instantiate it again
		}
	}
	mod.Close(ctx)
}

// current returns the rule list in force.
func (pr *policyRules) current() []*rule { return *pr.rules.Load() }

// SetRules puts a new [[election.rules]] list in force (a reload changed
// it). A rule whose pattern, policy and settings are unchanged keeps its
// running instance; a new or changed rule's topics are decided by
// first-isr until the Reload that follows has loaded and self-tested its
// module. Instances of rules that went are closed. A round in progress
// finishes with the list it started with.
func (pr *policyRules) SetRules(ctx context.Context, cfgs []config.PolicyRule) {
	pr.reloadMu.Lock()
	defer pr.reloadMu.Unlock()
	old := pr.current()
	kept := make([]bool, len(old))
	next := make([]*rule, 0, len(cfgs))
	for _, c := range cfgs {
		var r *rule
		for i, o := range old {
			if !kept[i] && reflect.DeepEqual(o.cfg, c) {
				r, kept[i] = o, true
				break
			}
		}
		if r == nil {
			r = &rule{cfg: c}
		}
		next = append(next, r)
	}
	pr.rules.Store(&next)
	for i, o := range old {
		if p := o.cur.Load(); !kept[i] && p != nil {
			pr.retire(ctx, p)
		}
	}
}

// DecideBound implements policy.Bounded: a round may call each rule's
// module once, each within its own deadline.
func (pr *policyRules) DecideBound() time.Duration {
	return pr.timeout*time.Duration(len(pr.current())+1) + 50*time.Millisecond
}

// ReloadAll is Reload that also retries modules that failed to
// instantiate with their rule's settings (SIGHUP: the operator asks).
func (pr *policyRules) ReloadAll(ctx context.Context) {
	pr.reloadMu.Lock()
	for _, r := range pr.current() {
		r.failed = nil
	}
	pr.reloadMu.Unlock()
	pr.Reload(ctx)
}

// watch reloads every interval until ctx ends (the folder is polled: it is
// small, and polling needs no inotify limits or extra dependency).
func (pr *policyRules) watch(ctx context.Context, interval time.Duration) {
	if pr.reg == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pr.Reload(ctx)
		}
	}
}

func (pr *policyRules) close(ctx context.Context) {
	if pr.rt != nil {
		pr.rt.Close(ctx)
	}
}

// announce emits a policy_loaded event for every module running now: the
// ones loaded before events could be sent.
func (pr *policyRules) announce() {
	for _, r := range pr.current() {
		if p := r.cur.Load(); p != nil {
			pr.event(raft.Event{Type: raft.EventPolicyLoaded, Policy: r.cfg.Policy, PolicyDigest: p.Module().Digest(),
				Detail: "topics " + r.cfg.Topics})
		}
	}
}

func (pr *policyRules) event(ev raft.Event) {
	if pr.emit != nil {
		pr.emit(ev)
	}
}

func settingsOf(m map[string]string) []abi.Label {
	out := make([]abi.Label, 0, len(m))
	for k, v := range m {
		out = append(out, abi.Label{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// WantsLogEndOffsets implements policy.OffsetUser: modules may use
// replicas' log-end offsets; first-isr does not, so a cluster without
// modules never spends time looking them up.
func (pr *policyRules) WantsLogEndOffsets() bool {
	for _, r := range pr.current() {
		if r.cfg.Policy != config.BuiltinPolicy {
			return true
		}
	}
	return false
}

// Name implements policy.Policy; decisions carry their own policy's name.
func (pr *policyRules) Name() string {
	if len(pr.current()) == 0 {
		return policy.FirstISR{}.Name()
	}
	return "rules"
}

// ruleFor returns the index of the first rule matching topic, or -1.
func ruleFor(rules []*rule, topic string) int {
	for i, r := range rules {
		if ok, _ := path.Match(r.cfg.Topics, topic); ok {
			return i
		}
	}
	return -1
}

// Decide implements policy.Policy.
func (pr *policyRules) Decide(ctx context.Context, in []policy.Input) ([]policy.Decision, error) {
	out := make([]policy.Decision, len(in))
	rules := pr.current()
	groups := map[int][]int{}
	for i, p := range in {
		g := ruleFor(rules, p.Topic)
		groups[g] = append(groups[g], i)
	}
	for g, idx := range groups {
		var mod *wasm.Policy
		name, digest := policy.FirstISR{}.Name(), ""
		if g >= 0 && rules[g].cfg.Policy != config.BuiltinPolicy {
			mod, name = rules[g].cur.Load(), rules[g].cfg.Policy
		}
		var ds []policy.Decision
		var err error
		switch {
		case g >= 0 && name != policy.FirstISR{}.Name() && mod == nil:
			err = fmt.Errorf("%s is %w", name, errNotLoaded)
		case mod != nil:
			// A reload may retire the instance between the Load and the
			// call; the call then asks its replacement.
			for {
				ds, err = decideWith(ctx, mod, in, idx)
				next := rules[g].cur.Load()
				if !errors.Is(err, wasm.ErrClosed) || next == nil || next == mod {
					break
				}
				mod = next
			}
			digest = mod.Module().Digest()
		}
		if ds == nil {
			sub := make([]policy.Input, len(idx))
			for j, i := range idx {
				sub[j] = in[i]
			}
			ds, _ = policy.FirstISR{}.Decide(ctx, sub)
			if err != nil {
				pr.fallbacks.Add(1)
				if pr.fellBack != nil {
					pr.fellBack(name, err)
				}
				pr.log.Warn("election policy failed; first-isr decides this round", "policy", name, "partitions", len(idx), "err", err)
				pr.event(raft.Event{Type: raft.EventPolicyFellBack, Policy: name, PolicyDigest: digest, Detail: err.Error()})
				name = policy.FirstISR{}.Name() + " (fallback: " + name + ": " + err.Error() + ")"
			}
			digest = ""
		}
		for j, i := range idx {
			ds[j].Policy, ds[j].PolicyDigest = name, digest
			out[i] = ds[j]
		}
	}
	return out, nil
}

// decideWith runs a module on the inputs at idx. Nodes are listed once per
// batch (their labels converted once), and replicas share one backing
// array, so the conversion costs little next to the call.
func decideWith(ctx context.Context, p *wasm.Policy, in []policy.Input, idx []int) ([]policy.Decision, error) {
	total := 0
	for _, i := range idx {
		total += len(in[i].Replicas)
	}
	b := &abi.Batch{Partitions: make([]abi.Partition, len(idx))}
	reps := make([]abi.Replica, total)
	var nodeIDs [8]uint64 // batches name few nodes: a linear scan beats a map
	nodes := nodeIDs[:0]
	for j, i := range idx {
		pin := &in[i]
		rs := reps[:len(pin.Replicas):len(pin.Replicas)]
		reps = reps[len(pin.Replicas):]
		for k := range pin.Replicas {
			r := &pin.Replicas[k]
			ni := slices.Index(nodes, r.ID)
			if ni < 0 {
				ni = len(nodes)
				nodes = append(nodes, r.ID)
				b.Nodes = append(b.Nodes, abi.Node{ID: r.ID, HeartbeatAgeMs: ageMs(r.HeartbeatAge), Labels: settingsOf(r.Labels)})
			}
			rs[k] = abi.Replica{Node: uint32(ni), Alive: r.Alive, InISR: r.InISR, LogEndOffset: r.LogEndOffset}
		}
		b.Partitions[j] = abi.Partition{Topic: pin.Topic, Partition: pin.Partition, Reason: abiReason(pin.Reason), Unclean: pin.Unclean,
			Leader: pin.Leader, LeaderEpoch: pin.LeaderEpoch, Replicas: rs}
	}
	ads, err := p.Decide(ctx, b)
	if err != nil {
		return nil, err
	}
	out := make([]policy.Decision, len(ads))
	for j, d := range ads {
		switch d.Kind {
		case abi.DecideKeep:
			out[j] = policy.Decision{Keep: true, Reason: d.Reason}
		case abi.DecideLeader:
			out[j] = policy.Decision{Leader: d.Leader, Reason: d.Reason}
		default:
			out[j] = policy.Decision{Reason: d.Reason}
		}
	}
	return out, nil
}

func abiReason(r policy.Reason) abi.Reason {
	switch r {
	case policy.ReasonControlledShutdown:
		return abi.ReasonControlledShutdown
	case policy.ReasonRebalance:
		return abi.ReasonRebalance
	case policy.ReasonManual:
		return abi.ReasonManual
	}
	return abi.ReasonLeaderTimeout
}

func ageMs(d time.Duration) uint32 {
	switch {
	case d <= 0:
		return 0
	case d >= time.Duration(abi.NeverHeard-1)*time.Millisecond:
		return abi.NeverHeard
	}
	return uint32(d / time.Millisecond)
}

// PoliciesInfo is the body of GET /v1/policies.
type PoliciesInfo struct {
	PolicyDir string       `json:"policy_dir,omitempty"`
	Rules     []RuleStatus `json:"rules"`
	Loaded    int64        `json:"modules_loaded"`  // swapped in since start
	Refused   int64        `json:"modules_refused"` // refused at load since start
	Fallbacks int64        `json:"fallbacks"`       // rounds a module failed and first-isr decided
}

// RuleStatus is one [[election.rules]] entry and what it runs.
type RuleStatus struct {
	Topics   string            `json:"topics"`
	Policy   string            `json:"policy"`
	Settings map[string]string `json:"settings,omitempty"`
	Digest   string            `json:"digest,omitempty"`     // of the module running, "" for the built-in or none
	Running  bool              `json:"running"`              // the rule's policy decides (false: first-isr stands in)
	Resets   int               `json:"instance_resets"`      // instances replaced after traps or deadlines
	Error    string            `json:"last_error,omitempty"` // why the file's latest version was refused, or why there is none
}

func (pr *policyRules) info() PoliciesInfo {
	out := PoliciesInfo{Rules: []RuleStatus{}, Loaded: pr.loaded.Load(), Refused: pr.refused.Load(), Fallbacks: pr.fallbacks.Load()}
	if pr.reg != nil {
		out.PolicyDir = pr.reg.Dir()
	}
	for _, r := range pr.current() {
		rs := RuleStatus{Topics: r.cfg.Topics, Policy: r.cfg.Policy, Settings: r.cfg.Settings, Running: r.cfg.Policy == config.BuiltinPolicy}
		if p := r.cur.Load(); p != nil {
			rs.Digest, rs.Running, rs.Resets = p.Module().Digest(), true, p.Resets()
		}
		if pr.reg != nil && r.cfg.Policy != config.BuiltinPolicy {
			if _, err := pr.reg.Module(r.cfg.Policy); err != nil {
				rs.Error = err.Error()
			} else if m := r.missing.Load(); m != nil {
				rs.Error = *m
			}
		}
		out.Rules = append(out.Rules, rs)
	}
	return out
}

func (s *Server) listPolicies(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.policies.info())
}
