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
}

var _ dbconfig.TransportFactory = (*transportFactory)(nil)

// Create returns the transport for one NodeHost.
func (f *transportFactory) Create(nhc dbconfig.NodeHostConfig,
	onBatch raftio.MessageHandler, onChunk raftio.ChunkHandler) raftio.ITransport {
	return &Transport{
		nhc:        nhc,
		deployment: nhc.GetDeploymentID(),
		onBatch:    onBatch,
		onChunk:    onChunk,
		log:        f.log.With("component", "raft/transport"),
		inbound:    make(map[net.Conn]struct{}),
		refusals:   make(map[string]time.Time),
	}
}

// Validate reports whether addr is a host:port this transport can dial.
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
	log        *slog.Logger

	mu       sync.Mutex
	ln       net.Listener
	inbound  map[net.Conn]struct{} // accepted connections, closed by Close
	closed   bool
	refusals map[string]time.Time // remote host -> last refusal logged
	serving  sync.WaitGroup       // the accept loop and one per inbound connection
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
	// refusalLogEvery limits the warning for a peer of another cluster, which
	// Dragonboat redials with backoff for as long as it is configured so.
	refusalLogEvery = time.Minute
)

// Name returns the transport's name, which Dragonboat logs at start.
func (t *Transport) Name() string { return transportName }

// Start listens on the NodeHost's listen address.
func (t *Transport) Start() error {
	if t.nhc.MutualTLS {
		return errors.New("raft transport: mutual TLS is not supported by reeve's transport; leave NodeHostConfig.MutualTLS off")
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

func (t *Transport) acceptLoop(ln net.Listener) {
	defer t.serving.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.mu.Lock()
			closed := t.closed
			t.mu.Unlock()
			if !closed {
				t.log.Error("raft transport: stopped accepting connections; restart the node", "addr", ln.Addr().String(), "err", err)
			}
			return
		}
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
// the dialer closes, a frame is bad or the transport closes.
func (t *Transport) serve(nc net.Conn) {
	remote := nc.RemoteAddr().String()
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
	reply := hello{version: wireVersion, deployment: t.deployment}
	switch {
	case h.version != wireVersion || (h.kindStatus != kindMessages && h.kindStatus != kindSnapshot):
		reply.kindStatus = statusBadHello
		t.log.Warn("raft transport: refused a connection with an unknown protocol version or kind; run the same reeve version on every node",
			"remote", remote, "version", h.version, "kind", h.kindStatus)
	case h.deployment != t.deployment:
		reply.kindStatus = statusWrongDeployment
		t.logRefusal(remote, h.deployment)
	}
	nc.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := nc.Write(reply.encode()); err != nil || reply.kindStatus != statusAccepted {
		return
	}
	nc.SetWriteDeadline(time.Time{})

	var buf []byte
	for {
		typ, payload, next, err := readFrame(nc, buf)
		buf = next
		if err != nil {
			if errors.Is(err, errBadFrame) {
				t.log.Warn("raft transport: dropped a connection that sent a bad frame", "remote", remote, "err", err)
			}
			return
		}
		switch {
		case typ == frameBatch && h.kindStatus == kindMessages:
			var b pb.MessageBatch
			if err := b.Unmarshal(payload); err != nil {
				t.log.Warn("raft transport: dropped a connection that sent an undecodable message batch", "remote", remote, "err", err)
				return
			}
			t.onBatch(b)
		case typ == frameChunk && h.kindStatus == kindSnapshot:
			var c pb.Chunk
			if err := c.Unmarshal(payload); err != nil {
				t.log.Warn("raft transport: dropped a connection that sent an undecodable snapshot chunk", "remote", remote, "err", err)
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

// logRefusal warns about a dialer of another cluster at most once a minute
// per host, since Dragonboat keeps redialing it.
func (t *Transport) logRefusal(remote string, theirs uint64) {
	host, _, _ := net.SplitHostPort(remote)
	now := time.Now()
	t.mu.Lock()
	last, seen := t.refusals[host]
	if !seen || now.Sub(last) >= refusalLogEvery {
		t.refusals[host] = now
	}
	t.mu.Unlock()
	if seen && now.Sub(last) < refusalLogEvery {
		return
	}
	t.log.Warn("raft transport: refused a node of another cluster; check cluster.name in both nodes' reeve.toml, or the raft addresses in initial_members",
		"remote", remote, "their_deployment_id", theirs, "deployment_id", t.deployment)
}

// dial opens a connection of the given kind to target and exchanges hellos.
func (t *Transport) dial(ctx context.Context, target string, kind byte) (*link, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	nc, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("raft transport: dial %s: %w", target, err)
	}
	nc.SetWriteDeadline(time.Now().Add(helloTimeout))
	if _, err := nc.Write(hello{version: wireVersion, kindStatus: kind, deployment: t.deployment}.encode()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("raft transport: greet %s: %w", target, err)
	}
	h, err := readHello(nc, time.Now().Add(helloTimeout))
	if err == nil {
		switch {
		case h.kindStatus == statusWrongDeployment:
			err = fmt.Errorf("%w: %s has deployment id %d, this node %d; check cluster.name on both nodes",
				errWrongDeployment, target, h.deployment, t.deployment)
		case h.kindStatus != statusAccepted:
			err = fmt.Errorf("%s refused this node's hello (status %d, its protocol version %d, ours %d); run the same reeve version on every node",
				target, h.kindStatus, h.version, wireVersion)
		}
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("raft transport: greet %s: %w", target, err)
	}
	nc.SetWriteDeadline(time.Time{})
	return newLink(nc), nil
}
