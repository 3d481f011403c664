package kafka

// FindCoordinator, v0-v4 (v4 batches keys).
//
// A consumer group's coordinator is the leader of the Raft group holding
// its offsets, so groups spread over the nodes. Transaction coordinators
// are not offered: reeve has no transactions, and the answer says so.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleFindCoordinator(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	brokers := map[int32]Broker{}
	for _, b := range s.cluster.Brokers() {
		brokers[b.ID] = b
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		switch {
		case req.CoordinatorType != 0:
			// Not retriable, so a transactional producer fails at once
			// instead of retrying until its timeout; Produce and
			// InitProducerId answer a transactional id the same way.
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			c.ErrorMessage = errMessage(fmt.Errorf("reeve does not support transactions, so it has no transaction coordinator"))
		default:
			id, ok := s.cluster.Coordinator(key)
			b, known := brokers[id]
			if !ok || !known {
				c.ErrorCode = kerr.CoordinatorNotAvailable.Code
				c.ErrorMessage = errMessage(fmt.Errorf("the coordinator of group %q is being elected; retry", key))
				break
			}
			c.NodeID, c.Host, c.Port = b.ID, b.Host, b.Port
		}
		if req.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
			return resp
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp
}
