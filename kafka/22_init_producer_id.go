package kafka

// InitProducerId, v0-v4.
//
// Idempotent producers only. As Apache Kafka's TransactionCoordinator does
// for a null transactional id, every request gets a producer id never
// handed out before (allocated through Raft in blocks, so unique across
// nodes and restarts) with epoch 0, whatever ProducerID and ProducerEpoch a
// v3+ request carries: KIP-360's epoch bump through InitProducerId is a
// transactional-id feature, and a fresh id is as good for a producer that
// lost track of its sequences. As Kafka does, a v3+ request with only one
// of ProducerID and ProducerEpoch set to -1 is INVALID_REQUEST.
//
// A transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
// (the answer Produce already gives a transactional request): franz-go, the
// Java client and librdkafka treat it as fatal, so a transactional producer
// fails at once with a clear error instead of retrying a retriable code
// such as COORDINATOR_NOT_AVAILABLE forever. An empty transactional id is
// INVALID_REQUEST, as in Kafka. When no id can be allocated (no Raft quorum
// within the request timeout) the answer is COORDINATOR_LOAD_IN_PROGRESS,
// which clients retry, as Kafka answers while its producer id block is not
// ready.
//
// v5 (KIP-890, transactions v2) is not advertised.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleInitProducerID(s *Server, c *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case req.TransactionalID != nil:
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
	default:
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
		defer cancel()
		id, err := s.cluster.AllocateProducerID(ctx)
		if err != nil {
			resp.ErrorCode = allocateErrorCode(err)
			s.log.Warn("kafka: allocate producer id", "client_id", c.clientID, "err", err)
			return resp
		}
		resp.ProducerID, resp.ProducerEpoch = id, 0
	}
	return resp
}

// allocateErrorCode maps a failed producer id allocation to a code the
// client retries when waiting may help.
func allocateErrorCode(err error) int16 {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, kerr.RequestTimedOut) {
		return kerr.CoordinatorLoadInProgress.Code
	}
	return errorCode(err)
}
