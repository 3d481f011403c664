package kafka

// LeaveGroup, v0-v5.
//
// v0-v2 name one member; v3+ a batch, each by member id or group instance
// id, each answered on its own. Leaving rebalances the rest of the group.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleLeaveGroup(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !s.groups.coordinates(req.Group) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	gs := s.groups
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.get(req.Group, false)
	leave := func(id string, instance *string) int16 {
		if g == nil {
			return kerr.UnknownMemberID.Code
		}
		if instance != nil && id == "" {
			id = g.static[*instance]
		}
		m, code := gs.member(g, id, instance, -1)
		if code != 0 {
			return code
		}
		gs.s.log.Debug("kafka: member left group", "group", g.name, "member_id", m.id)
		gs.remove(g, m)
		return 0
	}
	if req.Version < 3 {
		resp.ErrorCode = leave(req.MemberID, nil)
		return resp
	}
	for _, rm := range req.Members {
		lm := kmsg.NewLeaveGroupResponseMember()
		lm.MemberID, lm.InstanceID = rm.MemberID, rm.InstanceID
		lm.ErrorCode = leave(rm.MemberID, rm.InstanceID)
		resp.Members = append(resp.Members, lm)
	}
	return resp
}
