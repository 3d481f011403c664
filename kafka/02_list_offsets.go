package kafka

// ListOffsets, v0-v8.
//
// Timestamps: -2 earliest (the log start offset), -1 latest (the high
// watermark, the end of what is committed), -3 (v7+) the record with the largest timestamp, -4 (v8+)
// earliest local, which is the earliest (reeve has no tiered storage), and
// any other value finds the first record whose timestamp is at or after it,
// looking inside the batch (decompressing) so the answer is exact. v0 has
// its own shape: a list of at most max_num_offsets offsets.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

func handleListOffsets(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t, ok := s.parts.topic(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				s.listOffset(req.Version, t, rp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (s *Server) listOffset(version int16, t *Topic, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	meta := t.Partitions[rp.Partition]
	if meta.Leader != s.cluster.LocalNode() {
		sp.ErrorCode = notLeaderCode(meta)
		return
	}
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, meta.LeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return
	}
	p, err := s.parts.get(t, rp.Partition)
	if err != nil {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		return
	}
	l := p.log
	offset, ts := int64(-1), int64(-1)
	switch rp.Timestamp {
	case -2, -4:
		offset = l.LogStartOffset()
	case -1:
		offset = p.highWatermark()
	case -3:
		offset, ts, err = maxTimestamp(l)
	default:
		offset, ts, err = offsetForTime(l, rp.Timestamp)
	}
	if err != nil {
		sp.ErrorCode = errorCode(err)
		s.log.Error("kafka: list offsets", "topic", t.Name, "partition", rp.Partition, "err", err)
		return
	}
	if version == 0 {
		if offset >= 0 && rp.MaxNumOffsets > 0 {
			sp.OldStyleOffsets = []int64{offset}
		}
		return
	}
	sp.Offset, sp.Timestamp = offset, ts
	sp.LeaderEpoch = meta.LeaderEpoch
}

// offsetForTime finds the first record with a timestamp at or after ts:
// the time index finds the batch, then the batch's records are scanned.
// (-1, -1) when no record qualifies.
func offsetForTime(l *storage.Log, ts int64) (int64, int64, error) {
	base, found, err := l.OffsetForTimestamp(ts)
	if err != nil || !found {
		return -1, -1, err
	}
	for off := base; off < l.LogEndOffset(); {
		data, err := l.Read(off, 1)
		if err != nil {
			return -1, -1, err
		}
		h, err := storage.ParseBatchHeader(data)
		if err != nil {
			return -1, -1, err
		}
		gotOff, gotTS := int64(-1), int64(-1)
		err = eachRecord(data[:h.Length], func(o, t int64) bool {
			if t >= ts && o >= off {
				gotOff, gotTS = o, t
				return false
			}
			return true
		})
		if err != nil || gotOff >= 0 {
			return gotOff, gotTS, err
		}
		off = h.LastOffset() + 1
	}
	return -1, -1, nil
}

// maxTimestamp finds the record with the largest timestamp (the first such
// record if several share it) by scanning batch headers, then the batch.
func maxTimestamp(l *storage.Log) (int64, int64, error) {
	best, bestTS := int64(-1), int64(-1)
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			break
		}
		if err != nil {
			return -1, -1, err
		}
		for len(data) >= 61 {
			h, err := storage.ParseBatchHeader(data)
			if err != nil {
				return -1, -1, err
			}
			if h.MaxTimestamp > bestTS {
				bestTS, best = h.MaxTimestamp, h.BaseOffset
			}
			off = h.LastOffset() + 1
			data = data[h.Length:]
		}
	}
	if best < 0 {
		return -1, -1, nil
	}
	data, err := l.Read(best, 1)
	if err != nil {
		return -1, -1, err
	}
	h, _ := storage.ParseBatchHeader(data)
	off := best
	err = eachRecord(data[:h.Length], func(o, t int64) bool {
		if t == bestTS {
			off = o
			return false
		}
		return true
	})
	return off, bestTS, err
}
