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
//	5   kind in the dialer's hello (1 messages, 2 snapshot chunks);
//	    status in the listener's (0 accepted, 1 wrong deployment, 2 bad hello)
//	6   two zero bytes
//	8   deployment id, big endian (a hash of cluster.name)
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

	statusAccepted        byte = 0
	statusWrongDeployment byte = 1
	statusBadHello        byte = 2

	frameBatch byte = 1
	frameChunk byte = 2
	frameEnd   byte = 3

	// snapshotAck answers frameEnd once every chunk before it was handled.
	snapshotAck byte = 0x06

	// maxFrameSize bounds one frame's payload. Dragonboat caps a batch at
	// 64 MiB plus one message and a chunk at 2 MiB; the reader grows its
	// buffer as bytes arrive, so a lying header cannot make it allocate this
	// much up front.
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
	b := make([]byte, helloSize)
	if _, err := io.ReadFull(nc, b); err != nil {
		return hello{}, err
	}
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return hello{}, err
	}
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

// readFrame reads one frame into buf, growing it only as bytes arrive, and
// returns its type, its payload (aliasing the returned buffer) and the
// buffer to pass to the next call.
func readFrame(r io.Reader, buf []byte) (typ byte, payload, next []byte, err error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, buf, err
	}
	size := binary.BigEndian.Uint32(h[4:])
	if h[1]|h[2]|h[3] != 0 || size > maxFrameSize {
		return 0, nil, buf, fmt.Errorf("%w: type %d, length %d", errBadFrame, h[0], size)
	}
	if int(size) <= cap(buf) {
		payload = buf[:size]
		if _, err := io.ReadFull(r, payload); err != nil {
			return 0, nil, buf, err
		}
	} else {
		// Read in steps so memory follows the bytes actually received.
		payload = buf[:0]
		for len(payload) < int(size) {
			step := min(int(size)-len(payload), 4<<20)
			payload = slices.Grow(payload, step)[:len(payload)+step]
			if _, err := io.ReadFull(r, payload[len(payload)-step:]); err != nil {
				return 0, nil, buf, err
			}
		}
		if cap(payload) <= maxKeptBuffer {
			buf = payload
		}
	}
	if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(h[8:]) {
		return 0, nil, buf, fmt.Errorf("%w: payload checksum mismatch (type %d, %d bytes)", errBadFrame, h[0], size)
	}
	return h[0], payload, buf, nil
}

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
