package kafka

// DescribeGroups, v0-v5: state, protocol and members (with their metadata
// and assignment) of groups this node coordinates; others answer
// NOT_COORDINATOR. A group nobody knows is reported Dead, as Kafka does.

import (
	"math"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeGroups(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	gs := s.groups
	offsetGroups := map[string]bool{}
	for _, g := range s.cluster.OffsetGroups() {
		offsetGroups[g] = true
	}
	for _, name := range req.Groups {
		d := kmsg.NewDescribeGroupsResponseGroup()
		d.Group = name
		d.AuthorizedOperations = math.MinInt32
		if !gs.coordinates(name) {
			d.ErrorCode = kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, d)
			continue
		}
		gs.mu.Lock()
		g := gs.get(name, false)
		switch {
		case g != nil:
			d.State, d.ProtocolType = string(g.state), g.protocolType
			if g.state == groupStable || g.state == groupCompletingRebalance {
				d.Protocol = g.protocol
			}
			ids := make([]string, 0, len(g.members))
			for id := range g.members {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				m := g.members[id]
				dm := kmsg.NewDescribeGroupsResponseGroupMember()
				dm.MemberID, dm.ClientID, dm.ClientHost = m.id, m.clientID, m.host
				if m.instanceID != "" {
					iid := m.instanceID
					dm.InstanceID = &iid
				}
				dm.ProtocolMetadata, dm.MemberAssignment = m.metadataFor(g.protocol), m.assignment
				d.Members = append(d.Members, dm)
			}
		case offsetGroups[name]:
			d.State, d.ProtocolType = string(groupEmpty), "consumer"
		default:
			d.State = string(groupDead)
		}
		gs.mu.Unlock()
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}
