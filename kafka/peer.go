package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// peer is a connection to another reeve node's Kafka listener, for the
// node-to-node requests (replica fetches, leader-epoch lookups). Both ends
// are reeve, so the versions are fixed instead of negotiated. One request
// is in flight at a time.
type peer struct {
	addr     string
	clientID string
	conn     net.Conn
	br       *bufio.Reader
	corr     int32
}

func (c *peer) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// request sends req at version and decodes the answer into its response.
// Any error closes the connection; the next request redials.
func (c *peer) request(ctx context.Context, req kmsg.Request, version int16) (kmsg.Response, error) {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	} else {
		c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	// Cancelling ctx ends a request blocked in a read at once.
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	c.corr++
	req.SetVersion(version)
	frame := make([]byte, 4, 256)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(c.clientID)))
	frame = append(frame, c.clientID...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := c.conn.Write(frame); err != nil {
		c.close()
		return nil, fmt.Errorf("send to %s: %w", c.addr, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		c.close()
		return nil, fmt.Errorf("read from %s: %w", c.addr, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<30 {
		c.close()
		return nil, fmt.Errorf("read from %s: answer of %d bytes", c.addr, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		c.close()
		return nil, fmt.Errorf("read from %s: %w", c.addr, err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		c.close()
		return nil, fmt.Errorf("answer from %s: correlation id %d, want %d", c.addr, corr, c.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		var err error
		if body, err = skipTags(body); err != nil {
			c.close()
			return nil, fmt.Errorf("answer from %s: %w", c.addr, err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		c.close()
		return nil, fmt.Errorf("decode answer from %s: %w", c.addr, err)
	}
	return resp, nil
}
