package kafka

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probeTimeout bounds a Probe whose context has no deadline.
const probeTimeout = 2 * time.Second

// Probe checks, end to end, that the listener serves clients: it connects
// to the node's own Kafka address, sends an ApiVersions request and reads
// the answer. A wedged acceptor or request loop fails it even though the
// socket still accepts connections into its backlog.
func (s *Server) Probe(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	addr := s.Addr().(*net.TCPAddr)
	target := *addr
	if target.IP.IsUnspecified() { // bound to every address: ask over loopback
		target.IP = net.IPv4(127, 0, 0, 1)
		if addr.IP.To4() == nil {
			target.IP = net.IPv6loopback
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return fmt.Errorf("kafka probe: connect to %s: %w", target.String(), err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)

	req := kmsg.NewPtrApiVersionsRequest() // version 0: no tagged fields, any broker answers it
	const correlationID = 1
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("reeve-probe")).AppendRequest(nil, req, correlationID)
	if _, err := c.Write(frame); err != nil {
		return fmt.Errorf("kafka probe: send ApiVersions to %s: %w", target.String(), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return fmt.Errorf("kafka probe: no ApiVersions answer from %s: %w", target.String(), err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("kafka probe: %s answered a %d-byte frame", target.String(), n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return fmt.Errorf("kafka probe: short ApiVersions answer from %s: %w", target.String(), err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != correlationID {
		return fmt.Errorf("kafka probe: %s answered correlation id %d, want %d", target.String(), got, correlationID)
	}
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	if err := resp.ReadFrom(body[4:]); err != nil {
		return fmt.Errorf("kafka probe: decode ApiVersions answer from %s: %w", target.String(), err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("kafka probe: %s answered ApiVersions with %w", target.String(), err)
	}
	return nil
}
