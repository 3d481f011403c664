package kafka

import (
	"context"
	"testing"
	"time"
)

// TestProbe: a serving listener answers the probe; one whose acceptor is
// stuck fails it within the probe's deadline although the kernel still
// queues the connection; it answers again once the acceptor runs.
func TestProbe(t *testing.T) {
	wedged := make(chan struct{})
	stuck := make(chan bool, 1)
	stuck <- false
	s, _ := startServer(t, func(c *Config) {
		c.AcceptedHook = func() {
			v := <-stuck
			stuck <- v
			if v {
				<-wedged
			}
		}
	})
	if err := s.Probe(context.Background()); err != nil {
		t.Fatalf("probe of a serving listener: %v", err)
	}

	<-stuck
	stuck <- true
	// The next accepted connection (this probe's) stops the acceptor.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Probe(ctx); err == nil {
		t.Fatal("probe of a wedged acceptor succeeded")
	} else {
		t.Logf("wedged: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("probe took %v, want about its 300ms deadline", took)
	}

	<-stuck
	stuck <- false
	close(wedged)
	if err := s.Probe(context.Background()); err != nil {
		t.Fatalf("probe after the acceptor resumed: %v", err)
	}
}
