package kafka

// OffsetFetch, v0-v8.
//
// v0-v7 ask for one group, v8+ for several. No topics (null) means every
// committed offset of the group. A partition without a commit answers
// offset -1. Offsets are read linearizably from Raft, so a new coordinator
// sees every commit made through the old one.

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
	offs, err := s.cluster.Offsets(ctx, group)
	if err != nil {
		s.log.Warn("kafka: fetch offsets", "group", group, "err", err)
		return fill(kerr.CoordinatorLoadInProgress.Code)
	}
	have := map[string]map[int32]CommittedOffset{}
	for _, o := range offs {
		if have[o.Topic] == nil {
			have[o.Topic] = map[int32]CommittedOffset{}
		}
		have[o.Topic][o.Partition] = o
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

func sortPartitions(ps []fetchedPartition) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].partition < ps[j-1].partition; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}
