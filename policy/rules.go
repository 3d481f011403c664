package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Builtin names the built-in first-isr policy in a rule.
const Builtin = "first-isr"

// Rule maps topics to a policy: a module file, or Builtin.
type Rule struct {
	Topics   string // a path.Match glob on topic names
	Policy   string // a module file, or Builtin
	Settings map[string]string
}

// Modules loads the modules rules name by file. Package wasm implements
// it over a policy folder.
type Modules interface {
	// Scan looks at the folder again; it returns the files whose new
	// version was refused since the last scan, with why.
	Scan(ctx context.Context) (refused map[string]error, err error)
	// Digest returns the digest of file's current module, or why it has
	// none (missing, refused).
	Digest(file string) (string, error)
	// Instantiate returns a self-tested instance of file's current module
	// with settings; shape is what the rule's elections look like. A
	// module that passes is kept as the file's last good module.
	Instantiate(ctx context.Context, file string, settings map[string]string, shape Shape) (Instance, error)
	// LastGood returns an instance of the last module of file that passed,
	// kept from an earlier run, or an error if there is none or it fails
	// now.
	LastGood(ctx context.Context, file string, settings map[string]string, shape Shape) (Instance, error)
	// Dir is the folder.
	Dir() string
}

// Instance is a running module.
type Instance interface {
	Policy
	Digest() string
	// Resets counts instances discarded after traps or missed deadlines.
	Resets() int
	// Close releases it; a Decide call in flight finishes first, later ones
	// fail with an error whose cause is CauseClosed.
	Close(ctx context.Context) error
}

// Rules is the Policy the controllers run: each partition goes to the
// policy of the first rule whose pattern matches its topic (first-isr when
// none does). A rule whose module failed answers its partitions with
// Decision.Err, and the controller's fallback decides them (see settle).
// Rules reloads modules when the folder changes and keeps each rule on
// its last working module.
type Rules struct {
	log     *slog.Logger
	mods    Modules // nil without a policy folder
	timeout time.Duration
	// rules is the list in force; a reload swaps it whole, so a round
	// decides with one list.
	rules atomic.Pointer[[]*rule]

	// ShapeOf, if set, describes the elections of a rule's topic pattern
	// for its module's self-test.
	ShapeOf func(topics string) Shape
	// OnLoad, if set, is told of every module put in force (err nil) or
	// refused; it must not block.
	OnLoad func(file, digest string, err error, topics string)

	reloadMu sync.Mutex
	scanErr  string // the last folder error logged, guarded by reloadMu
	loaded   atomic.Int64
	refused  atomic.Int64
}

// rule is one Rule and the instance it runs.
type rule struct {
	cfg Rule
	cur atomic.Pointer[instanceBox] // nil: built-in, or no good module
	// why the rule does not run the folder's current module (missing,
	// refused, failed its self-test, or running the last good one).
	why    atomic.Pointer[string]
	failed string // the digest that last failed to instantiate; guarded by reloadMu
	// lastGoodTried: the last good module was tried and failed; it is not
	// compiled again every scan, only after SIGHUP. Guarded by reloadMu.
	lastGoodTried bool
}

// instanceBox holds an Instance for an atomic.Pointer.
type instanceBox struct{ Instance }

var _ Policy = (*Rules)(nil)

// ErrNotLoaded is the error of a rule whose module has not loaded.
var ErrNotLoaded error = &invalid{CauseNotLoaded, "not loaded"}

// NewRules returns rules over mods (nil: no policy folder, every rule is
// first-isr), whose modules have timeout each per call. Call Reload to
// load the modules.
func NewRules(rules []Rule, mods Modules, timeout time.Duration, log *slog.Logger) *Rules {
	rs := &Rules{log: log, mods: mods, timeout: timeout}
	list := make([]*rule, 0, len(rules))
	for _, r := range rules {
		list = append(list, &rule{cfg: r})
	}
	rs.rules.Store(&list)
	return rs
}

func (rs *Rules) current() []*rule { return *rs.rules.Load() }

// Reload rescans the folder and puts in force every new or changed module
// a rule uses, once instantiated with the rule's settings and self-tested.
// A module that fails leaves the rule on what it ran; a rule that runs
// nothing yet (a fresh start) runs its file's last good module instead.
func (rs *Rules) Reload(ctx context.Context) {
	if rs.mods == nil {
		return
	}
	rs.reloadMu.Lock()
	defer rs.reloadMu.Unlock()
	refused, err := rs.mods.Scan(ctx)
	if err != nil {
		if err.Error() != rs.scanErr { // said once, not every scan
			rs.log.Error("election policies: cannot read the policy folder; keeping the loaded policies", "err", err)
			rs.scanErr = err.Error()
		}
		return
	}
	rs.scanErr = ""
	for file, err := range refused {
		rs.refused.Add(1)
		rs.log.Error("election policy rejected; the previous version stays in use", "policy", file, "err", err)
		rs.onLoad(file, "", err, "")
	}
	var retired []Instance
	for _, r := range rs.current() {
		if old := rs.load(ctx, r); old != nil {
			retired = append(retired, old)
		}
	}
	for _, old := range retired {
		old.Close(ctx)
	}
}

// load brings one rule up to date; it returns the instance it replaced.
// Callers hold reloadMu.
func (rs *Rules) load(ctx context.Context, r *rule) Instance {
	if r.cfg.Policy == Builtin {
		return nil
	}
	cur := r.instance()
	digest, err := rs.mods.Digest(r.cfg.Policy)
	switch {
	case err != nil: // missing, or its latest version refused
	case cur != nil && cur.Digest() == digest:
		r.setWhy("")
		return nil
	case digest == r.failed:
		return nil // it failed already; why says so
	default:
		inst, ierr := rs.mods.Instantiate(ctx, r.cfg.Policy, r.cfg.Settings, rs.shape(r))
		if ierr == nil {
			return rs.swap(r, inst, "")
		}
		r.failed = digest
		rs.refused.Add(1)
		rs.log.Error("election policy rejected; the previous version stays in use", "policy", r.cfg.Policy,
			"topics", r.cfg.Topics, "digest", digest, "err", ierr)
		rs.onLoad(r.cfg.Policy, digest, ierr, r.cfg.Topics)
		err = ierr
	}
	if cur == nil && !r.lastGoodTried { // a fresh start with a bad or missing file: its last good module
		r.lastGoodTried = true
		inst, lerr := rs.mods.LastGood(ctx, r.cfg.Policy, r.cfg.Settings, rs.shape(r))
		if lerr == nil {
			rs.log.Warn("election policy: the folder's file is not usable; running its last good module", "policy", r.cfg.Policy,
				"topics", r.cfg.Topics, "digest", inst.Digest(), "err", err)
			return rs.swap(r, inst, fmt.Sprintf("%v; running the last good module %s", err, inst.Digest()))
		}
		if !errors.Is(lerr, fs.ErrNotExist) { // there is one, and it failed: say why too
			err = fmt.Errorf("%w; the last good module failed too: %v", err, lerr)
		}
	}
	if why := err.Error(); !strings.HasPrefix(r.whyText(), why) { // said once, not every scan
		rs.log.Warn("election policy not available; its topics keep their current policy, or first-isr", "policy", r.cfg.Policy,
			"topics", r.cfg.Topics, "err", err)
		r.setWhy(why)
	}
	return nil
}

func (rs *Rules) swap(r *rule, inst Instance, why string) Instance {
	old := r.instance()
	r.cur.Store(&instanceBox{inst})
	r.setWhy(why)
	rs.loaded.Add(1)
	rs.log.Info("election policy loaded", "policy", r.cfg.Policy, "topics", r.cfg.Topics, "digest", inst.Digest())
	rs.onLoad(r.cfg.Policy, inst.Digest(), nil, r.cfg.Topics)
	return old
}

func (r *rule) instance() Instance {
	if b := r.cur.Load(); b != nil {
		return b.Instance
	}
	return nil
}

func (r *rule) setWhy(s string) {
	if s == "" {
		r.why.Store(nil)
		return
	}
	r.why.Store(&s)
}

func (r *rule) whyText() string {
	if s := r.why.Load(); s != nil {
		return *s
	}
	return ""
}

func (rs *Rules) shape(r *rule) Shape {
	if rs.ShapeOf == nil {
		return Shape{}
	}
	return rs.ShapeOf(r.cfg.Topics)
}

func (rs *Rules) onLoad(file, digest string, err error, topics string) {
	if rs.OnLoad != nil {
		rs.OnLoad(file, digest, err, topics)
	}
}

// ReloadAll is Reload that also retries modules that failed with their
// rule's settings (SIGHUP: the operator asks).
func (rs *Rules) ReloadAll(ctx context.Context) {
	rs.reloadMu.Lock()
	for _, r := range rs.current() {
		r.failed, r.lastGoodTried = "", false
	}
	rs.reloadMu.Unlock()
	rs.Reload(ctx)
}

// SetRules puts a new rule list in force. A rule whose pattern, policy and
// settings are unchanged keeps its instance; a new or changed rule's
// topics are decided by first-isr until the next Reload has loaded its
// module. Instances of rules that went are closed. A round in progress
// finishes with the list it started with.
func (rs *Rules) SetRules(ctx context.Context, cfgs []Rule) {
	rs.reloadMu.Lock()
	defer rs.reloadMu.Unlock()
	old := rs.current()
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
	rs.rules.Store(&next)
	for i, o := range old {
		if p := o.instance(); !kept[i] && p != nil {
			p.Close(ctx)
		}
	}
}

// Watch reloads every interval until ctx ends. The folder is polled: it
// is small, and polling needs no inotify limits.
func (rs *Rules) Watch(ctx context.Context, interval time.Duration) {
	if rs.mods == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rs.Reload(ctx)
		}
	}
}

// Close closes every instance.
func (rs *Rules) Close(ctx context.Context) {
	rs.reloadMu.Lock()
	defer rs.reloadMu.Unlock()
	for _, r := range rs.current() {
		if p := r.instance(); p != nil {
			p.Close(ctx)
		}
	}
}

// Running calls f for every rule's running module (for announcing them
// once events can be sent).
func (rs *Rules) Running(f func(file, digest, topics string)) {
	for _, r := range rs.current() {
		if p := r.instance(); p != nil {
			f(r.cfg.Policy, p.Digest(), r.cfg.Topics)
		}
	}
}

// DecideBound implements Bounded: a round may call each rule's module
// once, each within its own deadline.
func (rs *Rules) DecideBound() time.Duration {
	return rs.timeout*time.Duration(len(rs.current())+1) + 50*time.Millisecond
}

// WantsLogEndOffsets implements OffsetUser: modules may use replicas'
// log-end offsets; first-isr does not, so a cluster without modules never
// spends time looking them up.
func (rs *Rules) WantsLogEndOffsets() bool {
	for _, r := range rs.current() {
		if r.cfg.Policy != Builtin {
			return true
		}
	}
	return false
}

// Name implements Policy; decisions carry their own policy's name.
func (rs *Rules) Name() string {
	if len(rs.current()) == 0 {
		return Builtin
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

// Decide implements Policy. Partitions of a rule whose module is not
// loaded or failed get Decision.Err; the controller decides them.
func (rs *Rules) Decide(ctx context.Context, in []Input) ([]Decision, error) {
	out := make([]Decision, len(in))
	rules := rs.current()
	groups := map[int][]int{}
	for i, p := range in {
		g := ruleFor(rules, p.Topic)
		groups[g] = append(groups[g], i)
	}
	for g, idx := range groups {
		sub := make([]Input, len(idx))
		for j, i := range idx {
			sub[j] = in[i]
		}
		var ds []Decision
		var err error
		src := Source{Policy: Builtin}
		if g >= 0 && rules[g].cfg.Policy != Builtin {
			src.Policy = rules[g].cfg.Policy
			ds, err = rs.decideRule(ctx, rules[g], sub, &src)
		} else {
			ds, _ = FirstISR{}.Decide(ctx, sub)
		}
		if err == nil && len(ds) != len(sub) {
			err = refuse(CauseWrongCount, "%d answers for %d partitions", len(ds), len(sub))
		}
		for j, i := range idx {
			if err != nil {
				out[i] = Decision{Source: src, Err: err}
				continue
			}
			out[i] = ds[j]
			if out[i].Source.Policy == "" {
				out[i].Source = src
			}
		}
	}
	return out, nil
}

// decideRule asks a rule's module; a reload may retire the instance
// between the load and the call, and the call then asks its replacement.
func (rs *Rules) decideRule(ctx context.Context, r *rule, in []Input, src *Source) ([]Decision, error) {
	p := r.instance()
	if p == nil {
		why := r.whyText()
		if why == "" {
			return nil, ErrNotLoaded
		}
		return nil, fmt.Errorf("%w: %s", ErrNotLoaded, why)
	}
	for {
		src.Digest = p.Digest()
		ds, err := p.Decide(ctx, in)
		next := r.instance()
		if err == nil || CauseOf(err) != CauseClosed || next == nil || next == p {
			return ds, err
		}
		p = next
	}
}

// RulesInfo is the state of the rules, for GET /v1/policies.
type RulesInfo struct {
	PolicyDir string       `json:"policy_dir,omitempty"`
	Rules     []RuleStatus `json:"rules"`
	Loaded    int64        `json:"modules_loaded"`  // put in force since start
	Refused   int64        `json:"modules_refused"` // refused since start
}

// RuleStatus is one rule and what it runs.
type RuleStatus struct {
	Topics   string            `json:"topics"`
	Policy   string            `json:"policy"`
	Settings map[string]string `json:"settings,omitempty"`
	Digest   string            `json:"digest,omitempty"`     // of the module running, "" for the built-in or none
	Running  bool              `json:"running"`              // the rule's policy decides (false: first-isr stands in)
	Resets   int               `json:"instance_resets"`      // instances replaced after traps or deadlines
	Error    string            `json:"last_error,omitempty"` // why the folder's current file is not what runs
}

// Info describes the rules. It takes no lock a reload holds, so it
// answers at once while a module compiles.
func (rs *Rules) Info() RulesInfo {
	out := RulesInfo{Rules: []RuleStatus{}, Loaded: rs.loaded.Load(), Refused: rs.refused.Load()}
	if rs.mods != nil {
		out.PolicyDir = rs.mods.Dir()
	}
	for _, r := range rs.current() {
		st := RuleStatus{Topics: r.cfg.Topics, Policy: r.cfg.Policy, Settings: r.cfg.Settings, Running: r.cfg.Policy == Builtin,
			Error: r.whyText()}
		if p := r.instance(); p != nil {
			st.Digest, st.Running, st.Resets = p.Digest(), true, p.Resets()
		}
		out.Rules = append(out.Rules, st)
	}
	return out
}
