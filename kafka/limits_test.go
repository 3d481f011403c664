package kafka

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceConsume sends one record to topic and reads every record back
// from the start, checking the count grows to want.
func produceConsume(t *testing.T, prod, cons *kgo.Client, value string, want int) {
	t.Helper()
	ctx := ctxT(t)
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("ProduceSync(%s) = %v", value, err)
	}
	got := 0
	for got < want {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches after %s = %v", value, err)
		}
		got += fs.NumRecords()
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Server) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func TestServe_connectionFloodHoldsAtMostMaxConnections(t *testing.T) {
	const (
		maxConns = 1000
		perIP    = 150
		ips      = 25
		each     = 200 // 5,000 attempts
	)
	s, _ := startServer(t, func(c *Config) {
		c.DefaultPartitions = 1
		c.MaxConnections, c.MaxConnectionsPerIP = maxConns, perIP
	})
	prod := newClient(t, s, kgo.DefaultProduceTopic("steady"))
	cons := newClient(t, s, kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produceConsume(t, prod, cons, "before", 1)
	normal := s.held()

	// Each source address of 127.0.1.0/24 is a host of its own.
	var (
		mu    sync.Mutex
		flood []net.Conn
		wg    sync.WaitGroup
	)
	dial := func(i int) {
		defer wg.Done()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}}
		for range each {
			c, err := d.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Errorf("dial from 127.0.1.%d: %v", i+1, err)
				return
			}
			mu.Lock()
			flood = append(flood, c)
			mu.Unlock()
		}
	}
	// One noisy host first, alone, so it meets its per-IP limit; then the
	// rest at once, who meet the total.
	start := time.Now()
	wg.Add(1)
	dial(0)
	for i := 1; i < ips; i++ {
		wg.Add(1)
		go dial(i)
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	refused := func() int { return int(s.metrics.refusedMax.Get() + s.metrics.refusedPerIP.Get()) }
	waitFor(t, "every attempt accepted or refused", func() bool { return s.held()-normal+refused() == ips*each })
	t.Logf("%d attempts in %v: %d held, %d refused at max_connections, %d at max_connections_per_ip",
		ips*each, time.Since(start), s.held(), s.metrics.refusedMax.Get(), s.metrics.refusedPerIP.Get())
	if got := s.held(); got != maxConns {
		t.Errorf("connections held = %d, want max_connections %d", got, maxConns)
	}
	if s.metrics.refusedMax.Get() == 0 || s.metrics.refusedPerIP.Get() < each-perIP {
		t.Errorf("refusals at max_connections %d, at max_connections_per_ip %d; want some, and at least %d",
			s.metrics.refusedMax.Get(), s.metrics.refusedPerIP.Get(), each-perIP)
	}
	// The clients connected before the flood keep their connections.
	produceConsume(t, prod, cons, "during", 1)

	for _, c := range flood {
		c.Close()
	}
	waitFor(t, "flood connections to go", func() bool { return s.held() == normal })
	fresh := newClient(t, s, kgo.DefaultProduceTopic("steady"))
	freshCons := newClient(t, s, kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produceConsume(t, fresh, freshCons, "after", 3)
}

// emfileListener fails its first fails Accepts as a process out of file
// descriptors does, noting when each call came.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
	mu    sync.Mutex
	calls []time.Time
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	l.mu.Unlock()
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestServe_acceptEMFILEBacksOffAndKeepsServing(t *testing.T) {
	const fails = 6
	mc := newMemCluster()
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AutoCreateTopics: true, DefaultPartitions: 1, DefaultReplicationFactor: 1}, mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	mc.host, mc.port, _ = SplitHostPort(s.Addr().String())
	ln := &emfileListener{Listener: s.ln}
	ln.fails.Store(fails)
	s.ln = ln
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve after Close = %v, want nil", err)
		}
	})

	prod := newClient(t, s, kgo.DefaultProduceTopic("fds"))
	cons := newClient(t, s, kgo.ConsumeTopics("fds"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produceConsume(t, prod, cons, "after EMFILE", 1)
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v during accept failures", err)
	default:
	}
	if got := s.metrics.acceptErrors.Get(); got != fails {
		t.Errorf("accept errors counted = %d, want %d", got, fails)
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	// 5, 10, 20, 40, 80 and 160 ms between the failed calls and the next.
	want := minAcceptBackoff
	for i := 1; i <= fails; i++ {
		if gap := ln.calls[i].Sub(ln.calls[i-1]); gap < want {
			t.Errorf("gap before accept %d = %v, want at least %v", i, gap, want)
		}
		want *= 2
	}
}

func TestServe_slowHugeRequestsStayWithinTheMemoryBudget(t *testing.T) {
	const (
		attackers = 30
		declared  = 100 << 20
		budgetMax = 128 << 20
	)
	s, _ := startServer(t, func(c *Config) {
		c.DefaultPartitions = 1
		c.MaxRequestBytes = declared + 1024
		c.QueuedMaxRequestBytes = budgetMax
		// Long enough for the attackers to fill the budget on a loaded
		// machine before the server drops their unfinished requests.
		c.RequestTimeout = 10 * time.Second
	})
	prod := newClient(t, s, kgo.DefaultProduceTopic("steady"))
	cons := newClient(t, s, kgo.ConsumeTopics("steady"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	produceConsume(t, prod, cons, "before", 1)
	runtime.GC()

	var (
		maxUsed, maxHeap atomic.Uint64
		stop             = make(chan struct{})
		sampled          = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if u := uint64(s.budget.inUse()); u > maxUsed.Load() {
				maxUsed.Store(u)
			}
			if i%10 == 0 {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > maxHeap.Load() {
					maxHeap.Store(ms.HeapInuse)
				}
			}
		}
	}()

	// Each attacker declares a 100 MiB produce and sends its body as fast
	// as the server reads it, 64 KiB at a time, until the server hangs up.
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range attackers {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			head := binary.BigEndian.AppendUint32(nil, declared)
			head = append(head, 0, 0, 0, 9, 0, 0, 0, 1, 0xff, 0xff) // Produce v9, null client id
			if _, err := c.Write(head); err != nil {
				return
			}
			piece := make([]byte, 64<<10)
			for left := declared - 10; left > 0; left -= len(piece) {
				n, err := c.Write(piece[:min(len(piece), left)])
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "the budget to fill", func() bool { return s.budget.inUse() >= s.budget.large-frameChunk })
	// Small requests use the reserve: the steady client goes on.
	start := time.Now()
	for i := range 3 {
		produceConsume(t, prod, cons, "during-"+strconv.Itoa(i), 1)
	}
	duringTook := time.Since(start)
	wg.Wait() // the server drops them at their request timeout
	// Only the steady consumer's long-polling fetch may still hold a little.
	waitFor(t, "the budget to come back", func() bool { return s.budget.inUse() < frameChunk })
	close(stop)
	<-sampled
	t.Logf("%d attackers sent %d MiB; budget held at most %d MiB of %d MiB; heap in use at most %d MiB; steady client's 3 produce+consume rounds took %v; %d budget waits",
		attackers, sent.Load()>>20, maxUsed.Load()>>20, budgetMax>>20, maxHeap.Load()>>20, duringTook, s.metrics.budgetWaits.Get())
	if got := maxUsed.Load(); got > budgetMax {
		t.Errorf("budget in use reached %d bytes, want at most %d", got, budgetMax)
	}
	if got := maxHeap.Load(); got >= 512<<20 {
		t.Errorf("heap in use reached %d MiB, want under 512 MiB", got>>20)
	}
	produceConsume(t, prod, cons, "after", 1)
}

func TestServe_requestOfManyChunksArrivesWhole(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	prod := newClient(t, s, kgo.DefaultProduceTopic("chunks"))
	value := make([]byte, 11*frameChunk+123)
	for i := range value {
		value[i] = byte(i * 7 / 3)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
		t.Fatalf("ProduceSync(%d bytes) = %v", len(value), err)
	}
	cons := newClient(t, s, kgo.ConsumeTopics("chunks"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil || fs.NumRecords() != 1 || !bytes.Equal(fs.Records()[0].Value, value) {
		t.Fatalf("fetched %d records, err %v; want the %d-byte record back", fs.NumRecords(), err, len(value))
	}
	if got := s.budget.inUse(); got >= frameChunk {
		t.Errorf("budget in use after the produce = %d, want the request's part returned", got)
	}
}
