package appliance_test

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/reeve-edge/reeve/appliance"
	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/internal/leakcheck"
)

// checkNoLeaks fails t if a goroutine started after the call outlives t's
// later cleanups, the node's Close among them. Call it just before
// appliance.Start: cleanups run in reverse order, so its check runs right
// after Close returns. It checks twice:
//
//   - at once: no goroutine runs reeve's code or was started by it, since
//     Close returns only after every goroutine Start started has ended;
//   - with goleak, which retries for a moment: no goroutine at all is left,
//     the libraries' (Dragonboat, NATS) and the test's clients' included.
//
// # Notes
//
// Both checks see every goroutine of the process, not only the node's, and
// telling one node's goroutines from another's does not work, not even by
// the stacks that created them: two nodes run the same code. So the
// goroutines running at the call (a process test's waiters, what an earlier
// test left stopping) are the baseline, and the test is held to the
// sequential phase of the run, when no other test starts goroutines:
// t.Setenv panics in a test that called t.Parallel, and makes a later
// t.Parallel panic.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	t.Setenv("REEVE_LEAK_CHECK", "1")
	base := leakcheck.Take()
	t.Cleanup(func() {
		base.CheckCode(t, "github.com/reeve-edge/reeve/", "/appliance_test.")
		// The test's HTTP requests went through the default transport,
		// whose kept-alive connections are the test's, not the node's.
		http.DefaultClient.CloseIdleConnections()
		base.VerifyNone(t)
	})
}

// TestServer_Close_rightAfterStart closes a node before it has joined its
// cluster or served a request, and a node whose Start failed part way:
// Close, or the failed Start, still waits for every goroutine Start
// started, those still starting included.
func TestServer_Close_rightAfterStart(t *testing.T) {
	off := false
	tests := []struct {
		name    string
		mutate  func(t *testing.T, c *config.Config)
		wantErr bool
	}{
		{name: "events off", mutate: func(_ *testing.T, c *config.Config) { c.Events.Enabled = &off }},
		{name: "embedded NATS", mutate: func(*testing.T, *config.Config) {}},
		{name: "embedded JetStream", mutate: func(_ *testing.T, c *config.Config) { c.Events.EmbeddedJetStream = true }},
		{name: "admin port taken", wantErr: true, mutate: func(t *testing.T, c *config.Config) {
			// Everything but the admin endpoint is running when its
			// Listen fails.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			c.Admin.Listen = ln.Addr().String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkNoLeaks(t)
			var s *appliance.Server
			var err error
			// A port freePort found free may be taken again before Start
			// binds it (the embedded NATS server binds port 0): try again
			// on other ports; the failed Start is checked for leaks too.
			for range 3 {
				cfg := nodeConfig(t)
				tt.mutate(t, cfg)
				s, err = appliance.Start(cfg, slog.New(slog.DiscardHandler), appliance.Options{})
				if tt.wantErr || !errors.Is(err, syscall.EADDRINUSE) {
					break
				}
			}
			if tt.wantErr {
				if err == nil {
					s.Close()
					t.Fatal("Start() = nil error, want the admin listener's")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		})
	}
}
