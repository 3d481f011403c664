package kafka

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/internal/leakcheck"
)

// The package's tests run one at a time (none calls t.Parallel), so the
// goroutines started during a test are that test's; those running when it
// starts (what an earlier test's server is still stopping) are left out.

// TestServer_Close_leavesNoGoroutine closes a server while a consumer's
// fetch waits in its long poll: once Close and Serve have returned no
// goroutine runs the package's code, and once the client is closed too no
// goroutine is left at all.
func TestServer_Close_leavesNoGoroutine(t *testing.T) {
	base := leakcheck.Take()
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
	for deadline := time.Now().Add(5 * time.Second); len(base.Started("kafka.waitAny", "")) == 0; time.Sleep(10 * time.Millisecond) {
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
	base.CheckCode(t, "github.com/reeve-edge/reeve/kafka.", "")
	cl.Close()
	base.VerifyNone(t)
}

// TestServer_Serve_afterCloseStartsNothing: a server closed before it
// served (a node closed as soon as it started) starts no goroutine that
// Close did not wait for.
func TestServer_Serve_afterCloseStartsNothing(t *testing.T) {
	base := leakcheck.Take()
	s, _ := newLeakServer(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve() after Close = %v, want nil", err)
	}
	base.Check(t, "github.com/reeve-edge/reeve/kafka.", "")
}

// TestWaitAny_returnsAfterItsWatchers: a fetch's long poll leaves none of
// its goroutines behind, so Close, which waits for the request, waits for
// them too.
func TestWaitAny_returnsAfterItsWatchers(t *testing.T) {
	base := leakcheck.Take()
	chans := make([]<-chan struct{}, 64)
	for i := range chans {
		chans[i] = make(chan struct{})
	}
	if waitAny(t.Context(), chans, time.Millisecond) {
		t.Fatal("waitAny(64 open channels, 1ms) = true, want false")
	}
	if left := base.Started("kafka.waitAny", ""); len(left) > 0 {
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
