package policy

import (
	"context"
	"errors"
	"fmt"
	"github.com/reeve-edge/reeve/internal/datadriven"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestController_dataDriven runs each testdata/controller/*.txt file as one
// scenario: a controller, its liveness table and an in-memory Metadata
// (memMetadata) inside a testing/synctest bubble, with Run going throughout.
// Time is fake: it starts at 0s when the file does and moves only with
// advance, so a file of minutes takes milliseconds. A case is a directive
// line, input lines, "----" and the expected output up to a blank line; '#'
// lines between cases are comments. With -rewrite the expected output is
// replaced with what the code produces:
//
//	go test ./policy -run TestController_dataDriven -rewrite
//
// Directives:
//
//	controller node=N [timeout=10s] [heartbeat=1s] [rebalance=D] [hold-down=D] [policy=script] [trace]
//	          first, once: starts the controller on node N (always alive to
//	          itself) for the partitions given as input, one a line:
//	          t-0 replicas=1,2,3 leader=1|none isr=1,2,3 [epochs=L/P] [unclean]
//	          policy=script decides with scriptPolicy instead of first-isr;
//	          trace prints every Decide call
//	up N...        nodes heartbeat now and then every heartbeat interval
//	               (at 1s, 2s, ... from the start) until down
//	down N...      nodes stop heartbeating
//	heartbeat N... one heartbeat from each node, now
//	advance D      moves fake time by D; at an instant where a deadline and
//	               a heartbeat tick meet, the controller runs first
//	isr t-0 1,2 [quiet]
//	               the partition's leader changes its ISR (the epochs'
//	               compare-and-set applies); quiet: the controller is not told
//	add [quiet]    the partitions given as input, one a line as for
//	               controller, join the ones this node controls (it became
//	               their Raft group's leader); quiet: the controller is not told
//	race t-0 1,2 [quiet]
//	               the next commit for t-0 finds that its leader changed
//	               the ISR to 1,2 just before it, so its epochs moved
//	fail-commit MESSAGE
//	               the next commit fails as a whole with MESSAGE, as when
//	               this node loses its Raft group's leadership mid-commit
//	elect t-0 [to=N]
//	               Controller.ElectTo (to=0 asks the policy)
//	shutdown N     node N's controlled shutdown: Controller.Elect with
//	               controlled_shutdown for the partitions N leads that have
//	               another replica
//	answer         scriptPolicy's answers, one a line: t-0 leader=N | keep |
//	               none | fail (the partition's Decision.Err) | first-isr
//	               (forget the answer); or "batch error" (the next Decide
//	               fails whole) or "batch short" (answers one too few)
//	show           every partition
//	last-pass      when Controller.LastPass says Run last passed
//
// A directive prints, in the order they happened, every commit memMetadata
// saw and every fallback the controller reported ("15s: t-0 leader 1->2 reason=... policy=...: committed
// epochs=1/1 isr=2,3", or refused with the error) and, with trace, every
// Decide call; then its own output; "ok" if that is all empty.
//
// Cases where a policy answers keep or none, fails, or chooses an
// ineligible leader and first-isr stands in are in
// testdata/controller/fallback.txt.
func TestController_dataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/controller/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/controller/*.txt files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cases, trailer := datadriven.Parse(t, path)
			got := make([][]string, len(cases))
			synctest.Test(t, func(t *testing.T) {
				var d *ctlDriver
				for i, c := range cases {
					if i == 0 {
						if verb, _, _ := strings.Cut(c.Cmd, " "); verb != "controller" {
							t.Fatalf("%s:%d: the first directive is %q; start with controller", path, c.Line, verb)
						}
						d = newCtlDriver(t, path, c)
						defer d.stop()
					}
					got[i] = d.run(c)
					datadriven.Check(t, path, c, got[i])
				}
			})
			datadriven.RewriteIfAsked(t, path, cases, got, trailer)
		})
	}
}

// ctlDriver runs one scenario file inside a synctest bubble. Heartbeats
// are sent from the test goroutine, between synctest.Wait calls, so which
// of a heartbeat and a deadline at the same instant comes first never
// depends on the scheduler.
type ctlDriver struct {
	t        *testing.T
	path     string
	line     int // of the directive running
	ran      int // directives run
	start    time.Time
	log      *eventLog
	md       *memMetadata
	live     *Liveness
	c        *Controller
	script   *scriptPolicy
	interval time.Duration // between heartbeats of the nodes that are up
	ticks    int           // heartbeat ticks so far
	up       map[uint64]bool
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

func newCtlDriver(t *testing.T, path string, c datadriven.Case) *ctlDriver {
	start := time.Now()
	d := &ctlDriver{t: t, path: path, line: c.Line, start: start, log: &eventLog{start: start},
		interval: time.Second, up: map[uint64]bool{}, done: make(chan struct{})}
	d.md = newMemMetadata(d.log)
	_, rest, _ := strings.Cut(c.Cmd, " ")
	args := d.args(rest, "node", "timeout", "heartbeat", "rebalance", "hold-down", "policy", "trace")
	node := d.uint(args["node"])
	if node == 0 {
		d.fail("controller needs node=N, the node it runs on (1 or higher)")
	}
	timeout := d.duration(args["timeout"], 10*time.Second)
	d.interval = d.duration(args["heartbeat"], time.Second)
	for _, line := range c.Input {
		d.md.add(d.partition(line))
	}
	var p Policy = FirstISR{}
	switch args["policy"] {
	case "", "first-isr":
	case "script":
		d.script = &scriptPolicy{answers: map[string]Decision{}}
		p = d.script
	default:
		d.fail("policy=%s: use first-isr or script", args["policy"])
	}
	if _, ok := args["trace"]; ok {
		p = tracePolicy{p, d.log}
	}
	d.live = NewLiveness(node)
	d.c = NewController(d.md, d.live, p, node, timeout, slog.New(slog.DiscardHandler))
	d.c.OnFallback = func(r FallbackReport) {
		d.log.add("fallback from %s: %s, %d partitions: %s", r.Policy, r.Cause, r.Partitions, r.Err)
	}
	d.c.BeforeLeaderTimeout = func(ctx context.Context, nodes []uint64) {
		if _, ok := ctx.Deadline(); !ok {
			d.fail("BeforeLeaderTimeout got a context without a deadline")
		}
		d.log.add("report down %v", nodes)
	}
	d.c.Decisions = NewDecisionLog(100)
	d.c.RebalanceInterval = d.duration(args["rebalance"], 0)
	d.c.HoldDown = d.duration(args["hold-down"], 0)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(d.done)
		d.c.Run(d.ctx)
	}()
	return d
}

func (d *ctlDriver) stop() {
	d.cancel()
	<-d.done
}

func (d *ctlDriver) fail(format string, args ...any) {
	d.t.Helper()
	d.t.Fatalf("%s:%d: %s", d.path, d.line, fmt.Sprintf(format, args...))
}

// run runs one directive and returns its output.
func (d *ctlDriver) run(c datadriven.Case) []string {
	d.t.Helper()
	d.line = c.Line
	defer func() { d.ran++ }()
	verb, rest, _ := strings.Cut(c.Cmd, " ")
	var out []string
	switch verb {
	case "controller":
		if d.ran > 0 {
			d.fail("controller comes once, first")
		}
	case "up":
		for _, n := range d.nodes(rest) {
			d.up[n] = true
			d.live.Heartbeat(n)
		}
	case "down":
		for _, n := range d.nodes(rest) {
			delete(d.up, n)
		}
	case "heartbeat":
		for _, n := range d.nodes(rest) {
			d.live.Heartbeat(n)
		}
	case "advance":
		by, err := time.ParseDuration(rest)
		if err != nil || by < 0 {
			d.fail("advance %s: want a duration such as 9s or 100ms", rest)
		}
		d.advance(by)
	case "isr":
		name, isr, quiet := d.isrArgs(rest)
		if err := d.md.setISR(name, isr, !quiet); err != nil {
			out = append(out, "error: "+err.Error())
		}
	case "add":
		args := d.args(rest, "quiet")
		for _, line := range c.Input {
			d.md.add(d.partition(line))
		}
		if _, quiet := args["quiet"]; !quiet {
			d.md.notify()
		}
	case "race":
		name, isr, quiet := d.isrArgs(rest)
		d.md.mu.Lock()
		d.md.races[name] = race{isr: isr, quiet: quiet}
		d.md.mu.Unlock()
	case "fail-commit":
		d.md.mu.Lock()
		d.md.failNext = errors.New(rest)
		d.md.mu.Unlock()
	case "elect":
		name, rest, _ := strings.Cut(rest, " ")
		to := d.uint(d.args(rest, "to")["to"])
		p, ok := d.md.find(name)
		if !ok {
			d.fail("no partition %s", name)
		}
		rec, err := d.c.ElectTo(d.ctx, p, to)
		switch {
		case err != nil:
			out = append(out, "error: "+err.Error())
		case rec.From == rec.To:
			out = append(out, "no change: "+rec.Why)
		}
	case "shutdown":
		n := d.uint(rest)
		var mine []PartitionState
		for _, p := range d.md.Controlled() {
			if p.Leader == n && len(p.Replicas) > 1 {
				mine = append(mine, p)
			}
		}
		d.c.Elect(d.ctx, mine, ReasonControlledShutdown)
	case "storage-failed":
		p, ok := d.md.find(rest)
		if !ok {
			d.fail("no partition %s", rest)
		}
		d.c.Elect(d.ctx, []PartitionState{p}, ReasonStorageFailed)
	case "answer":
		if d.script == nil {
			d.fail("answer needs controller ... policy=script")
		}
		for _, line := range c.Input {
			d.answer(line)
		}
	case "show":
		for _, p := range d.md.Controlled() {
			out = append(out, partitionText(p))
		}
	case "last-pass":
		out = append(out, d.c.LastPass().Sub(d.start).String())
	default:
		d.fail("unknown directive %q", verb)
	}
	synctest.Wait()
	out = append(d.log.take(), out...)
	if len(out) == 0 {
		out = []string{"ok"}
	}
	return out
}

// advance moves fake time by by, sending the heartbeats of the nodes that
// are up at each tick on the way, after the controller has run at that
// instant.
func (d *ctlDriver) advance(by time.Duration) {
	end := time.Now().Add(by)
	for {
		tick := d.start.Add(time.Duration(d.ticks+1) * d.interval)
		if tick.After(end) {
			break
		}
		time.Sleep(time.Until(tick))
		synctest.Wait()
		d.ticks++
		for n := range d.up {
			d.live.Heartbeat(n)
		}
	}
	time.Sleep(time.Until(end))
	synctest.Wait()
}

func (d *ctlDriver) answer(line string) {
	name, what, _ := strings.Cut(line, " ")
	var a Decision
	switch {
	case what == "first-isr":
		d.script.set(name, nil)
		return
	case what == "keep":
		a = Decision{Keep: true, Reason: "the script keeps the leader"}
	case what == "none":
		a = Decision{Reason: "the script chose no leader"}
	case strings.HasPrefix(what, "leader="):
		n := d.uint(strings.TrimPrefix(what, "leader="))
		a = Decision{Leader: n, Reason: fmt.Sprintf("the script chose node %d", n)}
	case what == "fail":
		a = Decision{Err: refuse(CauseTrap, "the script's module trapped")}
	case name == "batch" && (what == "error" || what == "short"):
		d.script.batch(what)
		return
	default:
		d.fail("answer %q: want t-0 leader=N, keep, none, fail or first-isr, or batch error|short|ok", line)
	}
	d.script.set(name, &a)
}

// args parses key=value and flag words, refusing keys not in known.
func (d *ctlDriver) args(s string, known ...string) map[string]string {
	d.t.Helper()
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		if !slices.Contains(known, k) {
			d.fail("unknown argument %q; known: %s", f, strings.Join(known, ", "))
		}
		m[k] = v
	}
	return m
}

func (d *ctlDriver) isrArgs(s string) (name string, isr []uint64, quiet bool) {
	d.t.Helper()
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 3 || (len(f) == 3 && f[2] != "quiet") {
		d.fail("%q: want t-0 1,2,3 [quiet]", s)
	}
	return f[0], d.list(f[1]), len(f) == 3
}

func (d *ctlDriver) nodes(s string) []uint64 {
	d.t.Helper()
	var out []uint64
	for _, f := range strings.Fields(s) {
		out = append(out, d.uint(f))
	}
	if len(out) == 0 {
		d.fail("name at least one node")
	}
	return out
}

func (d *ctlDriver) uint(s string) uint64 {
	d.t.Helper()
	if s == "" || s == "none" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		d.fail("%q is not a node id", s)
	}
	return n
}

func (d *ctlDriver) list(s string) []uint64 {
	d.t.Helper()
	out := []uint64{}
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, d.uint(f))
		}
	}
	return out
}

func (d *ctlDriver) duration(s string, def time.Duration) time.Duration {
	d.t.Helper()
	if s == "" {
		return def
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail("%q is not a duration", s)
	}
	return v
}

// partition parses "t-0 replicas=1,2,3 leader=1 isr=1,2,3 [epochs=L/P] [unclean]".
func (d *ctlDriver) partition(line string) PartitionState {
	d.t.Helper()
	name, rest, _ := strings.Cut(line, " ")
	topic, index, ok := strings.Cut(name, "-")
	n, err := strconv.ParseInt(index, 10, 32)
	if !ok || err != nil {
		d.fail("%q: a partition is named topic-N, e.g. t-0", name)
	}
	p := PartitionState{Topic: topic, Partition: int32(n)}
	copy(p.TopicID[:], topic)
	args := d.args(rest, "replicas", "leader", "isr", "epochs", "unclean")
	p.Replicas, p.ISR, p.Leader = d.list(args["replicas"]), d.list(args["isr"]), d.uint(args["leader"])
	if e := args["epochs"]; e != "" {
		if _, err := fmt.Sscanf(e, "%d/%d", &p.LeaderEpoch, &p.PartitionEpoch); err != nil {
			d.fail("epochs=%s: want leader epoch/partition epoch, e.g. 3/5", e)
		}
	}
	_, p.Unclean = args["unclean"]
	return p
}

// eventLog collects what happened during a directive, stamped with the
// fake time since the scenario started.
type eventLog struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, time.Since(l.start).String()+": "+fmt.Sprintf(format, args...))
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// memMetadata is the Metadata test double: partitions in memory, every
// one controlled by this node. Elect applies each change with the
// compare-and-set the partition state machine applies (casUpdate), so a
// controller that commits on stale epochs fails here as it would in Raft.
type memMetadata struct {
	mu       sync.Mutex
	parts    []*PartitionState
	changed  chan struct{}
	races    map[string]race // by partition name: applied before that partition's next commit
	failNext error           // the next Elect fails as a whole
	log      *eventLog
}

// race is a change the partition's leader commits just before the
// controller's.
type race struct {
	isr   []uint64
	quiet bool // the controller is not told
}

var _ Metadata = (*memMetadata)(nil)

func newMemMetadata(log *eventLog) *memMetadata {
	return &memMetadata{changed: make(chan struct{}, 1), races: map[string]race{}, log: log}
}

func (m *memMetadata) add(p PartitionState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parts = append(m.parts, &p)
}

func (m *memMetadata) find(name string) (PartitionState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.lookup(name); p != nil {
		return clonePartition(*p), true
	}
	return PartitionState{}, false
}

func (m *memMetadata) lookup(name string) *PartitionState {
	for _, p := range m.parts {
		if partitionName(*p) == name {
			return p
		}
	}
	return nil
}

// setISR is the partition leader's ISR change, at the current epochs.
func (m *memMetadata) setISR(name string, isr []uint64, notify bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.lookup(name)
	if p == nil {
		return fmt.Errorf("no partition %s", name)
	}
	if err := casUpdate(p, p.LeaderEpoch, p.PartitionEpoch, nil, isr, false); err != nil {
		return err
	}
	if notify {
		m.notify()
	}
	return nil
}

// notify wakes the controller; it never blocks.
func (m *memMetadata) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

func (m *memMetadata) Changed() <-chan struct{}        { return m.changed }
func (m *memMetadata) Labels(uint64) map[string]string { return nil }

func (m *memMetadata) Controlled() []PartitionState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PartitionState, len(m.parts))
	for i, p := range m.parts {
		out[i] = clonePartition(*p)
	}
	return out
}

func (m *memMetadata) Elect(_ context.Context, changes []Change) ([]error, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failNext; err != nil {
		m.failNext = nil
		for _, ch := range changes {
			m.log.add("%s: refused: %v", changeText(ch), err)
		}
		return nil, err
	}
	errs := make([]error, len(changes))
	notify := false
	for i, ch := range changes {
		name := partitionName(ch.Partition)
		p := m.lookup(name)
		if p == nil {
			errs[i] = fmt.Errorf("unknown partition %s", name)
			m.log.add("%s: refused: %v", changeText(ch), errs[i])
			continue
		}
		if r, ok := m.races[name]; ok {
			delete(m.races, name)
			before := nodesText(p.ISR)
			if err := casUpdate(p, p.LeaderEpoch, p.PartitionEpoch, nil, r.isr, false); err != nil {
				m.log.add("%s: race: its leader's ISR change failed: %v", name, err)
			} else {
				m.log.add("%s: isr %s->%s by its leader, just before the commit", name, before, nodesText(p.ISR))
				notify = notify || !r.quiet
			}
		}
		leader := ch.Leader
		if err := casUpdate(p, ch.Partition.LeaderEpoch, ch.Partition.PartitionEpoch, &leader, ch.ISR, ch.Partition.Unclean); err != nil {
			errs[i] = err
			m.log.add("%s: refused: %v", changeText(ch), err)
			continue
		}
		notify = true
		m.log.add("%s: committed epochs=%d/%d isr=%s", changeText(ch), p.LeaderEpoch, p.PartitionEpoch, nodesText(p.ISR))
	}
	if notify {
		m.notify()
	}
	return errs, nil
}

// errStale is casUpdate's error for a change made on epochs that moved.
var errStale = errors.New("stale epochs")

// casUpdate applies a leader and ISR change to p as raft's partition
// state machine does (partitionSM.update): only at p's epochs; a new leader
// must be a replica and in the ISR unless unclean, which makes the ISR
// that leader alone; a change of leader raises the leader epoch and any
// change the partition epoch. leader nil keeps the leader, isr nil the ISR.
func casUpdate(p *PartitionState, leaderEpoch, partitionEpoch int32, leader *uint64, isr []uint64, unclean bool) error {
	name := partitionName(*p)
	if leaderEpoch != p.LeaderEpoch || partitionEpoch != p.PartitionEpoch {
		return fmt.Errorf("%w: %s: expected leader epoch %d and partition epoch %d, have %d and %d",
			errStale, name, leaderEpoch, partitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
	}
	newLeader, newISR := p.Leader, p.ISR
	if isr != nil {
		newISR = slices.Clone(isr)
		for i, id := range newISR {
			if !slices.Contains(p.Replicas, id) || slices.Contains(newISR[:i], id) {
				return fmt.Errorf("%s: ISR %v must be distinct replicas of %v", name, isr, p.Replicas)
			}
		}
	}
	if leader != nil {
		newLeader = *leader
		switch {
		case newLeader == 0:
		case !slices.Contains(p.Replicas, newLeader):
			return fmt.Errorf("%s: leader %d is not a replica of %v", name, newLeader, p.Replicas)
		case !slices.Contains(newISR, newLeader) && !unclean:
			return fmt.Errorf("%s: leader %d is not in the ISR %v and the update is not unclean", name, newLeader, newISR)
		case !slices.Contains(newISR, newLeader):
			newISR = []uint64{newLeader}
		}
	}
	if newLeader != 0 && !slices.Contains(newISR, newLeader) {
		return fmt.Errorf("%s: ISR %v leaves out leader %d", name, newISR, newLeader)
	}
	changed := false
	if newLeader != p.Leader {
		p.Leader = newLeader
		p.LeaderEpoch++
		changed = true
	}
	if !slices.Equal(newISR, p.ISR) {
		p.ISR = newISR
		changed = true
	}
	if changed {
		p.PartitionEpoch++
	}
	return nil
}

// scriptPolicy answers as the script's answer directive says, and as
// first-isr for partitions without an answer.
type scriptPolicy struct {
	mu      sync.Mutex
	answers map[string]Decision
	whole   string // "error": Decide fails; "short": one answer too few
}

func (s *scriptPolicy) batch(how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.whole = how
}

var _ Policy = (*scriptPolicy)(nil)

func (*scriptPolicy) Name() string { return "script" }

func (s *scriptPolicy) Decide(_ context.Context, in []Input) ([]Decision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Decision, len(in))
	for i, p := range in {
		d, ok := s.answers[fmt.Sprintf("%s-%d", p.Topic, p.Partition)]
		if !ok {
			d = firstISR(p)
		}
		out[i] = d
	}
	switch s.whole {
	case "error":
		s.whole = ""
		return nil, context.DeadlineExceeded
	case "short":
		s.whole = ""
		return out[:len(out)-1], nil
	}
	return out, nil
}

func (s *scriptPolicy) set(name string, d *Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == nil {
		delete(s.answers, name)
		return
	}
	s.answers[name] = *d
}

// tracePolicy logs every Decide call of the policy it wraps.
type tracePolicy struct {
	Policy
	log *eventLog
}

func (p tracePolicy) Decide(ctx context.Context, in []Input) ([]Decision, error) {
	out, err := p.Policy.Decide(ctx, in)
	for i, x := range in {
		answer := "error: " + fmt.Sprint(err)
		if err == nil && i < len(out) {
			answer = decisionText(out[i])
		}
		p.log.add("decide %s-%d %s [%s] -> %s", x.Topic, x.Partition, x.Reason, summary(x), answer)
	}
	return out, err
}

func decisionText(d Decision) string {
	switch {
	case d.Keep:
		return "keep"
	case d.Leader == 0:
		return "none"
	}
	return strconv.FormatUint(d.Leader, 10)
}

// changePolicy names who decided a change, as the output prints it, and
// whom first-isr stood in for and why.
func changePolicy(ch Change) string {
	if fb := ch.Fallback; fb != nil {
		return fmt.Sprintf("%s (in place of %s: %s)", ch.Policy, fb.Policy, fb.Cause)
	}
	return ch.Policy
}

func changeText(ch Change) string {
	return fmt.Sprintf("%s leader %s->%s reason=%s policy=%s", partitionName(ch.Partition),
		nodeText(ch.Partition.Leader), nodeText(ch.Leader), ch.Reason, changePolicy(ch))
}

func partitionText(p PartitionState) string {
	s := fmt.Sprintf("%s replicas=%s leader=%s isr=%s epochs=%d/%d", partitionName(p),
		nodesText(p.Replicas), nodeText(p.Leader), nodesText(p.ISR), p.LeaderEpoch, p.PartitionEpoch)
	if p.Unclean {
		s += " unclean"
	}
	return s
}

func partitionName(p PartitionState) string { return fmt.Sprintf("%s-%d", p.Topic, p.Partition) }

func nodeText(n uint64) string {
	if n == 0 {
		return "none"
	}
	return strconv.FormatUint(n, 10)
}

func nodesText(ns []uint64) string {
	if len(ns) == 0 {
		return "none"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ",")
}

func clonePartition(p PartitionState) PartitionState {
	p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
	return p
}

// TestMemMetadata_Elect pins the test double to the state machine's
// compare-and-set (raft/testdata/partition_updates.txt): the controller
// tests mean something only if a stale commit fails here too.
func TestMemMetadata_Elect(t *testing.T) {
	base := PartitionState{Topic: "t", Replicas: []uint64{1, 2, 3}, ISR: []uint64{1, 2, 3}, Leader: 1, LeaderEpoch: 2, PartitionEpoch: 5}
	tests := []struct {
		name    string
		change  Change
		want    string // partitionText after, or the error
		wantErr error
	}{
		{
			name:   "a change at the partition's epochs applies and raises both",
			change: Change{Partition: base, Leader: 2, ISR: []uint64{2, 3}},
			want:   "t-0 replicas=1,2,3 leader=2 isr=2,3 epochs=3/6",
		},
		{
			name:   "offline keeps the ISR",
			change: Change{Partition: base, Leader: 0, ISR: base.ISR},
			want:   "t-0 replicas=1,2,3 leader=none isr=1,2,3 epochs=3/6",
		},
		{
			name:    "a moved leader epoch is refused",
			change:  Change{Partition: func() PartitionState { p := base; p.LeaderEpoch = 1; return p }(), Leader: 2, ISR: base.ISR},
			wantErr: errStale,
		},
		{
			name:    "a moved partition epoch is refused",
			change:  Change{Partition: func() PartitionState { p := base; p.PartitionEpoch = 4; return p }(), Leader: 2, ISR: base.ISR},
			wantErr: errStale,
		},
		{
			name:    "a leader that is not a replica is refused",
			change:  Change{Partition: base, Leader: 4, ISR: []uint64{4}},
			wantErr: errAny,
		},
		{
			name:    "a leader outside the ISR is refused unless unclean",
			change:  Change{Partition: base, Leader: 3, ISR: []uint64{1, 2}},
			wantErr: errAny,
		},
		{
			name:   "an unclean leader outside the ISR leads it alone",
			change: Change{Partition: func() PartitionState { p := base; p.Unclean = true; return p }(), Leader: 3, ISR: []uint64{1, 2}},
			want:   "t-0 replicas=1,2,3 leader=3 isr=3 epochs=3/6",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemMetadata(&eventLog{start: time.Now()})
			m.add(clonePartition(base))
			errs, err := m.Elect(context.Background(), []Change{tt.change})
			if err != nil || len(errs) != 1 {
				t.Fatalf("Elect() = %v, %v; want one result", errs, err)
			}
			after := partitionText(m.Controlled()[0])
			switch {
			case tt.wantErr == nil && errs[0] != nil:
				t.Errorf("Elect(%s) = %v, want %s", changeText(tt.change), errs[0], tt.want)
			case tt.wantErr == nil && after != tt.want:
				t.Errorf("Elect(%s) left %s, want %s", changeText(tt.change), after, tt.want)
			case tt.wantErr != nil && (errs[0] == nil || tt.wantErr != errAny && !errors.Is(errs[0], tt.wantErr)):
				t.Errorf("Elect(%s) = %v, want %v", changeText(tt.change), errs[0], tt.wantErr)
			case tt.wantErr != nil && after != partitionText(base):
				t.Errorf("refused Elect(%s) left %s, want it unchanged", changeText(tt.change), after)
			}
		})
	}
}

// errAny is a wantErr that any error matches.
var errAny = errors.New("any error")
