package kafka

// CreatePartitions, v0-v3.
//
// Raises a topic's partition count through Raft; new replicas are placed
// over the live nodes. A count at or below the current one is
// INVALID_PARTITIONS; manual assignment is INVALID_REQUEST; more replicas
// on a node than kafka.max_partitions is POLICY_VIOLATION
// (partition_limit.go).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreatePartitions(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := s.clientTimeout(req.TimeoutMillis)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := func() error {
			t, ok := s.cluster.Topic(rt.Topic)
			switch {
			case !ok:
				return fmt.Errorf("%w: topic %q", kerr.UnknownTopicOrPartition, rt.Topic)
			case len(rt.Assignment) > 0:
				return fmt.Errorf("%w: manual replica assignment is not supported", kerr.InvalidRequest)
			case rt.Count > maxPartitions:
				return fmt.Errorf("%w: %d partitions; the limit is %d", kerr.InvalidPartitions, rt.Count, maxPartitions)
			case int(rt.Count) <= len(t.Partitions):
				return fmt.Errorf("%w: topic %q has %d partitions; ask for more", kerr.InvalidPartitions, rt.Topic, len(t.Partitions))
			}
			if err := s.CheckNewReplicas(rt.Count-int32(len(t.Partitions)), t.ReplicationFactor); err != nil {
				return err
			}
			if req.ValidateOnly {
				return nil
			}
			return s.cluster.CreatePartitions(ctx, rt.Topic, rt.Count)
		}()
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errMessage(err)
		} else if !req.ValidateOnly {
			s.log.Info("kafka: partitions added", "topic", rt.Topic, "partitions", rt.Count)
			s.parts.refresh()
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
