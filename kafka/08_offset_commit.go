package kafka

// OffsetCommit, v0-v8.
//
// Offsets are committed through Raft before the answer, so they survive
// the coordinator's loss. A member of the group must name its current
// generation (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS
// otherwise); a commit with generation -1 and no member id is a standalone
// consumer's and is accepted while the group has no members. Commits of the
// current generation are accepted while a rebalance is being prepared, as
// eager consumers commit when their partitions are revoked. Metadata over
// 4 KiB is OFFSET_METADATA_TOO_LARGE; unknown partitions, and topics that
// do not exist, are UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
//
// Each offset is stored with the id the topic's name has when the commit
// arrives, read from the cluster view rather than the partition logs'
// cache, which may still hold a deleted topic of the same name. So the
// purge of a deleted topic cannot take a recreated one's offsets, and
// OffsetFetch answers a name with its current topic's offsets only. A node
// still replaying the log after a restart may not know the topic yet, and
// answers COORDINATOR_LOAD_IN_PROGRESS, which clients retry.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const maxOffsetMetadata = 4096 // Kafka's offset.metadata.max.bytes

func handleOffsetCommit(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := s.groups.commitCheck(req)
	if code == 0 && !s.cluster.Current() {
		code = kerr.CoordinatorLoadInProgress.Code
	}
	var offsets []CommittedOffset
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		var (
			t     Topic
			known bool
		)
		if code == 0 {
			t, known = s.cluster.Topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case code != 0:
				sp.ErrorCode = code
			case !known || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := CommittedOffset{Topic: rt.Topic, TopicID: t.ID, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch}
				if req.Version < 6 {
					o.LeaderEpoch = -1
				}
				if rp.Metadata != nil {
					o.Metadata = *rp.Metadata
				}
				offsets = append(offsets, o)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(offsets) == 0 {
		return resp
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.cluster.CommitOffsets(ctx, req.Group, offsets); err != nil {
		s.log.Warn("kafka: commit offsets", "group", req.Group, "err", err)
		code := kerr.CoordinatorNotAvailable.Code
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
					resp.Topics[ti].Partitions[pi].ErrorCode = code
				}
			}
		}
	}
	return resp
}

// commitCheck applies the group's fencing to a commit.
func (gs *groups) commitCheck(req *kmsg.OffsetCommitRequest) int16 {
	if req.Group == "" {
		return kerr.InvalidGroupID.Code
	}
	if !gs.coordinates(req.Group) {
		return kerr.NotCoordinator.Code
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.get(req.Group, false)
	if req.Generation < 0 && req.MemberID == "" && req.InstanceID == nil {
		if g != nil && len(g.members) > 0 {
			return kerr.UnknownMemberID.Code // a standalone commit to a live group
		}
		return 0
	}
	if _, code := gs.member(g, req.MemberID, req.InstanceID, req.Generation); code != 0 {
		return code
	}
	// As in Kafka: while the group prepares a rebalance the old generation
	// may still commit (eager consumers commit as their partitions are
	// revoked); between the join and the sync it may not.
	if g.state == groupCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}
