package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"slices"
	"time"
)

// The wire format of reeve's Raft transport. It is spoken only between
// reeve nodes, so it is reeve's own rather than Dragonboat's.
//
// A connection opens with a hello from the dialer and a hello back from the
// listener, both 20 bytes:
//
//	0   magic "RVRT"
//	4   version (1)
//	5   kind in the dialer's hello (1 messages, 2 snapshot chunks, 3 a
//	    probe, which the listener answers and then closes);
//	    status in the listener's (0 accepted, 1 wrong deployment, 2 bad hello)
//	6   two zero bytes
//	8   deployment id, big endian (a hash of cluster.name); zero in a
//	    refusal, which must not tell a stranger the id it lacked
//	16  CRC-32C of bytes 0..15
//
// Then the dialer sends frames, each a 12-byte header and a payload:
//
//	0   type (1 message batch, 2 snapshot chunk, 3 end of snapshot stream)
//	1   three zero bytes
//	4   payload length, big endian, at most maxFrameSize
//	8   CRC-32C of the payload
//	12  payload: a Dragonboat MessageBatch or Chunk, protobuf encoded
//
// The listener never writes after its hello, except one ack byte answering
// a snapshot stream's end frame. So a dialer that reads anything else, or
// EOF, knows the listener is gone: that is how a connection notices that
// the peer process died or restarted before the next send.
const (
	helloSize      = 20
	frameHeaderLen = 12
	wireVersion    = 1

	kindMessages byte = 1
	kindSnapshot byte = 2
	// kindProbe asks only whether a node of this cluster listens at the
	// address (Store.AddNode checks a new node before it joins).
	kindProbe byte = 3

	statusAccepted        byte = 0
	statusWrongDeployment byte = 1
	statusBadHello        byte = 2

	frameBatch byte = 1
	frameChunk byte = 2
	frameEnd   byte = 3

	// snapshotAck answers frameEnd once every chunk before it was handled.
	snapshotAck byte = 0x06

	// maxFrameSize bounds one frame's payload, checked before anything is
	// allocated. Dragonboat caps a batch at 64 MiB plus one message and a
	// chunk at 2 MiB; the reader grows its buffer as bytes arrive
	// (frameReader), so a lying header cannot make it allocate this much
	// up front, and must send the bytes within the stall limit.
	maxFrameSize = 256 << 20
)

var (
	wireMagic  = [4]byte{'R', 'V', 'R', 'T'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)

	errBadHello        = errors.New("not a reeve raft transport hello")
	errWrongDeployment = errors.New("peer belongs to another cluster (deployment id differs)")
	errBadFrame        = errors.New("malformed raft transport frame")
)

// hello is either side's opening of a connection.
type hello struct {
	version    byte
	kindStatus byte // kind from the dialer, status from the listener
	deployment uint64
}

func (h hello) encode() []byte {
	b := make([]byte, helloSize)
	copy(b, wireMagic[:])
	b[4] = h.version
	b[5] = h.kindStatus
	binary.BigEndian.PutUint64(b[8:], h.deployment)
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	return b
}

// readHello reads a hello within the deadline. A wrong magic or checksum is
// errBadHello; the version is for the caller to judge.
func readHello(nc net.Conn, deadline time.Time) (hello, error) {
	if err := nc.SetReadDeadline(deadline); err != nil {
		return hello{}, err
	}
	var b [helloSize]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil {
		return hello{}, err
	}
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return hello{}, err
	}
	return parseHello(b)
}

// parseHello decodes a hello's bytes.
func parseHello(b [helloSize]byte) (hello, error) {
	if [4]byte(b[:4]) != wireMagic || binary.BigEndian.Uint32(b[16:]) != crc32.Checksum(b[:16], castagnoli) {
		return hello{}, errBadHello
	}
	return hello{version: b[4], kindStatus: b[5], deployment: binary.BigEndian.Uint64(b[8:])}, nil
}

// putFrameHeader fills the first frameHeaderLen bytes of frame for the
// payload that follows them.
func putFrameHeader(frame []byte, typ byte) {
	payload := frame[frameHeaderLen:]
	frame[0] = typ
	frame[1], frame[2], frame[3] = 0, 0, 0
	binary.BigEndian.PutUint32(frame[4:], uint32(len(payload)))
	binary.BigEndian.PutUint32(frame[8:], crc32.Checksum(payload, castagnoli))
}

// frameReader reads the frames of one connection. With setDeadline set,
// it bounds each wait by the transport's limits: the first byte of a
// header may take limits.idle, the rest of the header and each framePiece
// of the payload limits.stall. So a peer that stops mid-frame (a header
// declaring 256 MiB and nothing after it) is cut off after limits.stall,
// and one that sends nothing at all after limits.idle.
type frameReader struct {
	r           io.Reader
	limits      transportLimits
	setDeadline func(time.Time) error // nil: no deadlines (tests, fuzzing)
	buf         []byte                // payload buffer kept between frames, at most maxKeptBuffer
}

func (fr *frameReader) arm(d time.Duration) error {
	if fr.setDeadline == nil {
		return nil
	}
	return fr.setDeadline(time.Now().Add(d))
}

// next reads one frame and returns its type and payload, which aliases the
// reader's buffer until the next call. The payload grows only as its bytes
// arrive, a framePiece at a time, so a header that lies about the size
// costs at most one piece of memory beyond what was really sent.
func (fr *frameReader) next() (typ byte, payload []byte, err error) {
	var h [frameHeaderLen]byte
	if err := fr.arm(fr.limits.idle); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(fr.r, h[:1]); err != nil {
		return 0, nil, err
	}
	if err := fr.arm(fr.limits.stall); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(fr.r, h[1:]); err != nil {
		return 0, nil, err
	}
	size := int(binary.BigEndian.Uint32(h[4:]))
	if h[1]|h[2]|h[3] != 0 || size > maxFrameSize {
		return 0, nil, fmt.Errorf("%w: type %d, length %d", errBadFrame, h[0], size)
	}
	payload = fr.buf[:0]
	for len(payload) < size {
		step := min(size-len(payload), framePiece)
		if err := fr.arm(fr.limits.stall); err != nil {
			return 0, nil, err
		}
		payload = slices.Grow(payload, step)[:len(payload)+step]
		if _, err := io.ReadFull(fr.r, payload[len(payload)-step:]); err != nil {
			return 0, nil, err
		}
	}
	if cap(payload) <= maxKeptBuffer {
		fr.buf = payload[:0]
	}
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(h[8:]) {
		return 0, nil, fmt.Errorf("%w: payload checksum mismatch (type %d, %d bytes)", errBadFrame, h[0], size)
	}
	return h[0], payload, nil
}

// framePiece is how much of a payload is read (and allocated) at a time,
// each piece within transportLimits.stall.
const framePiece = 1 << 20

// maxKeptBuffer is the largest receive buffer a connection keeps between
// frames; a rare larger batch gets its own.
const maxKeptBuffer = 4 << 20

// writeFull writes b in pieces, each with its own deadline, so a large
// frame on a slow link is not cut short while a stalled peer still is.
func writeFull(nc net.Conn, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), writePiece)
		if err := nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
			return err
		}
		if _, err := nc.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

const (
	writePiece   = 2 << 20
	writeTimeout = 5 * time.Second
)
