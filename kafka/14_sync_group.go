package kafka

// SyncGroup, v0-v5.
//
// The leader's SyncGroup carries every member's assignment; followers park
// until it arrives. A stable group answers at once with the member's
// assignment. Fencing: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
// REBALANCE_IN_PROGRESS and, v5+, INCONSISTENT_GROUP_PROTOCOL when the
// protocol type or name does not match the group's.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleSyncGroup(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) kmsg.Response { resp.ErrorCode = code; return resp }
	if !s.groups.coordinates(req.Group) {
		return fail(kerr.NotCoordinator.Code)
	}
	gs := s.groups
	gs.mu.Lock()
	g := gs.get(req.Group, false)
	m, code := gs.member(g, req.MemberID, req.InstanceID, req.Generation)
	if code == 0 && (req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol) {
		code = kerr.InconsistentGroupProtocol.Code
	}
	if code != 0 {
		gs.mu.Unlock()
		return fail(code)
	}
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	m.deadline = time.Now().Add(m.session)
	switch g.state {
	case groupStable:
		resp.MemberAssignment = m.assignment
		gs.mu.Unlock()
		return resp
	case groupCompletingRebalance:
	default:
		gs.mu.Unlock()
		return fail(kerr.RebalanceInProgress.Code)
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.RebalanceInProgress.Code
		m.sync <- r
	}
	m.sync = ch
	if m.id == g.leader {
		assigned := map[string][]byte{}
		for _, a := range req.GroupAssignment {
			assigned[a.MemberID] = a.MemberAssignment
		}
		g.state = groupStable
		for _, o := range g.members {
			o.assignment = assigned[o.id]
			if o.sync != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.MemberAssignment = o.assignment
				r.ProtocolType, r.Protocol = &pt, &p
				o.sync <- r
				o.sync = nil
			}
		}
	}
	gs.mu.Unlock()
	select {
	case r := <-ch:
		r.SetVersion(req.Version)
		return r
	case <-s.ctx.Done():
		return fail(kerr.NotCoordinator.Code)
	}
}

// member finds the member a group request names and checks its
// generation: the fencing every group request shares. generation < 0
// skips the generation check.
func (gs *groups) member(g *group, id string, instance *string, generation int32) (*member, int16) {
	if g == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if instance != nil {
		if cur, ok := g.static[*instance]; ok && cur != id {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m, ok := g.members[id]
	if !ok {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation >= 0 && generation != g.generation {
		return nil, kerr.IllegalGeneration.Code
	}
	return m, 0
}
