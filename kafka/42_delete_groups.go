package kafka

// DeleteGroups, v0-v2: deletes empty groups and their committed offsets. A
// group with members is NON_EMPTY_GROUP; one nobody knows,
// GROUP_ID_NOT_FOUND.

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDeleteGroups(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	gs := s.groups
	withOffsets := s.cluster.OffsetGroups()
	for _, name := range req.Groups {
		d := kmsg.NewDeleteGroupsResponseGroup()
		d.Group = name
		if !gs.coordinates(name) {
			d.ErrorCode = kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, d)
			continue
		}
		gs.mu.Lock()
		g := gs.get(name, false)
		switch {
		case g != nil && len(g.members) > 0:
			d.ErrorCode = kerr.NonEmptyGroup.Code
		case g == nil && !slices.Contains(withOffsets, name):
			d.ErrorCode = kerr.GroupIDNotFound.Code
		default:
			delete(gs.m, name)
		}
		gs.mu.Unlock()
		if d.ErrorCode == 0 {
			if err := s.cluster.DeleteGroupOffsets(ctx, name); err != nil {
				d.ErrorCode = errorCode(err)
				d.ErrorMessage = errMessage(err)
			} else {
				s.log.Info("kafka: group deleted", "group", name)
			}
		}
		resp.Groups = append(resp.Groups, d)
	}
	return resp
}
