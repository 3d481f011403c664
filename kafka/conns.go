package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Connection limits and accept failures. A connection past
// Config.MaxConnections or Config.MaxConnectionsPerIP is closed as soon as
// it is accepted, before a goroutine or a buffer is spent on it, and
// counted in reeve_kafka_connections_refused_total{reason}. Accept errors
// (EMFILE and ENFILE above all) never end Serve: the loop backs off from
// 5 ms, doubling to 1 s, and logs at most every logEvery.

// Refusal reasons, the values of the metric's reason label.
const (
	refusedMaxConnections      = "max_connections"
	refusedMaxConnectionsPerIP = "max_connections_per_ip"
)

const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
	// logEvery spaces the accept loop's warnings: a flood of refusals or
	// failures makes one line per interval, with a count of the rest.
	logEvery = 10 * time.Second
)

// admitLocked takes a slot for a connection from ip, or returns the limit
// that refuses it. s.mu is held.
func (s *Server) admitLocked(ip string) string {
	switch {
	case len(s.conns) >= s.cfg.MaxConnections:
		return refusedMaxConnections
	case s.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		return refusedMaxConnectionsPerIP
	}
	s.perIP[ip]++
	return ""
}

// remoteIP is the address a connection comes from, without its port.
func remoteIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// acceptBackoff is the accept loop's memory of failures and refusals; only
// the loop's goroutine uses it.
type acceptBackoff struct {
	delay time.Duration

	errLogged     time.Time
	errSuppressed int
	refLogged     time.Time
	refSuppressed int
}

func (b *acceptBackoff) reset() { b.delay = 0 }

// wait sleeps before the next Accept after err, longer after each failure
// in a row; false means the server is closing.
func (b *acceptBackoff) wait(ctx context.Context, log *slog.Logger, err error) bool {
	b.delay = min(max(2*b.delay, minAcceptBackoff), maxAcceptBackoff)
	if now := time.Now(); now.Sub(b.errLogged) >= logEvery {
		msg := "kafka: accept failed; retrying"
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			msg = "kafka: accept failed: out of file descriptors; retrying (raise the open-file limit, LimitNOFILE= under systemd, or lower kafka.max_connections or kafka.max_partitions)"
		}
		log.Error(msg, "err", err, "retry_in", b.delay, "suppressed", b.errSuppressed)
		b.errLogged, b.errSuppressed = now, 0
	} else {
		b.errSuppressed++
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// refused logs a connection closed at a limit, at most every logEvery.
func (b *acceptBackoff) refused(log *slog.Logger, reason, ip string, cfg Config) {
	now := time.Now()
	if now.Sub(b.refLogged) < logEvery {
		b.refSuppressed++
		return
	}
	log.Warn("kafka: connection refused at a limit (raise kafka."+reason+" if the clients are legitimate)",
		"reason", reason, "remote_ip", ip, "max_connections", cfg.MaxConnections,
		"max_connections_per_ip", cfg.MaxConnectionsPerIP, "suppressed", b.refSuppressed)
	b.refLogged, b.refSuppressed = now, 0
}
