package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// folder is a Modules over files held in memory: a file is its digest, or
// an error; instantiating one gives a scripted policy that elects the
// file's leader. block, if set, holds Instantiate until it is closed.
type folder struct {
	mu       sync.Mutex
	files    map[string]string // name -> digest, or "!" + why it is refused
	good     map[string]string // name -> the last digest that instantiated
	bad      map[string]bool   // digests that fail their self-test
	block    chan struct{}
	entered  chan struct{}
	instance int
	// lastGoodCalls counts LastGood calls.
	lastGoodCalls int
}

func newFolder() *folder {
	return &folder{files: map[string]string{}, good: map[string]string{}, bad: map[string]bool{}}
}

func (f *folder) set(name, digest string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if digest == "" {
		delete(f.files, name)
		return
	}
	f.files[name] = digest
}

func (f *folder) Scan(context.Context) (map[string]error, error) { return nil, nil }
func (f *folder) Dir() string                                    { return "/policies" }

func (f *folder) Digest(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.files[name]
	switch {
	case !ok:
		return "", fmt.Errorf("no file %s", name)
	case d[0] == '!':
		return "", errors.New(d[1:])
	}
	return d, nil
}

func (f *folder) Instantiate(_ context.Context, name string, _ map[string]string, _ Shape) (Instance, error) {
	if f.block != nil {
		f.entered <- struct{}{}
		<-f.block
	}
	d, err := f.Digest(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bad[d] {
		return nil, fmt.Errorf("%s: self-test failed", d)
	}
	f.good[name] = d
	f.instance++
	return &fakeInstance{digest: d}, nil
}

func (f *folder) LastGood(_ context.Context, name string, _ map[string]string, _ Shape) (Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastGoodCalls++
	d, ok := f.good[name]
	if f.bad[d] {
		return nil, fmt.Errorf("%s: self-test failed", d)
	}
	if !ok {
		return nil, fmt.Errorf("no last good module: %w", fs.ErrNotExist)
	}
	return &fakeInstance{digest: d}, nil
}

// fakeInstance elects the second replica and names its digest.
type fakeInstance struct {
	digest string
	closed bool
}

func (p *fakeInstance) Name() string   { return "p.wasm" }
func (p *fakeInstance) Digest() string { return p.digest }
func (p *fakeInstance) Resets() int    { return 0 }
func (p *fakeInstance) Close(context.Context) error {
	p.closed = true
	return nil
}

func (p *fakeInstance) Decide(_ context.Context, in []Input) ([]Decision, error) {
	out := make([]Decision, len(in))
	for i, x := range in {
		out[i] = Decision{Leader: x.Replicas[1].ID, Reason: p.digest}
	}
	return out, nil
}

func testInput(topic string) []Input {
	return []Input{{Topic: topic, Leader: 1, Reason: ReasonLeaderTimeout, Replicas: []Replica{
		{ID: 1, InISR: true}, {ID: 2, Alive: true, InISR: true}, {ID: 3, Alive: true, InISR: true}}}}
}

func TestRules_loadReplaceAndKeep(t *testing.T) {
	ctx := context.Background()
	f := newFolder()
	rs := NewRules([]Rule{{Topics: "m.*", Policy: "p.wasm"}, {Topics: "b.*", Policy: Builtin}}, f, 50*time.Millisecond,
		slog.New(slog.DiscardHandler))
	decide := func(topic string) Decision {
		t.Helper()
		ds, err := rs.Decide(ctx, testInput(topic))
		if err != nil || len(ds) != 1 {
			t.Fatalf("Decide(%s) = %v, %v", topic, ds, err)
		}
		return ds[0]
	}

	// No file: the rule's partitions carry ErrNotLoaded for the fallback.
	rs.Reload(ctx)
	if d := decide("m.x"); CauseOf(d.Err) != CauseNotLoaded {
		t.Fatalf("no module: decision %+v, want a not_loaded error", d)
	}
	if d := decide("b.x"); d.Err != nil || d.Source.Policy != Builtin || d.Leader != 2 {
		t.Fatalf("built-in rule: decision %+v", d)
	}
	if info := rs.Info(); info.Rules[0].Running || info.Rules[0].Error == "" {
		t.Errorf("no module: rule status %+v, want not running with why", info.Rules[0])
	}

	f.set("p.wasm", "sha256:a")
	rs.Reload(ctx)
	if d := decide("m.x"); d.Source != (Source{Policy: "p.wasm", Digest: "sha256:a"}) || d.Leader != 2 {
		t.Fatalf("loaded: decision %+v", d)
	}

	// A version that fails its self-test leaves the rule on the old one,
	// with why.
	f.bad["sha256:b"] = true
	f.set("p.wasm", "sha256:b")
	rs.Reload(ctx)
	if d := decide("m.x"); d.Source.Digest != "sha256:a" {
		t.Fatalf("after a bad version: decided by %+v, want sha256:a", d.Source)
	}
	if st := rs.Info().Rules[0]; !st.Running || st.Digest != "sha256:a" || st.Error == "" {
		t.Errorf("after a bad version: rule status %+v, want sha256:a running and last_error set", st)
	}

	// A node restarted with the bad version in the folder runs the last
	// good module.
	restarted := NewRules([]Rule{{Topics: "m.*", Policy: "p.wasm"}}, f, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	restarted.Reload(ctx)
	st := restarted.Info().Rules[0]
	if !st.Running || st.Digest != "sha256:a" || st.Error == "" {
		t.Errorf("restarted over a bad file: rule status %+v, want the last good sha256:a with last_error", st)
	}
	// A node restarted with the file gone and a last good module that
	// fails too tries that module once, not at every scan.
	f.bad["sha256:a"] = true
	f.set("p.wasm", "")
	f.lastGoodCalls = 0
	again := NewRules([]Rule{{Topics: "m.*", Policy: "p.wasm"}}, f, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	for range 3 {
		again.Reload(ctx)
	}
	if f.lastGoodCalls != 1 {
		t.Errorf("LastGood called %d times over 3 scans, want once", f.lastGoodCalls)
	}
	if st := again.Info().Rules[0]; st.Running || !strings.Contains(st.Error, "the last good module failed too") {
		t.Errorf("both bad: rule status %+v, want not running, both reasons", st)
	}
	delete(f.bad, "sha256:a")

	// and a good new version replaces it, clearing the error.
	f.set("p.wasm", "sha256:c")
	restarted.Reload(ctx)
	if st := restarted.Info().Rules[0]; st.Digest != "sha256:c" || st.Error != "" {
		t.Errorf("after a good version: rule status %+v, want sha256:c and no error", st)
	}
}

// TestRules_loadingHoldsNoLockElectionsNeed: while a module is being
// loaded (compiled, instantiated, self-tested), elections and the admin
// API's view of the rules answer at once.
func TestRules_loadingHoldsNoLockElectionsNeed(t *testing.T) {
	ctx := context.Background()
	f := newFolder()
	f.set("p.wasm", "sha256:a")
	rs := NewRules([]Rule{{Topics: "*", Policy: "p.wasm"}}, f, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	rs.Reload(ctx)
	f.block, f.entered = make(chan struct{}), make(chan struct{})
	f.set("p.wasm", "sha256:b")
	done := make(chan struct{})
	go func() { rs.Reload(ctx); close(done) }()
	<-f.entered
	answered := make(chan struct{})
	go func() {
		rs.Info()
		rs.Decide(ctx, testInput("t"))
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("Info and Decide waited for a module being loaded")
	}
	close(f.block)
	<-done
	if st := rs.Info().Rules[0]; st.Digest != "sha256:b" {
		t.Errorf("after the load: rule runs %s, want sha256:b", st.Digest)
	}
}
