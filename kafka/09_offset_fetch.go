package kafka

// OffsetFetch, v0-v8.
//
// v0-v7 ask for one group, v8+ for several. No topics (null) means every
// committed offset of the group. A partition without a commit answers
// offset -1. Offsets are read linearizably from Raft, so a new coordinator
// sees every commit made through the old one.
//
// Offsets are stored with the id of the topic they were committed for, and
// a name answers with the offsets of the topic that has it now: a deleted
// topic's offsets, until its purge drops them, are not passed to a topic
// recreated under its name, and a group's offsets of a topic that no
// longer exists are not listed. Legacy offsets, committed before ids were
// kept, belong to whichever topic has their name. When the stored offsets
// name a topic id the local view does not know under that name, the view
// is brought up to date first, so a coordinator that has not yet applied a
// topic's recreation does not hide its offsets. A node still replaying the
// log after a restart answers COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type fetchedPartition struct {
	partition   int32
	offset      int64
	leaderEpoch int32
	metadata    *string
}

func handleOffsetFetch(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	if req.Version < 8 {
		var topics map[string][]int32
		if req.Topics != nil {
			topics = map[string][]int32{}
			for _, t := range req.Topics {
				topics[t.Topic] = t.Partitions
			}
		}
		got, code := s.fetchOffsets(ctx, req.Group, topics)
		resp.ErrorCode = code
		for _, name := range sortedKeys(got) {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = name
			for _, p := range got[name] {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
				rp.ErrorCode = code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	for _, rg := range req.Groups {
		var topics map[string][]int32
		if rg.Topics != nil {
			topics = map[string][]int32{}
			for _, t := range rg.Topics {
				topics[t.Topic] = t.Partitions
			}
		}
		got, code := s.fetchOffsets(ctx, rg.Group, topics)
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = rg.Group, code
		for _, name := range sortedKeys(got) {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic = name
			for _, p := range got[name] {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.partition, p.offset, p.leaderEpoch, p.metadata
				rt.Partitions = append(rt.Partitions, rp)
			}
			g.Topics = append(g.Topics, rt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

// fetchOffsets returns the asked partitions' offsets (every committed one
// when topics is nil), or an error code for the whole group.
func (s *Server) fetchOffsets(ctx context.Context, group string, topics map[string][]int32) (map[string][]fetchedPartition, int16) {
	out := map[string][]fetchedPartition{}
	fill := func(code int16) (map[string][]fetchedPartition, int16) {
		for t, parts := range topics {
			for _, p := range parts {
				out[t] = append(out[t], fetchedPartition{partition: p, offset: -1, leaderEpoch: -1})
			}
		}
		return out, code
	}
	if !s.groups.coordinates(group) {
		return fill(kerr.NotCoordinator.Code)
	}
	if !s.cluster.Current() {
		return fill(kerr.CoordinatorLoadInProgress.Code)
	}
	offs, err := s.cluster.Offsets(ctx, group)
	if err != nil {
		s.log.Warn("kafka: fetch offsets", "group", group, "err", err)
		return fill(kerr.CoordinatorLoadInProgress.Code)
	}
	have, err := s.currentOffsets(ctx, offs)
	if err != nil {
		s.log.Warn("kafka: fetch offsets: read the topics", "group", group, "err", err)
		return fill(kerr.CoordinatorLoadInProgress.Code)
	}
	if topics == nil {
		topics = map[string][]int32{}
		for t, ps := range have {
			for p := range ps {
				topics[t] = append(topics[t], p)
			}
		}
	}
	for t, parts := range topics {
		for _, p := range parts {
			fp := fetchedPartition{partition: p, offset: -1, leaderEpoch: -1}
			if o, ok := have[t][p]; ok {
				md := o.Metadata
				fp.offset, fp.leaderEpoch, fp.metadata = o.Offset, o.LeaderEpoch, &md
			}
			out[t] = append(out[t], fp)
		}
	}
	for t := range out {
		ps := out[t]
		sortPartitions(ps)
	}
	return out, 0
}

// currentOffsets keeps, by topic name and partition, the offsets of the
// topics that have those names now: those committed for the topic's id,
// and legacy ones (zero id) of its name. If an offset names an id the
// local view does not hold under its name, the view may lag a recreation:
// it is synced once and read again.
func (s *Server) currentOffsets(ctx context.Context, offs []CommittedOffset) (map[string]map[int32]CommittedOffset, error) {
	keep := func() (map[string]map[int32]CommittedOffset, bool) {
		ids := map[string]*[16]byte{} // nil: no topic of that name
		have := map[string]map[int32]CommittedOffset{}
		unknown := false
		for _, o := range offs {
			id, seen := ids[o.Topic]
			if !seen {
				if t, ok := s.cluster.Topic(o.Topic); ok {
					id = &t.ID
				}
				ids[o.Topic] = id
			}
			legacy := o.TopicID == [16]byte{}
			switch {
			case id != nil && (legacy || o.TopicID == *id):
			case legacy:
				continue // of a name no topic has
			default:
				unknown = true // a deleted topic's, or one the view lacks
				continue
			}
			if have[o.Topic] == nil {
				have[o.Topic] = map[int32]CommittedOffset{}
			}
			// The state machine never holds a legacy offset beside one with
			// an id for the same partition; if it did, the id's is newer.
			if prev, ok := have[o.Topic][o.Partition]; ok && legacy && prev.TopicID != [16]byte{} {
				continue
			}
			have[o.Topic][o.Partition] = o
		}
		return have, unknown
	}
	have, unknown := keep()
	if !unknown {
		return have, nil
	}
	if err := s.cluster.SyncTopics(ctx); err != nil {
		return nil, err
	}
	have, _ = keep()
	return have, nil
}

func sortPartitions(ps []fetchedPartition) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].partition < ps[j-1].partition; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}
