package kafka

// BrokerHeartbeat, v0-v1, between reeve nodes only.
//
// Every node sends one to every other node each heartbeat interval over the
// Kafka listener; the receiver records it in the liveness table the
// election controller reads. Liveness comes from these alone, never from
// produce traffic, so an idle partition's healthy leader is never taken for
// dead. A heartbeat from a node that is not an active member is answered
// with is_fenced. With [tls], a heartbeat is believed only on a TLS
// connection whose certificate names its broker id (nodeClaim); any other
// is answered CLUSTER_AUTHORIZATION_FAILED and not recorded, so a stranger
// cannot keep a dead leader looking alive.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// HeartbeatSink records heartbeats; the election controller's liveness
// table implements it.
type HeartbeatSink interface {
	Heartbeat(node uint64)
}

func handleBrokerHeartbeat(s *Server, c *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.BrokerHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	if !s.nodeClaim(c, req.BrokerID, "broker_heartbeat") {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	}
	known := false
	for _, b := range s.cluster.Brokers() {
		if b.ID == req.BrokerID {
			known = true
			break
		}
	}
	if !known {
		resp.ErrorCode, resp.IsFenced = kerr.StaleBrokerEpoch.Code, true
		return resp
	}
	if s.cfg.Heartbeats != nil {
		s.cfg.Heartbeats.Heartbeat(uint64(req.BrokerID))
	}
	resp.IsCaughtUp = true
	return resp
}

// heartbeats sends this node's heartbeat to every other active node every
// interval, one goroutine per peer so a dead peer's connect timeout never
// delays the others.
func (s *Server) heartbeats(ctx context.Context, interval time.Duration) {
	var (
		mu      sync.Mutex
		running = map[int32]context.CancelFunc{}
		wg      sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		for _, cancel := range running {
			cancel()
		}
		mu.Unlock()
		wg.Wait()
	}()
	self := s.cluster.LocalNode()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		want := map[int32]string{}
		for _, b := range s.cluster.Brokers() {
			if b.ID != self {
				want[b.ID] = b.address()
			}
		}
		mu.Lock()
		for id, cancel := range running {
			if _, ok := want[id]; !ok {
				cancel()
				delete(running, id)
			}
		}
		for id, addr := range want {
			if _, ok := running[id]; ok {
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			running[id] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.heartbeatPeer(pctx, id, addr, interval)
			}()
		}
		mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) heartbeatPeer(ctx context.Context, node int32, addr string, interval time.Duration) {
	c := s.peerTo(node, addr, "reeve-heartbeat")
	defer c.close()
	t := time.NewTicker(interval)
	defer t.Stop()
	refused := false // logged once until a heartbeat is taken again
	for {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = s.cluster.LocalNode()
		req.BrokerEpoch, req.CurrentMetadataOffset = -1, -1
		rctx, cancel := context.WithTimeout(ctx, interval)
		resp, err := c.request(rctx, req, 0)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Debug("kafka: heartbeat", "peer", addr, "node_id", node, "err", err)
		case err == nil && resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode == kerr.ClusterAuthorizationFailed.Code:
			if !refused {
				s.log.Warn("kafka: node refused this node's heartbeat as unauthenticated; "+
					"set [tls] on every node or on none", "peer", addr, "node_id", node)
			}
			refused = true
		case err == nil:
			refused = false
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
