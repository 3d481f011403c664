package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/reeve-edge/reeve/config"
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

// Node connections. With [tls] (Config.NodeCert) one listener serves both
// clients and nodes, told apart by a connection's first byte: 0x16, a TLS
// handshake record, is a node's; anything else is the first byte of a
// plaintext Kafka frame's length and a client's. A plaintext frame that
// starts with 0x16 would declare at least tlsFirstByteFrame bytes, more
// than max_request_bytes may be with [tls] (New refuses it), so no valid
// client request is mistaken for a handshake. A node's connection must
// complete TLS 1.3 within handshakeTimeout with a certificate the cluster
// CA signed; the node its URI SAN names (config.NodeOf) is the only node
// the connection may speak for (nodeClaim). Without [tls] every
// connection is plain and every claim is believed, as before.

const (
	// tlsHandshakeByte is the content type of a TLS handshake record, the
	// first byte a TLS client sends.
	tlsHandshakeByte = 0x16
	// tlsFirstByteFrame is the smallest frame length whose first byte is
	// tlsHandshakeByte (369,098,752 bytes).
	tlsFirstByteFrame = tlsHandshakeByte << 24
	// handshakeTimeout bounds a node connection's TLS handshake.
	handshakeTimeout = 10 * time.Second
)

// nodeTLS is the TLS side of a node: the listener's configuration for
// node connections and what dialling another node needs.
type nodeTLS struct {
	cluster string
	cert    *config.NodeCert
	server  *tls.Config

	// Strangers can make these as fast as they connect: each is logged at
	// most every logEvery.
	handshakeLog, claimLog limitedLog
}

// limitedLog writes a warning at most every logEvery, with a count of
// those it held back.
type limitedLog struct {
	mu         sync.Mutex
	logged     time.Time
	suppressed int
}

func (l *limitedLog) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.logged) < logEvery {
		l.suppressed++
		return
	}
	log.Warn(msg, append(args, "suppressed", l.suppressed)...)
	l.logged, l.suppressed = now, 0
}

func newNodeTLS(cfg Config) *nodeTLS {
	if cfg.NodeCert == nil {
		return nil
	}
	return &nodeTLS{
		cluster: cfg.ClusterName,
		cert:    cfg.NodeCert,
		server: &tls.Config{
			Certificates: []tls.Certificate{cfg.NodeCert.Cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    cfg.NodeCert.CAs,
			MinVersion:   tls.VersionTLS13,
		},
	}
}

// sniffedConn reads through the buffer that peeked at a connection's first
// byte, so the TLS handshake sees that byte too.
type sniffedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c sniffedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// classify tells a node's connection from a client's by its first byte
// (see the note above). For a node's it completes the TLS handshake, puts
// the TLS connection in c.Conn and the node its certificate names in
// c.node (left 0 for a certificate that names no node of this cluster),
// and returns the reader to serve c from. An error closes the connection.
func (s *Server) classify(c *conn, br *bufio.Reader) (*bufio.Reader, error) {
	if s.nodeTLS == nil {
		return br, nil
	}
	c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
	first, err := br.Peek(1)
	if err != nil {
		return nil, err
	}
	if first[0] != tlsHandshakeByte {
		return br, nil
	}
	raw := c.Conn
	tc := tls.Server(sniffedConn{Conn: raw, r: br}, s.nodeTLS.server)
	raw.SetDeadline(time.Now().Add(handshakeTimeout))
	ctx, cancel := context.WithTimeout(s.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.metrics.nodeHandshakes.Inc()
		s.nodeTLS.handshakeLog.warn(s.log, "kafka: node connection refused: TLS handshake failed "+
			"(is its certificate signed by tls.ca_file, valid now, and for client authentication?)", "remote", c.remote, "err", err)
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	raw.SetDeadline(time.Time{})
	if id, ok := config.NodeOf(tc.ConnectionState().PeerCertificates[0], s.nodeTLS.cluster); ok && id <= math.MaxInt32 {
		c.node = int32(id)
	}
	c.Conn = tc
	return bufio.NewReaderSize(tc, 32<<10), nil
}

// nodeClaim reports whether a request on c that claims to come from node
// (a replica fetch, a heartbeat) is believed: always without [tls]; with
// it, only on a TLS connection whose certificate names that node.
func (s *Server) nodeClaim(c *conn, node int32, api string) bool {
	if s.nodeTLS == nil || c.node != 0 && c.node == node {
		return true
	}
	s.metrics.nodeClaims.Inc()
	s.nodeTLS.claimLog.warn(s.log, "kafka: refused a request made as a node: the connection is not a TLS connection "+
		"whose certificate names that node", "api", api, "claimed_node", node, "certificate_node", c.node,
		"remote", c.remote, "client_id", c.clientID)
	return false
}
