package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The daemon's side of systemd's notify protocol (sd_notify(3)): READY=1
// once the node serves clients, STATUS= lines, WATCHDOG=1 pings while the
// node is healthy, RELOADING=1 around a SIGHUP and STOPPING=1 when a stop
// begins. Without NOTIFY_SOCKET (not started by systemd) nothing is sent.

// notifier sends sd_notify messages.
type notifier struct {
	log    *slog.Logger
	socket bool        // NOTIFY_SOCKET was set
	failed atomic.Bool // a send error was logged already
	ready  atomic.Bool // READY=1 was sent
}

func newNotifier(log *slog.Logger) *notifier {
	return &notifier{log: log, socket: os.Getenv("NOTIFY_SOCKET") != ""}
}

// send writes one notify message of newline-separated assignments.
func (n *notifier) send(assignments ...string) {
	if !n.socket {
		return
	}
	msg := strings.Join(assignments, "\n")
	if _, err := daemon.SdNotify(false, msg); err != nil && !n.failed.Swap(true) {
		n.log.Warn("systemd: cannot write to NOTIFY_SOCKET; systemd may time the service out",
			"socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
}

// status formats a STATUS= assignment (one line).
func status(line string) string {
	return "STATUS=" + strings.ReplaceAll(line, "\n", " ")
}

// servingPoll is how often waitServing looks again.
const servingPoll = 50 * time.Millisecond

// waitServing returns once the node serves clients: it has joined the
// cluster, every Raft group it runs has a leader, and its Kafka listener
// answers a request. Before that a produce could fail; after it, one to a
// partition with a live leader succeeds.
func (s *Server) waitServing(ctx context.Context) error {
	if err := s.store.WaitReady(ctx); err != nil {
		return err
	}
	t := time.NewTicker(servingPoll)
	defer t.Stop()
	for {
		if s.groupsLed() {
			probe, cancel := context.WithTimeout(ctx, time.Second)
			err := s.kafka.Probe(probe)
			cancel()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// groupsLed reports whether every Raft group this node runs has a leader.
func (s *Server) groupsLed() bool {
	for _, g := range s.store.Groups() {
		if _, ok := s.store.GroupLeader(g); !ok {
			return false
		}
	}
	return true
}

// statusInterval is how often STATUS= is refreshed (when it changed).
const statusInterval = 5 * time.Second

// announce sends READY=1 with the first STATUS once the node serves, then
// keeps STATUS current.
func (s *Server) announce(ctx context.Context, n *notifier) {
	serving := make(chan error, 1)
	go func() { serving <- s.waitServing(ctx) }()
	if !s.whileJoining(ctx, n, serving) {
		return
	}
	last := s.admin.Status().Summary()
	s.log.Info("reeve ready", "node_id", s.cfg.Node.ID, "partition_groups", s.store.PartitionGroups(),
		"admin", "http://"+s.AdminAddr(), "status", last)
	n.send(daemon.SdNotifyReady, status(last))
	n.ready.Store(true)
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now := s.admin.Status().Summary(); now != last {
			n.send(status(now))
			last = now
		}
	}
}

// joinExtend is how far each EXTEND_TIMEOUT_USEC pushes systemd's start
// timeout while the node waits for its cluster, and joinNotice how often
// it is sent.
const (
	joinExtend = 30 * time.Second
	joinNotice = 10 * time.Second
)

// whileJoining keeps systemd's start timeout from killing a node that waits
// for its peers (at a site's power-up the first host can wait minutes): it
// extends the timeout and says in STATUS what the node waits for, until
// serving reports. It returns whether the node serves.
func (s *Server) whileJoining(ctx context.Context, n *notifier, serving <-chan error) bool {
	extend := fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", joinExtend.Microseconds())
	t := time.NewTicker(joinNotice)
	defer t.Stop()
	n.send(extend, status(s.joinStatus()))
	for {
		select {
		case err := <-serving:
			return err == nil
		case <-t.C:
			n.send(extend, status(s.joinStatus()))
		}
	}
}

// joinStatus says what a node that does not serve yet waits for.
func (s *Server) joinStatus() string {
	if !s.store.Ready() {
		return fmt.Sprintf("joining cluster %s: waiting for a quorum of its members", s.cfg.Cluster.Name)
	}
	var leaderless []string
	for _, g := range s.store.Groups() {
		if _, ok := s.store.GroupLeader(g); !ok {
			leaderless = append(leaderless, fmt.Sprint(g))
		}
	}
	if len(leaderless) > 0 {
		return "joined; Raft groups electing a leader: " + strings.Join(leaderless, ",")
	}
	return "joined; waiting for the Kafka listener to answer"
}

// watchdog pings systemd's watchdog at half its interval while the node is
// healthy. When a check fails it stops pinging, so systemd restarts a hung
// daemon; it says why in the log and in STATUS.
func (s *Server) watchdog(ctx context.Context, n *notifier) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		s.log.Warn("systemd: watchdog requested but WATCHDOG_USEC is unreadable; not pinging", "err", err)
		return
	}
	if every <= 0 || !n.socket {
		return
	}
	// A probe must end well before the next ping is due.
	probe := min(every/4, 2*time.Second)
	s.log.Info("systemd watchdog on", "interval", every.String(), "ping_every", (every / 2).String())
	t := time.NewTicker(every / 2)
	defer t.Stop()
	failing := "" // the part that failed the last check
	for {
		check, cancel := context.WithTimeout(ctx, probe)
		part, err := s.health(check)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && failing != "":
			s.log.Info("healthy again; watchdog pings resume", "was_failing", failing)
			n.send(daemon.SdNotifyWatchdog, status(s.admin.Status().Summary()))
			failing = ""
		case err == nil:
			n.send(daemon.SdNotifyWatchdog)
		case part != failing: // said once per failing part, not every check
			failing = part
			s.log.Error("unhealthy: watchdog pings stop; systemd restarts the service if this lasts",
				"part", part, "err", err, "watchdog", every.String())
			n.send(status("unhealthy: " + err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// controllerStall is how much longer than a leader timeout the controller
// may go without a pass before the node counts as unhealthy.
const controllerStall = 10 * time.Second

// health checks that the parts which must keep running do: the Raft
// metadata answers a local read, the Kafka acceptor answers a request, and
// the controller keeps passing over its partitions. It names the part that
// failed. It does not require a quorum: a network partition is not
// something a restart fixes.
func (s *Server) health(ctx context.Context) (part string, err error) {
	read := make(chan struct{})
	go func() {
		defer close(read)
		s.store.Nodes()
		for _, g := range s.store.Groups() {
			s.store.AppliedIndex(g)
		}
	}()
	select {
	case <-read:
	case <-ctx.Done():
		return "raft", fmt.Errorf("raft: node %d's metadata state does not answer a local read (%w)", s.cfg.Node.ID, ctx.Err())
	}
	if err := s.kafka.Probe(ctx); err != nil {
		return "kafka", err
	}
	if s.store.Ready() && s.controller != nil {
		limit := 2*s.cfg.Election.LeaderTimeout.Duration + controllerStall
		if since := time.Since(s.controller.LastPass()); since > limit {
			return "controller", fmt.Errorf("controller: no pass over its partitions for %s (limit %s)",
				since.Round(time.Second), limit)
		}
	}
	return "", nil
}
