package kafka

// Fetch, v4-v16.
//
// Session-less: reeve answers every request in full and returns session id
// 0, which tells a KIP-227 client that no session was created, so it keeps
// sending full requests (the v12+ session-less form). Topics are named
// until v12 and identified by topic id from v13. max_wait/min_bytes is a
// long poll that wakes as soon as a fetched partition grows; max_bytes and
// each partition's max_bytes bound the answer, except that the first batch
// of the first partition with data is returned whole, so a consumer always
// makes progress. read_committed reads like read_uncommitted: without
// transactions the last stable offset is the high watermark.
//
// Followers fetch with their node id as replica id (replica_state from
// v15): they read up to the leader's log end, and their fetch offset tells
// the leader where their log ends, which moves the high watermark.
// Consumers read only below the high watermark. Only leaders serve reads.
// With [tls], a fetch as a replica is believed only on a TLS connection
// whose certificate names that replica (nodeClaim): any other gets
// CLUSTER_AUTHORIZATION_FAILED on every partition at once, reads nothing
// and moves neither the follower's log end, nor the ISR, nor the high
// watermark. (Kafka answers a follower fetch without ClusterAction with
// TOPIC_AUTHORIZATION_FAILED; the cluster code says which permission is
// missing: being the node.)

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

func handleFetch(s *Server, c *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.FetchRequest)
	if replica := fetchReplica(req); replica >= 0 && !s.nodeClaim(c, replica, "fetch") {
		return refusedFetch(req)
	}
	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if wait > 5*time.Minute {
		wait = 5 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		resp, bytes, wake := s.fetchOnce(req)
		if bytes >= int(req.MinBytes) || bytes > 0 && req.MinBytes <= 0 || wait <= 0 || len(wake) == 0 {
			return resp
		}
		left := time.Until(deadline)
		if left <= 0 || !waitAny(s.ctx, wake, left) {
			return resp
		}
	}
}

// waitAny waits until one of chans closes (true) or d passes (false).
// Its watchers have ended when it returns: they belong to the request,
// which Close waits for.
func waitAny(ctx context.Context, chans []<-chan struct{}, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	var watchers sync.WaitGroup
	defer watchers.Wait()
	defer cancel()
	woke := make(chan struct{}, 1)
	for _, ch := range chans {
		watchers.Go(func() {
			select {
			case <-ch:
				select {
				case woke <- struct{}{}:
				default:
				}
			case <-ctx.Done():
			}
		})
	}
	select {
	case <-woke:
		return true
	case <-ctx.Done():
		return false
	}
}

// fetchOnce reads what is there now. It returns the response, the record
// bytes in it, and the wake channels of the partitions it read.
func (s *Server) fetchOnce(req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, []<-chan struct{}) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(req.Version)
	resp.SessionID = 0
	// Kafka's fetch.max.bytes: no answer larger than this, whatever a
	// client asks for (the first batch may still exceed it).
	const maxFetchBytes = 55 << 20
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 || maxBytes > maxFetchBytes {
		maxBytes = maxFetchBytes
	}
	total := 0
	replica := fetchReplica(req)
	var wake []<-chan struct{}
	hints := leaderHints{}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *Topic
		var ok bool
		if req.Version >= 13 {
			t, ok = s.parts.topicByID(rt.TopicID)
		} else {
			t, ok = s.parts.topic(rt.Topic)
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			// An empty record set, never a null one: librdkafka rejects a
			// whole response that has a null (size -1) record set.
			sp.RecordBatches = []byte{}
			if !ok {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if req.Version >= 13 {
					sp.ErrorCode = kerr.UnknownTopicID.Code
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			budget := min(int(rp.PartitionMaxBytes), maxBytes-total)
			n, ch := s.fetchPartition(t, replica, rp, budget, total == 0, &sp, hints)
			total += n
			if ch != nil {
				wake = append(wake, ch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Version >= 16 {
		resp.Brokers = hints.fetchEndpoints(s)
	}
	return resp, total, wake
}

// fetchReplica is the node a fetch is made as, or -1 for a consumer.
func fetchReplica(req *kmsg.FetchRequest) int32 {
	if req.Version >= 15 {
		return req.ReplicaState.ID
	}
	return req.ReplicaID
}

// refusedFetch answers CLUSTER_AUTHORIZATION_FAILED for every partition of
// a fetch made as a node the connection may not speak for.
func refusedFetch(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = []byte{}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// fetchPartition fills one partition's answer and returns the bytes read
// and the channel that closes when the partition grows.
func (s *Server) fetchPartition(t *Topic, replica int32, rp kmsg.FetchRequestTopicPartition, budget int, first bool,
	sp *kmsg.FetchResponseTopicPartition, hints leaderHints) (int, <-chan struct{}) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return 0, nil
	}
	meta := t.Partitions[rp.Partition]
	if meta.Leader != s.cluster.LocalNode() {
		sp.ErrorCode = notLeaderCode(meta)
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = hints.add(meta)
		return 0, nil
	}
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, meta.LeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return 0, nil
	}
	p, err := s.parts.get(t, rp.Partition)
	if err != nil {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		s.log.Error("kafka: open partition log", "topic", t.Name, "partition", rp.Partition, "err", err)
		return 0, nil
	}
	self := s.cluster.LocalNode()
	p.lead(meta.LeaderEpoch, time.Now())
	var ch <-chan struct{}
	limit := p.log.LogEndOffset()
	if replica >= 0 {
		// A follower: it reads up to the log end, and its fetch offset is
		// where its own log ends, which may move the HW.
		if !slices.Contains(meta.Replicas, replica) {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			return 0, nil
		}
		ch = p.waitCh() // before reading, so an append after the read wakes us
		if p.followerFetched(replica, rp.FetchOffset, meta.ISR, self, time.Now()) {
			s.replicas.followerCaughtUp()
		}
	} else {
		// A consumer sees only committed records: those below the HW.
		ch = p.hwCh()
		p.advanceHW(meta.ISR, self)
		limit = p.highWatermark()
	}
	hw := p.highWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hw, hw, p.log.LogStartOffset()
	sp.PreferredReadReplica = -1
	if rp.FetchOffset >= limit && rp.FetchOffset <= p.log.LogEndOffset() {
		return 0, ch
	}
	data, err := p.log.Read(rp.FetchOffset, max(budget, 1))
	switch {
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, nil
	case err != nil:
		sp.ErrorCode = errorCode(err)
		s.log.Error("kafka: read", "topic", t.Name, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
		return 0, nil
	}
	data = batchesBelow(data, limit)
	// Only the first partition with data may exceed the budget.
	if len(data) == 0 || len(data) > budget && !first {
		return 0, ch
	}
	sp.RecordBatches = data
	return len(data), ch
}

// batchesBelow keeps the leading whole batches of data whose last offset is
// below limit.
func batchesBelow(data []byte, limit int64) []byte {
	n := 0
	for n+61 <= len(data) {
		h, err := storage.ParseBatchHeader(data[n:])
		if err != nil || h.LastOffset() >= limit || n+int(h.Length) > len(data) {
			break
		}
		n += int(h.Length)
	}
	return data[:n]
}

// checkLeaderEpoch applies KIP-320: a client that knows a newer epoch than
// this leader is told UNKNOWN_LEADER_EPOCH (this node is behind); one with
// an older epoch is FENCED_LEADER_EPOCH. -1 skips the check.
func checkLeaderEpoch(client, current int32) int16 {
	switch {
	case client < 0 || client == current:
		return 0
	case client > current:
		return kerr.UnknownLeaderEpoch.Code
	}
	return kerr.FencedLeaderEpoch.Code
}
