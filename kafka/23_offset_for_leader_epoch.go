package kafka

// OffsetForLeaderEpoch, v0-v4.
//
// For each partition this node leads, the end offset of the asked leader
// epoch: the start offset of the next higher epoch in the log, or the log
// end offset for the current one, and the largest epoch at or below the
// asked one (v1+). v2+ checks the client's current leader epoch (KIP-320).
// Clients use it after a leader change to detect a truncated log.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleOffsetForLeaderEpoch(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t, ok := s.parts.topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			switch {
			case !ok || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case t.Partitions[rp.Partition].Leader != s.cluster.LocalNode():
				sp.ErrorCode = notLeaderCode(t.Partitions[rp.Partition])
			default:
				meta := t.Partitions[rp.Partition]
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, meta.LeaderEpoch); code != 0 {
					sp.ErrorCode = code
					break
				}
				p, err := s.parts.get(t, rp.Partition)
				if err != nil {
					sp.ErrorCode = kerr.KafkaStorageError.Code
					break
				}
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
