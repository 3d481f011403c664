package kafka

import (
	"context"
	"fmt"
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
	// A connection of its own, used once: a peer's, as node-to-node
	// requests use.
	c := &peer{addr: target.String(), clientID: "reeve-probe"}
	defer c.close()
	// Version 0: no tagged fields, any broker answers it.
	resp, err := c.request(ctx, kmsg.NewPtrApiVersionsRequest(), 0)
	if err != nil {
		return fmt.Errorf("kafka probe: no ApiVersions answer: %w", err)
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.ApiVersionsResponse).ErrorCode); err != nil {
		return fmt.Errorf("kafka probe: %s answered ApiVersions with %w", target.String(), err)
	}
	return nil
}
