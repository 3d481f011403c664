package kafka

// BrokerHeartbeat, v0-v1, between reeve nodes only.
//
// Every node sends one to every other node each heartbeat interval over the
// Kafka listener; the receiver records it in the liveness table the
// election controller reads. Liveness comes from these alone, never from
// produce traffic, so an idle partition's healthy leader is never taken for
// dead. A heartbeat from a node that is not an active member is answered
// with is_fenced.

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

func handleBrokerHeartbeat(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.BrokerHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
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
				s.heartbeatPeer(pctx, addr, interval)
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

func (s *Server) heartbeatPeer(ctx context.Context, addr string, interval time.Duration) {
	c := &peer{addr: addr, clientID: "reeve-heartbeat"}
	defer c.close()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		req := kmsg.NewPtrBrokerHeartbeatRequest()
		req.BrokerID = s.cluster.LocalNode()
		req.BrokerEpoch, req.CurrentMetadataOffset = -1, -1
		rctx, cancel := context.WithTimeout(ctx, interval)
		if _, err := c.request(rctx, req, 0); err != nil && ctx.Err() == nil {
			s.log.Debug("kafka: heartbeat", "peer", addr, "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
