package raft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// link is one dialed TCP connection and the goroutine that watches it. The
// listener never writes after its hello (but for a snapshot stream's ack),
// so the watcher's single read returns only when the peer closed or reset
// the connection, or acknowledged a snapshot: either way the link is done.
type link struct {
	nc   net.Conn
	gone chan struct{} // closed when the watcher's read returned
	ack  bool          // the peer's byte was snapshotAck; read it after gone is closed
}

func newLink(nc net.Conn) *link {
	l := &link{nc: nc, gone: make(chan struct{})}
	go l.watch()
	return l
}

func (l *link) watch() {
	var b [1]byte
	n, _ := l.nc.Read(b[:])
	l.ack = n == 1 && b[0] == snapshotAck
	close(l.gone)
}

// peerGone reports whether the watcher has seen the connection end.
func (l *link) peerGone() bool {
	select {
	case <-l.gone:
		return true
	default:
		return false
	}
}

// msgConn sends Raft message batches to one peer. Dragonboat uses each
// from one goroutine (its send lane for the peer), keeps it while the lane
// has traffic (closing it after a minute idle or on the first error) and
// trips its per-peer circuit breaker on any error SendMessageBatch returns.
type msgConn struct {
	t      *Transport
	ctx    context.Context // Dragonboat's transport context, cancelled when it stops
	target string
	l      *link
	buf    []byte // frame buffer, reused between batches
}

var _ raftio.IConnection = (*msgConn)(nil)

// SendMessageBatch writes one batch. It redials once instead of failing
// when the peer is known to have closed the connection (the watcher saw
// it: the peer process died or restarted while the lane was idle), or when
// the write fails for a reason other than a timeout (the close raced the
// send). An error is returned only when the peer cannot be reached now, so
// Dragonboat's circuit breaker trips for a peer that is down and never for
// one that merely restarted. Raft tolerates the duplicate a redial may
// cause if the failed write had in fact reached the old process.
func (c *msgConn) SendMessageBatch(b pb.MessageBatch) error {
	frame, err := c.frame(&b)
	if err != nil {
		return err
	}
	redialed := false
	if c.l.peerGone() {
		if err := c.redial("the peer closed the connection since the last send"); err != nil {
			return err
		}
		redialed = true
	}
	err = writeFull(c.l.nc, frame)
	var ne net.Error
	if err == nil || redialed || (errors.As(err, &ne) && ne.Timeout()) {
		if err != nil {
			return fmt.Errorf("raft transport: send %d raft messages to %s: %w", len(b.Requests), c.target, err)
		}
		return nil
	}
	if err := c.redial("a write failed: " + err.Error()); err != nil {
		return err
	}
	if err := writeFull(c.l.nc, frame); err != nil {
		return fmt.Errorf("raft transport: send %d raft messages to %s after redialing: %w", len(b.Requests), c.target, err)
	}
	return nil
}

// frame encodes b after a frame header into c's buffer.
func (c *msgConn) frame(b *pb.MessageBatch) ([]byte, error) {
	need := frameHeaderLen + b.SizeUpperLimit()
	if need-frameHeaderLen > maxFrameSize {
		return nil, fmt.Errorf("raft transport: a batch of %d raft messages to %s encodes to up to %d bytes, over the %d-byte frame limit",
			len(b.Requests), c.target, need-frameHeaderLen, maxFrameSize)
	}
	if cap(c.buf) < need {
		c.buf = make([]byte, need)
	}
	frame := c.buf[:need]
	n, err := b.MarshalTo(frame[frameHeaderLen:])
	if err != nil {
		return nil, fmt.Errorf("raft transport: encode %d raft messages to %s: %w", len(b.Requests), c.target, err)
	}
	frame = frame[:frameHeaderLen+n]
	putFrameHeader(frame, frameBatch)
	if cap(c.buf) > maxKeptBuffer {
		c.buf = nil // this frame keeps its memory until written; the next gets a smaller one
	}
	return frame, nil
}

func (c *msgConn) redial(why string) error {
	c.l.nc.Close()
	l, err := c.t.dial(c.ctx, c.target, kindMessages)
	if err != nil {
		return err
	}
	c.t.log.Debug("raft transport: redialed a peer", "target", c.target, "why", why)
	c.l = l
	return nil
}

// Close closes the connection; the watcher goroutine then returns.
func (c *msgConn) Close() { c.l.nc.Close() }

// snapshotConn sends one snapshot's chunks to a peer. It never redials: a
// receiver that closed the stream refused a chunk or restarted, and
// Dragonboat starts the snapshot over on a new connection.
type snapshotConn struct {
	t      *Transport
	target string
	l      *link
	buf    []byte
}

var _ raftio.ISnapshotConnection = (*snapshotConn)(nil)

// SendChunk writes one chunk.
func (c *snapshotConn) SendChunk(ch pb.Chunk) error {
	if c.l.peerGone() {
		return fmt.Errorf("raft transport: send snapshot chunk %d of group %d to %s: the receiver closed the stream (it refused a chunk or restarted)",
			ch.ChunkId, ch.ShardID, c.target)
	}
	need := frameHeaderLen + ch.Size()
	if cap(c.buf) < need {
		c.buf = make([]byte, need)
	}
	frame := c.buf[:need]
	n, err := ch.MarshalTo(frame[frameHeaderLen:])
	if err != nil {
		return fmt.Errorf("raft transport: encode snapshot chunk %d of group %d: %w", ch.ChunkId, ch.ShardID, err)
	}
	frame = frame[:frameHeaderLen+n]
	putFrameHeader(frame, frameChunk)
	if err := writeFull(c.l.nc, frame); err != nil {
		return fmt.Errorf("raft transport: send snapshot chunk %d of group %d to %s: %w", ch.ChunkId, ch.ShardID, c.target, err)
	}
	return nil
}

// Close ends the stream and waits, at most endAckTimeout, for the receiver
// to acknowledge that it handled every chunk, so the stream is not cut
// while the last chunks are still in flight.
func (c *snapshotConn) Close() {
	defer c.l.nc.Close()
	if c.l.peerGone() {
		return
	}
	var end [frameHeaderLen]byte
	putFrameHeader(end[:], frameEnd)
	if err := writeFull(c.l.nc, end[:]); err != nil {
		return
	}
	select {
	case <-c.l.gone:
		if !c.l.ack {
			c.t.log.Debug("raft transport: snapshot receiver closed without acknowledging the end", "target", c.target)
		}
	case <-time.After(endAckTimeout):
		c.t.log.Debug("raft transport: snapshot receiver did not acknowledge the end in time", "target", c.target, "waited", endAckTimeout)
	}
}
