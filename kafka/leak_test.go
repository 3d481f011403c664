package kafka

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

// The package's tests run one at a time (none calls t.Parallel), so the
// goroutines started during a test are that test's; those running when it
// starts (what an earlier test's server is still stopping) are left out.

// TestServer_Close_leavesNoGoroutine closes a server while a consumer's
// fetch waits in its long poll: once Close and Serve have returned no
// goroutine runs the package's code, and once the client is closed too no
// goroutine is left at all.
func TestServer_Close_leavesNoGoroutine(t *testing.T) {
	baseline, before := goleak.IgnoreCurrent(), goroutineIDs()
	s, _ := newLeakServer(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Addr().String()), kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic("leak"), kgo.ConsumeTopics("leak"), kgo.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if fs := cl.PollFetches(ctx); fs.Err0() != nil || fs.NumRecords() != 1 {
		t.Fatalf("PollFetches = %d records, %v; want 1", fs.NumRecords(), fs.Err0())
	}
	// The client's next fetch finds nothing and waits on the partitions.
	for deadline := time.Now().Add(5 * time.Second); len(running("kafka.waitAny", before)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fetch waits in its long poll")
		}
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve() = %v after Close, want nil", err)
	}
	for _, g := range running("github.com/reeve-edge/reeve/kafka.", before) {
		t.Errorf("goroutine running the package's code after Close:\n%s", g)
	}
	cl.Close()
	goleak.VerifyNone(t, baseline)
}

// TestServer_Serve_afterCloseStartsNothing: a server closed before it
// served (a node closed as soon as it started) starts no goroutine that
// Close did not wait for.
func TestServer_Serve_afterCloseStartsNothing(t *testing.T) {
	baseline, before := goleak.IgnoreCurrent(), goroutineIDs()
	s, _ := newLeakServer(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve() after Close = %v, want nil", err)
	}
	for _, g := range running("github.com/reeve-edge/reeve/kafka.", before) {
		t.Errorf("goroutine running the package's code after Close:\n%s", g)
	}
	goleak.VerifyNone(t, baseline)
}

// TestWaitAny_returnsAfterItsWatchers: a fetch's long poll leaves none of
// its goroutines behind, so Close, which waits for the request, waits for
// them too.
func TestWaitAny_returnsAfterItsWatchers(t *testing.T) {
	before := goroutineIDs()
	chans := make([]<-chan struct{}, 64)
	for i := range chans {
		chans[i] = make(chan struct{})
	}
	if waitAny(t.Context(), chans, time.Millisecond) {
		t.Fatal("waitAny(64 open channels, 1ms) = true, want false")
	}
	if left := running("kafka.waitAny", before); len(left) > 0 {
		t.Errorf("%d of waitAny's goroutines run after it returned:\n%s", len(left), left[0])
	}
}

func newLeakServer(t *testing.T) (*Server, *memCluster) {
	t.Helper()
	mc := newMemCluster()
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AutoCreateTopics: true,
		DefaultPartitions: 2, DefaultReplicationFactor: 1, MaxRequestBytes: 1 << 20,
		HeartbeatInterval: time.Second, Log: LogOptions{SegmentBytes: 1 << 20}}, mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	mc.host, mc.port, _ = SplitHostPort(s.Addr().String())
	return s, mc
}

// goroutineStacks returns the stacks of every goroutine but the caller's,
// by id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for ; n == len(buf); n = runtime.Stack(buf, true) {
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for i, g := range strings.Split(string(buf[:n]), "\n\n") {
		if i > 0 { // the caller's comes first
			id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
			stacks[id] = g
		}
	}
	return stacks
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range goroutineStacks() {
		ids[id] = true
	}
	return ids
}

// running returns the stacks of the goroutines not in before that have fn
// in a function's name on their stack or as their creator.
func running(fn string, before map[string]bool) []string {
	var stacks []string
	for id, g := range goroutineStacks() {
		if !before[id] && strings.Contains(g, fn) {
			stacks = append(stacks, g)
		}
	}
	return stacks
}
