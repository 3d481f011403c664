package kafka

// JoinGroup, v0-v9.
//
// A new dynamic member is handed a member id with MEMBER_ID_REQUIRED from
// v4 (KIP-394) and joins with it; a static member (group.instance.id, v5+)
// gets a new id at once and replaces its previous incarnation, which is then
// fenced (FENCED_INSTANCE_ID). Joins park until every known member has
// rejoined or the largest rebalance timeout passes; the first rebalance of
// an empty group waits kafka's group.initial.rebalance.delay for more
// members. A known follower rejoining a stable group with unchanged
// metadata gets the current generation without a rebalance, as in Kafka.
// Session timeouts outside 6 s..30 min answer INVALID_SESSION_TIMEOUT; a
// protocol's metadata over 1 MiB answers INVALID_REQUEST.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleJoinGroup(s *Server, c *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	fail := func(code int16) kmsg.Response {
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
		return resp
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 {
		rebalance = session
	}
	switch {
	case req.Group == "":
		return fail(kerr.InvalidGroupID.Code)
	case !s.groups.coordinates(req.Group):
		return fail(kerr.NotCoordinator.Code)
	case session < minSessionTimeout || session > maxSessionTimeout:
		return fail(kerr.InvalidSessionTimeout.Code)
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	for _, p := range req.Protocols {
		if len(p.Metadata) > maxProtocolBytes {
			return fail(kerr.InvalidRequest.Code)
		}
	}

	gs := s.groups
	gs.mu.Lock()
	// Only a join without a member id may create a group: one naming a
	// member of a group that does not exist is refused without leaving an
	// empty group behind.
	g := gs.get(req.Group, req.MemberID == "")
	if g == nil {
		gs.mu.Unlock()
		return fail(kerr.UnknownMemberID.Code)
	}
	if len(g.members) > 0 && !supportsCommon(g, req.ProtocolType, req.Protocols, req.MemberID) {
		gs.mu.Unlock()
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m, code := gs.admit(g, c, req, resp)
	if code != 0 {
		gs.mu.Unlock()
		return fail(code)
	}
	if resp.ErrorCode != 0 || resp.Generation >= 0 { // answered without a rebalance
		gs.mu.Unlock()
		return resp
	}
	m.session, m.rebalance, m.protocolType = session, rebalance, req.ProtocolType
	m.clientID, m.host = c.clientID, c.remote
	changed := !sameProtocols(m.protocols, req.Protocols)
	m.protocols = req.Protocols
	g.protocolType = req.ProtocolType
	switch g.state {
	case groupEmpty:
		g.initialDelay = true
		gs.prepareRebalance(g)
	case groupStable, groupCompletingRebalance:
		if changed || m.id == g.leader {
			gs.prepareRebalance(g)
		} else {
			// A follower with unchanged metadata: answer with the current
			// generation; it syncs to get its assignment.
			resp.Generation, resp.LeaderID, resp.MemberID = g.generation, g.leader, m.id
			pt, p := g.protocolType, g.protocol
			resp.ProtocolType, resp.Protocol = &pt, &p
			m.deadline = time.Now().Add(m.session)
			gs.mu.Unlock()
			return resp
		}
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	if m.join != nil {
		// The member joined again (say, over a new connection): the old
		// parked join gets an answer instead of waiting forever.
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.Generation, r.MemberID = kerr.RebalanceInProgress.Code, -1, m.id
		m.join <- r
	}
	m.join = ch
	if gs.allJoined(g) {
		gs.completeJoin(g)
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

// admit finds or creates the joining member. It returns an error code, or
// fills resp for the answers that need no rebalance (MEMBER_ID_REQUIRED);
// resp.Generation stays -1 otherwise.
func (gs *groups) admit(g *group, c *conn, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) (*member, int16) {
	resp.Generation = -1
	newMember := func(id string) *member {
		m := &member{id: id}
		if req.InstanceID != nil {
			m.instanceID = *req.InstanceID
			g.static[m.instanceID] = id
		}
		g.members[id] = m
		delete(g.pending, id)
		return m
	}
	if req.MemberID == "" {
		id := newMemberID(c.clientID)
		if req.InstanceID != nil {
			if old, ok := g.members[g.static[*req.InstanceID]]; ok {
				// A static member restarted: its new id replaces the old
				// one, which is fenced from now on.
				gs.fence(g, old, id)
				if g.state == groupStable && old.id != g.leader && sameProtocols(old.protocols, req.Protocols) {
					resp.Generation, resp.LeaderID, resp.MemberID = g.generation, g.leader, id
					pt, p := g.protocolType, g.protocol
					resp.ProtocolType, resp.Protocol = &pt, &p
					old.deadline = time.Now().Add(old.session)
				}
				return old, 0
			}
			return newMember(id), 0
		}
		if req.Version >= 4 {
			g.pending[id] = time.Now().Add(time.Duration(req.SessionTimeoutMillis) * time.Millisecond)
			resp.ErrorCode, resp.MemberID = kerr.MemberIDRequired.Code, id
			return nil, 0
		}
		return newMember(id), 0
	}
	m, ok := g.members[req.MemberID]
	if !ok {
		if _, pending := g.pending[req.MemberID]; pending {
			return newMember(req.MemberID), 0
		}
		return nil, kerr.UnknownMemberID.Code
	}
	if req.InstanceID != nil && g.static[*req.InstanceID] != m.id {
		return nil, kerr.FencedInstanceID.Code
	}
	if req.ProtocolType != g.protocolType && g.protocolType != "" {
		return nil, kerr.InconsistentGroupProtocol.Code
	}
	return m, 0
}

// fence gives a static member a new id; requests with the old one now
// answer FENCED_INSTANCE_ID (or UNKNOWN_MEMBER_ID without the instance id).
func (gs *groups) fence(g *group, m *member, newID string) {
	if m.join != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.Generation, r.MemberID = kerr.FencedInstanceID.Code, -1, m.id
		m.join <- r
		m.join = nil
	}
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.FencedInstanceID.Code
		m.sync <- r
		m.sync = nil
	}
	delete(g.members, m.id)
	if g.leader == m.id {
		g.leader = newID
	}
	m.id = newID
	g.members[newID] = m
	g.static[m.instanceID] = newID
}
