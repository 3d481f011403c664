package kafka

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The group coordinator: the classic consumer-group protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup) as Apache Kafka's GroupCoordinator runs
// it. The broker is assignor-agnostic: the group leader computes the
// assignment (eager or cooperative-sticky alike) and reeve only relays it.
//
// Membership lives in memory on the coordinator, which is the leader of the
// Raft group holding the group's offsets. Committed offsets are in Raft;
// membership is not: after the coordinator moves, members get
// NOT_COORDINATOR, find the new one and rejoin at a fresh generation, as
// they would after any rebalance.

// groupState names follow Kafka's, as DescribeGroups and ListGroups report
// them.
type groupState string

const (
	groupEmpty               groupState = "Empty"
	groupPreparingRebalance  groupState = "PreparingRebalance"
	groupCompletingRebalance groupState = "CompletingRebalance"
	groupStable              groupState = "Stable"
	groupDead                groupState = "Dead"
)

// Timing limits, as Kafka's broker defaults.
const (
	minSessionTimeout = 6 * time.Second  // group.min.session.timeout.ms
	maxSessionTimeout = 30 * time.Minute // group.max.session.timeout.ms
	maxProtocolBytes  = 1 << 20          // cap on one member's protocol metadata
	groupSweepPeriod  = 250 * time.Millisecond
	// emptyGroupRetention is how long a group without members is still
	// described as Empty (rather than Dead) when it has no offsets; Kafka
	// drops such groups on its 10-minute offsets cleanup.
	emptyGroupRetention = 10 * time.Minute
)

type member struct {
	id, instanceID     string
	clientID, host     string
	session, rebalance time.Duration
	protocolType       string
	protocols          []kmsg.JoinGroupRequestProtocol
	assignment         []byte
	deadline           time.Time // session expiry

	join chan *kmsg.JoinGroupResponse // a parked JoinGroup, answered when the rebalance completes
	sync chan *kmsg.SyncGroupResponse // a parked SyncGroup, answered when the leader syncs
}

type group struct {
	name         string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id -> member id
	rebalanceEnd time.Time            // when a rebalance stops waiting for members
	initialDelay bool                 // the first rebalance of an empty group waits for more members
	pending      map[string]time.Time // member ids handed out with MEMBER_ID_REQUIRED, until they rejoin
	emptySince   time.Time            // when the last member left
}

// groups is the coordinator of every consumer group this node coordinates.
type groups struct {
	s  *Server
	mu sync.Mutex
	m  map[string]*group
}

func newGroups(s *Server) *groups { return &groups{s: s, m: make(map[string]*group)} }

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	return clientID + "-" + hex.EncodeToString(b[:])
}

// get returns a group, creating an empty one if asked.
func (gs *groups) get(name string, create bool) *group {
	g, ok := gs.m[name]
	if !ok && create {
		g = &group{name: name, state: groupEmpty, members: make(map[string]*member), static: make(map[string]string),
			pending: make(map[string]time.Time), emptySince: time.Now()}
		gs.m[name] = g
	}
	return g
}

// coordinates reports whether this node coordinates group name now.
func (gs *groups) coordinates(name string) bool {
	id, ok := gs.s.cluster.Coordinator(name)
	return ok && id == gs.s.cluster.LocalNode()
}

// run expires sessions and completes rebalances whose time is up, and
// drops the groups this node no longer coordinates.
func (gs *groups) run(done <-chan struct{}) {
	t := time.NewTicker(groupSweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-done:
			gs.mu.Lock()
			for _, g := range gs.m {
				gs.abandon(g, kerr.NotCoordinator.Code)
			}
			gs.mu.Unlock()
			return
		case <-t.C:
		}
		gs.mu.Lock()
		now := time.Now()
		for name, g := range gs.m {
			if !gs.coordinates(name) {
				gs.abandon(g, kerr.NotCoordinator.Code)
				delete(gs.m, name)
				continue
			}
			for id, until := range g.pending {
				if now.After(until) {
					delete(g.pending, id)
				}
			}
			for _, m := range g.members {
				// A member parked in JoinGroup is covered by the rebalance
				// timeout, not its session.
				if m.join == nil && now.After(m.deadline) {
					gs.s.log.Info("kafka: group member session expired", "group", name, "member_id", m.id)
					gs.remove(g, m)
				}
			}
			if g.state == groupPreparingRebalance && (now.After(g.rebalanceEnd) || gs.allJoined(g)) {
				gs.completeJoin(g)
			}
			if g.state == groupEmpty && len(g.members) == 0 && len(g.pending) == 0 && now.Sub(g.emptySince) > emptyGroupRetention {
				delete(gs.m, name) // its offsets, if any, stay in Raft
			}
		}
		gs.mu.Unlock()
	}
}

// abandon answers every parked request of a group with code.
func (gs *groups) abandon(g *group, code int16) {
	for _, m := range g.members {
		if m.join != nil {
			r := kmsg.NewPtrJoinGroupResponse()
			r.ErrorCode, r.MemberID, r.Generation = code, m.id, -1
			m.join <- r
			m.join = nil
		}
		if m.sync != nil {
			r := kmsg.NewPtrSyncGroupResponse()
			r.ErrorCode = code
			m.sync <- r
			m.sync = nil
		}
	}
}

// remove takes a member out and rebalances the rest.
func (gs *groups) remove(g *group, m *member) {
	delete(g.members, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if m.join != nil {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.Generation = kerr.UnknownMemberID.Code, -1
		m.join <- r
		m.join = nil
	}
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.UnknownMemberID.Code
		m.sync <- r
		m.sync = nil
	}
	if g.leader == m.id {
		g.leader = ""
	}
	switch g.state {
	case groupStable, groupCompletingRebalance:
		gs.prepareRebalance(g)
	}
	// With nobody left there is no one to wait for: the group is Empty as
	// soon as its last member goes, as in Kafka.
	if g.state == groupPreparingRebalance && len(g.members) == 0 {
		gs.completeJoin(g)
	}
}

// prepareRebalance starts a rebalance: every member must rejoin within the
// largest rebalance timeout.
func (gs *groups) prepareRebalance(g *group) {
	if g.state == groupCompletingRebalance {
		// The leader's assignment will never come: tell the parked syncs.
		for _, m := range g.members {
			if m.sync != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.ErrorCode = kerr.RebalanceInProgress.Code
				m.sync <- r
				m.sync = nil
			}
		}
	}
	timeout := time.Duration(0)
	for _, m := range g.members {
		timeout = max(timeout, m.rebalance)
	}
	if g.state == groupEmpty && g.initialDelay {
		timeout = min(timeout, gs.s.cfg.InitialRebalanceDelay)
	}
	g.state = groupPreparingRebalance
	g.rebalanceEnd = time.Now().Add(timeout)
}

func (gs *groups) allJoined(g *group) bool {
	if g.initialDelay && time.Now().Before(g.rebalanceEnd) {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	return true
}

// completeJoin ends the join phase: members that did not rejoin are
// dropped, a new generation starts, and every parked JoinGroup is answered,
// the leader with every member's metadata.
func (gs *groups) completeJoin(g *group) {
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil {
			delete(g.members, m.id)
			if m.instanceID != "" && g.static[m.instanceID] == m.id {
				delete(g.static, m.instanceID)
			}
		}
	}
	if len(g.members) == 0 {
		g.state, g.leader, g.protocol = groupEmpty, "", ""
		g.generation++
		g.emptySince = time.Now()
		return
	}
	g.generation++
	g.state = groupCompletingRebalance
	g.protocol = chooseProtocol(g)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ""
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		g.leader = ids[0]
	}
	now := time.Now()
	for _, m := range g.members {
		m.assignment = nil
		r := kmsg.NewPtrJoinGroupResponse()
		r.Generation, r.LeaderID, r.MemberID = g.generation, g.leader, m.id
		pt, p := g.protocolType, g.protocol
		r.ProtocolType, r.Protocol = &pt, &p
		if m.id == g.leader {
			for _, o := range g.members {
				jm := kmsg.NewJoinGroupResponseMember()
				jm.MemberID, jm.ProtocolMetadata = o.id, o.metadataFor(g.protocol)
				if o.instanceID != "" {
					iid := o.instanceID
					jm.InstanceID = &iid
				}
				r.Members = append(r.Members, jm)
			}
		}
		m.deadline = now.Add(m.session)
		m.join <- r
		m.join = nil
	}
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// chooseProtocol picks, like Kafka, the protocol every member supports that
// most members prefer.
func chooseProtocol(g *group) string {
	candidates := map[string]bool{}
	first := true
	for _, m := range g.members {
		these := map[string]bool{}
		for _, p := range m.protocols {
			if first || candidates[p.Name] {
				these[p.Name] = true
			}
		}
		candidates, first = these, false
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if candidates[p.Name] {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for name, v := range votes {
		if v > bestVotes || v == bestVotes && name < best {
			best, bestVotes = name, v
		}
	}
	return best
}

// supportsCommon reports whether protocols share one with every member.
func supportsCommon(g *group, protocolType string, protocols []kmsg.JoinGroupRequestProtocol, self string) bool {
	if len(protocols) == 0 {
		return false
	}
	if g.protocolType != "" && len(g.members) > 0 && protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		ok := true
		for id, m := range g.members {
			if id == self {
				continue
			}
			if m.metadataFor(p.Name) == nil && !hasProtocol(m, p.Name) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}
