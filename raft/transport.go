package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	dbconfig "github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// transportFactory plugs reeve's Raft transport into a NodeHost through
// NodeHostConfig.Expert.TransportFactory.
//
// Why not Dragonboat's own TCP transport: its outbound connections are
// write-only, so one whose peer process died stays open until a write
// fails. After a peer restarts, a lane that was idle meanwhile still holds
// a connection to the old process; the first message on it, often a vote
// at the worst moment, is lost and the next write's error trips
// Dragonboat's per-peer circuit breaker, which then drops every message to
// that peer, votes included, for 0.25-1.7 s. This transport reads each
// outbound connection, so it learns at once that the peer went away, and a
// send on such a connection redials first (see msgConn.SendMessageBatch).
type transportFactory struct {
	log *slog.Logger
	// members is the group membership the receive path checks senders
	// against; nil checks only what a message says of itself (tests of
	// the transport alone).
	members *memberTable
	limits  transportLimits
	// tls, when set, makes every connection mutual TLS (transport_tls.go).
	tls *peerTLS
	// dropped counts messages and chunks dropped for failing validation
	// (reeve_raft_messages_dropped_total); nil counts none.
	dropped *metrics.Counter
	// source, when set, is the address dialed connections bind.
	source net.IP
}

// transportLimits bounds how long an accepted connection may hold the
// transport's attention without sending.
type transportLimits struct {
	// idle closes a connection that sends no frame for this long. Raft
	// heartbeats flow every few hundred milliseconds while a peer shares a
	// group with this node, and Dragonboat closes a lane idle for a minute
	// itself; a dialer whose connection was closed redials on its next send.
	idle time.Duration
	// stall closes a connection whose frame stops arriving: the rest of a
	// header, and each framePiece of a payload, must arrive within it (at
	// least 100 KiB/s with the defaults).
	stall time.Duration
}

// defaultTransportLimits are the limits Open gives the transport; a test
// may shorten them before it opens a Store.
var defaultTransportLimits = transportLimits{idle: 2 * time.Minute, stall: 10 * time.Second}

var _ dbconfig.TransportFactory = (*transportFactory)(nil)

// Create returns the transport for one NodeHost.
func (f *transportFactory) Create(nhc dbconfig.NodeHostConfig,
	onBatch raftio.MessageHandler, onChunk raftio.ChunkHandler) raftio.ITransport {
	limits := f.limits
	if limits == (transportLimits{}) {
		limits = defaultTransportLimits
	}
	return &Transport{
		nhc:        nhc,
		deployment: nhc.GetDeploymentID(),
		onBatch:    onBatch,
		onChunk:    onChunk,
		members:    f.members,
		limits:     limits,
		tls:        f.tls,
		dropped:    f.dropped,
		source:     f.source,
		log:        f.log.With("component", "raft/transport"),
		inbound:    make(map[net.Conn]struct{}),
		warned:     make(map[string]*warning),
		stopping:   make(chan struct{}),
	}
}

// Validate reports whether addr is a host:port this transport can dial.
// Dragonboat's node registry panics on an address it refuses, so the
// receive path applies it too (validTarget); it may be called on nil.
func (f *transportFactory) Validate(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.Atoi(port)
	return err == nil && p > 0 && p <= 65535
}

// Transport carries Raft message batches and snapshot chunks between reeve
// nodes over TCP, in the framing described in transport_wire.go. It
// implements Dragonboat's raftio.ITransport; Dragonboat owns its
// lifecycle (Start, then Close) and the connections it gets from it.
type Transport struct {
	nhc        dbconfig.NodeHostConfig
	deployment uint64
	onBatch    raftio.MessageHandler
	onChunk    raftio.ChunkHandler
	members    *memberTable // nil: senders are not checked against a membership
	limits     transportLimits
	tls        *peerTLS // nil: plain TCP
	dropped    *metrics.Counter
	source     net.IP // nil: the kernel picks the source address
	log        *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	inbound  map[net.Conn]struct{} // accepted connections, closed by Close
	closed   bool
	stopping chan struct{}       // closed by Close; ends the accept loop's backoff
	warned   map[string]*warning // rate-limited warnings by remote host and kind
	serving  sync.WaitGroup      // the accept loop and one per inbound connection
}

// warning is one rate-limited warning's last time and what it held back.
type warning struct {
	logged     time.Time
	suppressed int
}

var _ raftio.ITransport = (*Transport)(nil)

const (
	transportName = "reeve-tcp"
	dialTimeout   = 5 * time.Second
	helloTimeout  = 5 * time.Second
	keepAlive     = 10 * time.Second
	// endAckTimeout bounds how long closing a snapshot stream waits for the
	// receiver to confirm it handled every chunk.
	endAckTimeout = 10 * time.Second
	// warnEvery limits each warning about a remote host: a peer of another
	// cluster, which Dragonboat redials with backoff for as long as it is
	// configured so, or one whose messages are dropped.
	warnEvery = time.Minute
	// maxWarned bounds the hosts the rate limiter remembers.
	maxWarned = 1024
	// acceptBackoffMax bounds the pause after a failed Accept (EMFILE,
	// ENFILE, ENOBUFS): the loop retries for as long as the transport runs.
	acceptBackoffMax = time.Second
)

// Name returns the transport's name, which Dragonboat logs at start.
func (t *Transport) Name() string { return transportName }

// Start listens on the NodeHost's listen address.
func (t *Transport) Start() error {
	if t.nhc.MutualTLS {
		return errors.New("raft transport: Dragonboat's mutual TLS does not apply to reeve's transport; leave NodeHostConfig.MutualTLS off and give raft.Config a NodeCert")
	}
	addr := t.nhc.GetListenAddress()
	lc := net.ListenConfig{KeepAlive: keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("raft transport: listen on %s: %w", addr, err)
	}
	t.mu.Lock()
	t.ln = ln
	t.mu.Unlock()
	t.serving.Add(1)
	go t.acceptLoop(ln)
	return nil
}

// Close stops listening, closes every accepted connection and waits until
// their handlers returned. Outbound connections belong to Dragonboat,
// which closes them itself.
func (t *Transport) Close() error {
	t.mu.Lock()
	if !t.closed {
		close(t.stopping)
	}
	t.closed = true
	if t.ln != nil {
		t.ln.Close()
	}
	for nc := range t.inbound {
		nc.Close()
	}
	t.mu.Unlock()
	t.serving.Wait()
	return nil
}

// GetConnection dials target for Raft message batches.
func (t *Transport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	l, err := t.dial(ctx, target, kindMessages)
	if err != nil {
		return nil, err
	}
	return &msgConn{t: t, ctx: ctx, target: target, l: l}, nil
}

// GetSnapshotConnection dials target for one snapshot's chunks.
func (t *Transport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	l, err := t.dial(ctx, target, kindSnapshot)
	if err != nil {
		return nil, err
	}
	return &snapshotConn{t: t, target: target, l: l}, nil
}

// acceptLoop accepts until the transport closes. A failed Accept (out of
// file descriptors, buffers) pauses, doubling up to acceptBackoffMax, and
// tries again: giving up would leave a running process that no peer can
// reach.
func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.serving.Done()
	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-t.stopping:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				t.log.Error("raft transport: the listener closed; restart the node", "addr", ln.Addr().String(), "err", err)
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), acceptBackoffMax)
			if n, ok := t.warnAllowed("accept"); ok {
				t.log.Warn("raft transport: accepting a connection failed, retrying; if the error is too many open files, raise the node's file limit (LimitNOFILE)",
					"addr", ln.Addr().String(), "retry_in", pause, "repeats_suppressed", n, "err", err)
			}
			select {
			case <-time.After(pause):
			case <-t.stopping:
				return
			}
			continue
		}
		pause = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			nc.Close()
			return
		}
		t.inbound[nc] = struct{}{}
		t.serving.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.serving.Done()
			t.serve(nc)
			t.mu.Lock()
			delete(t.inbound, nc)
			t.mu.Unlock()
			nc.Close()
		}()
	}
}

// serve answers a dialer's hello and hands its frames to Dragonboat until
// the dialer closes, a frame is bad, the connection idles or stalls past
// the transport's limits, or the transport closes. With TLS, the handshake
// comes first, and the hello and frames travel inside it.
func (t *Transport) serve(raw net.Conn) {
	remote := raw.RemoteAddr().String()
	nc, peer, err := t.handshakeIn(raw)
	if err != nil {
		if why, ok := tlsRefusal(err); ok {
			if n, ok := t.warnAllowed(hostOf(remote) + "\x00tls\x00" + why); ok {
				t.log.Warn("raft transport: refused a connection whose TLS handshake failed", "remote", remote,
					"reason", why, "repeats_suppressed", n, "err", err)
			}
		} else {
			t.log.Debug("raft transport: connection closed during its TLS handshake", "remote", remote, "err", err)
		}
		return
	}
	h, err := readHello(nc, time.Now().Add(helloTimeout))
	if errors.Is(err, errBadHello) {
		t.log.Warn("raft transport: refused a connection that did not open with a reeve raft hello; is another program or an older reeve dialing the raft port?",
			"remote", remote)
		return
	}
	if err != nil {
		// A port probe, or a dialer that gave up: nothing to act on.
		t.log.Debug("raft transport: connection closed before its hello", "remote", remote, "err", err)
		return
	}
	// A refusal carries no deployment id: the right one would let anyone
	// who can reach the port pass the check on the next try.
	reply := hello{version: wireVersion, deployment: t.deployment}
	switch {
	case h.version != wireVersion || (h.kindStatus != kindMessages && h.kindStatus != kindSnapshot && h.kindStatus != kindProbe):
		reply = hello{version: wireVersion, kindStatus: statusBadHello}
		t.log.Warn("raft transport: refused a connection with an unknown protocol version or kind; run the same reeve version on every node",
			"remote", remote, "version", h.version, "kind", h.kindStatus)
	case h.deployment != t.deployment:
		reply = hello{version: wireVersion, kindStatus: statusWrongDeployment}
		if n, ok := t.warnAllowed(hostOf(remote) + "\x00deployment"); ok {
			t.log.Warn("raft transport: refused a node of another cluster; check cluster.name in both nodes' reeve.toml, or the raft addresses in initial_members",
				"remote", remote, "their_deployment_id", h.deployment, "deployment_id", t.deployment, "repeats_suppressed", n)
		}
	}
	nc.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := nc.Write(reply.encode()); err != nil || reply.kindStatus != statusAccepted || h.kindStatus == kindProbe {
		return
	}
	nc.SetWriteDeadline(time.Time{})

	fr := frameReader{r: nc, limits: t.limits, setDeadline: nc.SetReadDeadline}
	var stream chunkStream
	for {
		typ, payload, err := fr.next()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, errBadFrame):
				t.log.Warn("raft transport: dropped a connection that sent a bad frame", "remote", remote, "err", err)
			case errors.As(err, &ne) && ne.Timeout():
				t.log.Debug("raft transport: closed a connection that idled or stalled", "remote", remote, "err", err)
			}
			return
		}
		switch {
		case typ == frameBatch && h.kindStatus == kindMessages:
			b, err := decodeBatch(payload)
			if err != nil {
				t.log.Warn("raft transport: dropped a connection that sent an undecodable message batch", "remote", remote, "err", err)
				return
			}
			if n, why := filterBatch(&b, t.members, peer); n > 0 {
				t.warnDrop(remote, n, why)
			}
			if len(b.Requests) > 0 {
				t.onBatch(b)
			}
		case typ == frameChunk && h.kindStatus == kindSnapshot:
			c, err := decodeChunk(payload)
			if err != nil {
				t.log.Warn("raft transport: dropped a connection that sent an undecodable snapshot chunk", "remote", remote, "err", err)
				return
			}
			if why := t.checkChunk(&stream, &c, peer); why != "" {
				t.warnDrop(remote, 1, dropReason{why: why, group: c.ShardID, from: c.From, to: c.ReplicaID, mtype: "snapshot chunk"})
				return
			}
			if !t.onChunk(c) {
				// Dragonboat refused the chunk (stale, out of order or for a
				// removed replica); closing tells the sender to stop.
				t.log.Debug("raft transport: snapshot chunk refused, closing the stream", "remote", remote,
					"group", c.ShardID, "replica", c.ReplicaID, "chunk", c.ChunkId)
				return
			}
		case typ == frameEnd && h.kindStatus == kindSnapshot:
			nc.SetWriteDeadline(time.Now().Add(helloTimeout))
			nc.Write([]byte{snapshotAck})
			return
		default:
			t.log.Warn("raft transport: dropped a connection that sent a frame its kind does not allow", "remote", remote,
				"kind", h.kindStatus, "frame", typ)
			return
		}
	}
}

// checkChunk checks a chunk against the group's membership, the stream's
// previous chunk and the node peer's certificate names, if any (see
// transport_guard.go).
func (t *Transport) checkChunk(st *chunkStream, c *pb.Chunk, peer uint64) string {
	if peer != 0 && c.From != peer {
		return whyNotPeer
	}
	if t.members == nil {
		return st.checkChunk(c, c.ReplicaID, nil)
	}
	members, running := t.members.lookup(c.ShardID)
	if !running {
		return "chunk for a group this node does not run"
	}
	return st.checkChunk(c, t.members.self, members)
}

// warnDrop warns that n messages from remote were dropped, at most once a
// minute per remote host and reason.
func (t *Transport) warnDrop(remote string, n int, why dropReason) {
	if t.dropped != nil {
		t.dropped.Add(n)
	}
	suppressed, ok := t.warnAllowed(hostOf(remote) + "\x00" + why.why)
	if !ok {
		return
	}
	t.log.Warn("raft transport: dropped raft messages that failed validation; if the remote is a reeve node, check that it is a member of the group and runs the same version",
		"remote", remote, "reason", why.why, "dropped", n, "group", why.group, "from", why.from, "to", why.to,
		"type", why.mtype, "source_address", why.source, "repeats_suppressed", suppressed)
}

// warnAllowed reports whether the warning with this key may be logged now,
// and how many were held back since it last was.
func (t *Transport) warnAllowed(key string) (suppressed int, ok bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.warned[key]
	if w != nil && now.Sub(w.logged) < warnEvery {
		w.suppressed++
		return 0, false
	}
	if w == nil {
		if len(t.warned) >= maxWarned {
			for k, old := range t.warned {
				if now.Sub(old.logged) >= warnEvery {
					delete(t.warned, k)
				}
			}
			if len(t.warned) >= maxWarned {
				return 0, false // a flood from many hosts: the ones remembered speak for it
			}
		}
		w = &warning{}
		t.warned[key] = w
	}
	suppressed, w.logged, w.suppressed = w.suppressed, now, 0
	return suppressed, true
}

func hostOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// dial opens a connection of the given kind to target and exchanges
// hellos, inside TLS when the transport has a certificate.
func (t *Transport) dial(ctx context.Context, target string, kind byte) (*link, error) {
	nc, _, err := t.greet(ctx, target, kind)
	if err != nil {
		return nil, err
	}
	return newLink(nc), nil
}

// probe reports whether a node of this cluster answers at target (and,
// with TLS, that its certificate names node id), then closes.
func (t *Transport) probe(ctx context.Context, id uint64, target string) error {
	nc, peer, err := t.greet(ctx, target, kindProbe)
	if err != nil {
		return err
	}
	nc.Close()
	if t.tls != nil && peer != id {
		return fmt.Errorf("%w: %s presented node %d's certificate, not node %d's", errWrongNode, target, peer, id)
	}
	return nil
}

// greet dials target, runs the TLS handshake when the transport has a
// certificate, and exchanges hellos. It returns the connection and the
// node the listener's certificate names (0 without TLS).
func (t *Transport) greet(ctx context.Context, target string, kind byte) (net.Conn, uint64, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	if t.source != nil {
		d.LocalAddr = &net.TCPAddr{IP: t.source}
	}
	raw, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, 0, fmt.Errorf("raft transport: dial %s: %w", target, err)
	}
	nc, peer, err := t.handshakeOut(ctx, raw, target)
	if err != nil {
		raw.Close()
		return nil, 0, fmt.Errorf("raft transport: dial %s: %w", target, err)
	}
	nc.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := nc.Write(hello{version: wireVersion, kindStatus: kind, deployment: t.deployment}.encode()); err != nil {
		nc.Close()
		return nil, 0, fmt.Errorf("raft transport: greet %s: %w", target, err)
	}
	h, err := readHello(nc, time.Now().Add(helloTimeout))
	if err == nil {
		switch {
		case h.kindStatus == statusWrongDeployment:
			err = fmt.Errorf("%w: %s refused this node's deployment id %d; check cluster.name on both nodes",
				errWrongDeployment, target, t.deployment)
		case h.kindStatus != statusAccepted:
			err = fmt.Errorf("%s refused this node's hello (status %d, its protocol version %d, ours %d); run the same reeve version on every node",
				target, h.kindStatus, h.version, wireVersion)
		}
	}
	if err != nil {
		nc.Close()
		return nil, 0, fmt.Errorf("raft transport: greet %s: %w", target, err)
	}
	nc.SetWriteDeadline(time.Time{})
	return nc, peer, nil
}
