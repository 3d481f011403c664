package kafka

// Heartbeat, v0-v4.
//
// Keeps a member's session alive. REBALANCE_IN_PROGRESS tells it to rejoin;
// an evicted member gets UNKNOWN_MEMBER_ID, a stale generation
// ILLEGAL_GENERATION, a replaced static member FENCED_INSTANCE_ID.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleHeartbeat(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !s.groups.coordinates(req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	gs := s.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.get(req.Group, false)
	m, code := gs.member(g, req.MemberID, req.InstanceID, req.Generation)
	switch {
	case code != 0:
		resp.ErrorCode = code
	case g.state == groupPreparingRebalance:
		m.deadline = time.Now().Add(m.session)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		m.deadline = time.Now().Add(m.session)
	}
	return resp
}
