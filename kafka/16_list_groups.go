package kafka

// ListGroups, v0-v5: the groups this node coordinates, with members or
// committed offsets; v4 filters by state, v5 by type ("classic" only).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListGroups(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	gs := s.groups
	seen := map[string]bool{}
	add := func(name, protocolType string, state groupState) {
		if seen[name] || !gs.coordinates(name) {
			return
		}
		seen[name] = true
		if len(req.StatesFilter) > 0 && !slices.Contains(req.StatesFilter, string(state)) {
			return
		}
		if len(req.TypesFilter) > 0 && !slices.Contains(req.TypesFilter, "classic") {
			return
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = name, protocolType, string(state), "classic"
		resp.Groups = append(resp.Groups, g)
	}
	gs.mu.Lock()
	for name, g := range gs.m {
		add(name, g.protocolType, g.state)
	}
	gs.mu.Unlock()
	for _, name := range s.cluster.OffsetGroups() {
		add(name, "consumer", groupEmpty)
	}
	return resp
}
