package appliance_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// notifySocket stands in for systemd's end of sd_notify: a unixgram socket
// whose messages arrive on msgs.
type notifySocket struct {
	path string
	msgs chan string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// A socket path must fit in 108 bytes; t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "reeve-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ns := &notifySocket{path: filepath.Join(dir, "notify.sock"), msgs: make(chan string, 1024)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ns.msgs)
				return
			}
			ns.msgs <- string(buf[:n])
		}
	}()
	return ns
}

// next returns the next message containing want, failing the test after
// timeout. Messages before it are passed to skipped, if set.
func (ns *notifySocket) next(t *testing.T, want string, timeout time.Duration, skipped func(string)) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-ns.msgs:
			if !ok {
				t.Fatalf("notify socket closed while waiting for %q", want)
			}
			if hasAssignment(m, want) {
				return m
			}
			if skipped != nil {
				skipped(m)
			}
		case <-deadline:
			t.Fatalf("no notify message with %q within %v", want, timeout)
		}
	}
}

// during collects the messages that arrive within d.
func (ns *notifySocket) during(d time.Duration) []string {
	var got []string
	deadline := time.After(d)
	for {
		select {
		case m := <-ns.msgs:
			got = append(got, m)
		case <-deadline:
			return got
		}
	}
}

// hasAssignment reports whether a notify message has a line that is want,
// or starts with want when want ends in "=" or a space.
func hasAssignment(msg, want string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == want || ((strings.HasSuffix(want, "=") || strings.HasSuffix(want, " ")) && strings.HasPrefix(l, want)) {
			return true
		}
	}
	return false
}

func count(msgs []string, want string) int {
	n := 0
	for _, m := range msgs {
		if hasAssignment(m, want) {
			n++
		}
	}
	return n
}

// TestSystemdNotify runs node 1 of a three-node cluster under a stand-in
// for systemd's notify socket: READY=1 only once a produce succeeds (not
// while node 1 waits alone for a quorum), STATUS lines, WATCHDOG=1 pings
// that stop while the Kafka acceptor is wedged and resume after, RELOADING
// with MONOTONIC_USEC then READY on SIGHUP, STOPPING on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	ns := newNotifySocket(t)
	dir := t.TempDir()
	var procs []*proc
	var members []string
	for i := 1; i <= 3; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		p := &proc{id: i, raft: freePort(t, ip), admin: freePort(t, ip), logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i))}
		procs = append(procs, p)
		members = append(members, fmt.Sprintf("%q", fmt.Sprintf("%d@%s", i, p.raft)))
	}
	for _, p := range procs {
		p.cfgPath = filepath.Join(dir, fmt.Sprintf("node%d.toml", p.id))
		writeNodeConfig(t, p, filepath.Join(dir, fmt.Sprintf("data%d", p.id)),
			fmt.Sprintf("initial_members = [%s]", strings.Join(members, ", ")))
	}
	wedge := filepath.Join(dir, "wedge")
	n1 := procs[0]
	n1.env = []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=2000000", "REEVE_TEST_KAFKA_WEDGE=" + wedge}
	n1.start(t)

	// Alone, node 1 has no quorum: STATUS says it waits for one and the
	// start timeout is extended; no READY.
	first := ns.next(t, "STATUS=", 20*time.Second, nil)
	if !hasAssignment(first, "EXTEND_TIMEOUT_USEC=") || !strings.Contains(first, "waiting for a quorum") {
		t.Errorf("first notify message while joining: %q, want EXTEND_TIMEOUT_USEC and a STATUS saying it waits for a quorum", first)
	}
	// WatchdogSec=2s: a ping every second, each after a probe bounded by
	// 500 ms, generous for a loaded test machine.
	early := ns.during(2500 * time.Millisecond)
	if c := count(early, "READY=1"); c != 0 {
		t.Fatalf("READY=1 sent while node 1 had no quorum: %q", early)
	}
	if c := count(early, "WATCHDOG=1"); c < 1 {
		t.Fatalf("no watchdog ping in 2.5s while joining (interval 2s, a ping due every 1s): %q", early)
	}
	procs[1].start(t)
	procs[2].start(t)

	ready := ns.next(t, "READY=1", 60*time.Second, nil)
	if !hasAssignment(ready, "STATUS=") {
		t.Errorf("READY=1 without a STATUS line: %q", ready)
	}
	t.Logf("ready: %q", ready)
	// At READY=1, a produce succeeds at once.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n1.kafka), kgo.AllowAutoTopicCreation(), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "notify", Value: []byte("ready")}).FirstErr(); err != nil {
		t.Fatalf("produce right after READY=1: %v", err)
	}

	// Healthy: pings keep coming.
	ns.next(t, "WATCHDOG=1", 5*time.Second, nil)
	ns.next(t, "WATCHDOG=1", 5*time.Second, nil)
	// Wedged acceptor: the pings stop and STATUS says why.
	if err := os.WriteFile(wedge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ns.next(t, "STATUS=unhealthy: ", 8*time.Second, nil)
	if got := ns.during(3 * time.Second); count(got, "WATCHDOG=1") != 0 {
		t.Fatalf("watchdog pinged while the Kafka acceptor was wedged: %q", got)
	}
	os.Remove(wedge)
	ns.next(t, "WATCHDOG=1", 5*time.Second, nil)

	// SIGHUP: RELOADING=1 with the monotonic time, then READY=1. The
	// file now asks for debug logs (a live setting) and a new Kafka
	// rebalance delay (a restart setting).
	cfg, err := os.ReadFile(n1.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(cfg), `level = "info"`, `level = "debug"`, 1)
	edited = strings.Replace(edited, `group_initial_rebalance_delay = "0s"`, `group_initial_rebalance_delay = "1s"`, 1)
	if err := os.WriteFile(n1.cfgPath, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n1.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloading := ns.next(t, "RELOADING=1", 10*time.Second, nil)
	if !hasAssignment(reloading, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", reloading)
	}
	ns.next(t, "READY=1", 10*time.Second, nil)
	logged, _ := os.ReadFile(n1.logPath)
	for _, want := range []string{`"msg":"reload: log level changed","from":"info","to":"debug"`,
		`"keys":"kafka.group_initial_rebalance_delay"`} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("node 1's log after SIGHUP lacks %s", want)
		}
	}

	// SIGTERM: STOPPING=1, then a clean exit.
	if err := n1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ns.next(t, "STOPPING=1", 10*time.Second, nil)
	if err := n1.cmd.Wait(); err != nil {
		t.Fatalf("node 1 after SIGTERM: %v", err)
	}
}
