package kafka

// ListOffsets, v0-v8.
//
// Timestamps: -2 earliest (the log start offset), -1 latest (the high
// watermark, the end of what is committed), -3 (v7+) the record with the largest timestamp, -4 (v8+)
// earliest local, which is the earliest (reeve has no tiered storage), and
// any other value finds the first record whose timestamp is at or after it,
// looking inside the batch (decompressing) so the answer is exact. -3 and
// lookups by time decompress one batch, at most to the topic's
// max.message.bytes: a batch that would expand further answers
// CORRUPT_MESSAGE (records.go). v0 has
// its own shape: a list of at most max_num_offsets offsets.
//
// Replica id -2 (Kafka's ListOffsetsRequest.DEBUGGING_REPLICA_ID) reads the
// local replica, as Kafka does: ReplicaManager passes fetchOnlyFromLeader =
// false for it, so a follower answers as well as the leader, and only a node
// that holds no replica of the partition answers NOT_LEADER_OR_FOLLOWER.
// The current leader epoch, if given, is checked against this node's view
// first (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH). Latest is then the
// local log end offset, not the high watermark: Kafka bounds "latest" by an
// isolation level (HW for read_uncommitted, LSO for read_committed) only for
// consumer requests (replica id -1); for any other replica id it passes no
// isolation level and Partition.fetchOffsetForTimestamp answers the log end
// offset. That counts what a follower has appended whether or not it is
// fsynced yet, as Kafka's log end offset does (a follower tells its leader
// it has records only once they are durable, so its LEO can be a batch
// ahead of what the leader knows). The election controller uses this to learn each surviving
// replica's log end (see ReplicaLogEndOffsets). Every other replica id is
// served as a consumer's request: by the leader only, latest being the HW.

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
				s.listOffset(req.Version, req.ReplicaID, t, rp, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// debuggingReplicaID is Kafka's ListOffsetsRequest.DEBUGGING_REPLICA_ID: the
// request reads whichever replica of the partition this node holds.
const debuggingReplicaID = -2

func (s *Server) listOffset(version int16, replica int32, t *Topic, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	meta := t.Partitions[rp.Partition]
	self := s.cluster.LocalNode()
	local := replica == debuggingReplicaID
	switch {
	case local && meta.Leader != self && !containsID(meta.Replicas, self):
		// Kafka: a partition this broker does not host.
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		return
	case !local && meta.Leader != self:
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
		if local {
			offset = l.LogEndOffset() // no isolation bound for a replica's request
		} else {
			offset = p.highWatermark()
		}
	case -3:
		offset, ts, err = maxTimestamp(l, s.maxMessageBytes(t))
	default:
		offset, ts, err = offsetForTime(l, rp.Timestamp, s.maxMessageBytes(t))
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
// the time index finds the batch, then the batch's records are scanned,
// decompressed to at most limit bytes. (-1, -1) when no record qualifies.
func offsetForTime(l *storage.Log, ts int64, limit int) (int64, int64, error) {
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
		err = eachRecord(data[:h.Length], limit, func(o, t int64) bool {
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
// record if several share it) by scanning batch headers, then the batch,
// decompressed to at most limit bytes.
func maxTimestamp(l *storage.Log, limit int) (int64, int64, error) {
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
	err = eachRecord(data[:h.Length], limit, func(o, t int64) bool {
		if t == bestTS {
			off = o
			return false
		}
		return true
	})
	return off, bestTS, err
}
