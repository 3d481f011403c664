package kafka

// Produce, v0-v11 advertised, v3-v11 served.
//
// v3 is the first version that carries v2 record batches, the only format
// reeve stores: v0-v2 requests answer UNSUPPORTED_VERSION on every
// partition (they are advertised only for librdkafka's sake, see api.go),
// and older message formats inside a v3+ request are refused with
// UNSUPPORTED_FOR_MESSAGE_FORMAT. Every batch is checked as Apache Kafka
// checks it (size, magic, CRC-32C, timestamps within the topic's
// message.timestamp.before/after.max.ms under CreateTime) and stored as
// sent, with the base offset and partition leader epoch set here, and on a
// LogAppendTime topic its timestamps, type and CRC (stampLogAppendTime). acks=-1 answers after the batch is
// durable under the log's fsync mode; acks=1 after it is written; acks=0 is
// never answered. NOT_LEADER_OR_FOLLOWER carries the current leader and its
// endpoint from v10 (KIP-951). Batches with a producer id are checked and
// de-duplicated as producers.go explains. Transactions are not supported.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

func handleProduce(s *Server, c *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > 5*time.Minute {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()

	hints := leaderHints{}
	var pending []durableWait
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		t, code := s.produceTopic(ctx, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case req.Version < 3:
				sp.ErrorCode = kerr.UnsupportedVersion.Code
			case req.TransactionID != nil:
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				msg := "reeve does not support transactions; produce without a transactional id"
				sp.ErrorMessage = &msg
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
			case code != 0:
				sp.ErrorCode = code
			default:
				if w, ok := s.producePartition(c, req.Acks, t, rp, &sp, &hints); ok && req.Acks == -1 {
					w.topic, w.partition = len(resp.Topics), len(st.Partitions)
					pending = append(pending, w)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	// acks=all: every partition was appended above, so their fsyncs and
	// replication run at the same time rather than one after another.
	for _, w := range pending {
		err := w.p.log.WaitDurable(ctx, w.last)
		if err == nil {
			err = w.p.waitHW(ctx, w.last, s.cutOff.lostCh())
		}
		if err != nil {
			sp := &resp.Topics[w.topic].Partitions[w.partition]
			sp.ErrorCode, sp.BaseOffset, sp.LogStartOffset = kerr.RequestTimedOut.Code, -1, -1
			if errors.Is(err, errDemoted) || errors.Is(err, errCutOff) {
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			} else if !errors.Is(err, context.DeadlineExceeded) {
				// The log failed: its own Error log said so once.
				sp.ErrorCode = kerr.KafkaStorageError.Code
				msg := fmt.Sprintf("%s-%d: %v", w.p.topic, w.p.index, err)
				sp.ErrorMessage = &msg
				s.log.Debug("kafka: acks=all produce not acknowledged", "topic", w.p.topic, "partition", w.p.index, "err", err)
			}
		}
	}
	if req.Acks == 0 {
		// No answer is due, so an error can only be told by closing the
		// connection: the client then refreshes its metadata (as Kafka does).
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					c.closeAfter = true
				}
			}
		}
		return nil
	}
	if resp.Version >= 10 {
		resp.Brokers = hints.produceEndpoints(s)
	}
	return resp
}

// durableWait is an appended batch an acks=all answer waits for, and where
// its answer is in the response.
type durableWait struct {
	p                *partition
	last             int64
	topic, partition int
}

// produceTopic finds a topic, creating it when auto-creation is on.
func (s *Server) produceTopic(ctx context.Context, name string) (*Topic, int16) {
	if t, ok := s.parts.topic(name); ok {
		return t, 0
	}
	if !s.cfg.AutoCreateTopics {
		return nil, kerr.UnknownTopicOrPartition.Code
	}
	t, err := s.autoCreate(ctx, name)
	if err != nil {
		return nil, autoCreateError(err, kerr.UnknownTopicOrPartition)
	}
	return t, 0
}

// producePartition validates and appends one partition's batches and
// fills its answer; ok reports an append whose durability acks=all awaits.
func (s *Server) producePartition(c *conn, acks int16, t *Topic, rp kmsg.ProduceRequestTopicPartition,
	sp *kmsg.ProduceResponseTopicPartition, hints *leaderHints) (w durableWait, ok bool) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return w, false
	}
	meta := t.Partitions[rp.Partition]
	if meta.Leader != s.cluster.LocalNode() {
		sp.ErrorCode = notLeaderCode(meta)
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = hints.add(meta)
		return w, false
	}
	if !s.cluster.QuorumFresh() {
		// Cut off from the Raft quorum: another leader may be elected
		// without this node hearing of it, so it stops taking writes.
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
		return w, false
	}
	tsp, now := topicTimestampPolicy(t), s.now().UnixMilli()
	if err := checkBatches(rp.Records, s.maxMessageBytes(t), tsp, now); err != nil {
		sp.ErrorCode = errorCode(err)
		msg := fmt.Sprintf("%s-%d: %v", t.Name, rp.Partition, err)
		sp.ErrorMessage = &msg
		s.log.Debug("kafka: produce refused", "topic", t.Name, "partition", rp.Partition, "client_id", c.clientID, "err", err)
		return w, false
	}
	if acks == -1 && len(meta.ISR) < minInsync(t) {
		sp.ErrorCode = kerr.NotEnoughReplicas.Code
		msg := fmt.Sprintf("%s-%d has %d in-sync replica(s) %v; min.insync.replicas is %d", t.Name, rp.Partition, len(meta.ISR), meta.ISR, minInsync(t))
		sp.ErrorMessage = &msg
		return w, false
	}
	p, err := s.parts.get(t, rp.Partition)
	if err != nil {
		sp.ErrorCode = kerr.KafkaStorageError.Code
		s.log.Error("kafka: open partition log", "topic", t.Name, "partition", rp.Partition, "err", err)
		return w, false
	}
	if tsp.logAppendTime {
		// After every check (the CRCs were the producer's) and before the
		// append: the stamped bytes are what the log stores, followers
		// copy and consumers read.
		stampLogAppendTime(rp.Records, now)
	}
	var (
		base, last int64
		dup        bool
	)
	if h, _ := storage.ParseBatchHeader(rp.Records); h.ProducerID >= 0 {
		base, last, dup, err = p.appendIdempotent(rp.Records, h, meta.LeaderEpoch)
	} else {
		base, last, err = p.log.Append(rp.Records, meta.LeaderEpoch)
	}
	var pe *produceError
	switch {
	case errors.As(err, &pe):
		sp.ErrorCode, sp.ErrorMessage = pe.code.Code, &pe.msg
		sp.BaseOffset, sp.LogStartOffset = -1, p.log.LogStartOffset()
		s.log.Debug("kafka: produce refused", "topic", t.Name, "partition", rp.Partition, "client_id", c.clientID, "err", err)
		return w, false
	case errors.Is(err, storage.ErrNoSpace), errors.Is(err, storage.ErrFailed):
		// The storage.Space logs the full disk once, and a failed log its
		// failure; this is per request.
		sp.ErrorCode, sp.BaseOffset, sp.LogStartOffset = kerr.KafkaStorageError.Code, -1, -1
		msg := fmt.Sprintf("%s-%d: %v", t.Name, rp.Partition, err)
		sp.ErrorMessage = &msg
		s.log.Debug("kafka: produce refused", "topic", t.Name, "partition", rp.Partition, "client_id", c.clientID, "err", err)
		return w, false
	case err != nil:
		sp.ErrorCode = errorCode(err)
		s.log.Error("kafka: append", "topic", t.Name, "partition", rp.Partition, "err", err)
		return w, false
	}
	if dup {
		s.log.Debug("kafka: duplicate idempotent batch answered with its original offset", "topic", t.Name,
			"partition", rp.Partition, "client_id", c.clientID, "base_offset", base)
	} else {
		p.grew()
		s.metrics.produced(last-base+1, len(rp.Records))
	}
	p.lead(meta.LeaderEpoch, time.Now())
	p.advanceHW(meta.ISR, meta.Leader)
	sp.BaseOffset = base
	sp.LogAppendTime = -1
	if tsp.logAppendTime && !dup {
		sp.LogAppendTime = now
	}
	sp.LogStartOffset = p.log.LogStartOffset()
	return durableWait{p: p, last: last}, true
}

// checkBatches validates the record batches of one partition's produce;
// limit is the topic's max.message.bytes, which bounds each batch both as
// sent and decompressed; tsp and now (the broker's clock, Unix
// milliseconds) bound the timestamps of a CreateTime topic.
func checkBatches(b []byte, limit int, tsp timestampPolicy, now int64) error {
	all := b
	if len(b) == 0 {
		return fmt.Errorf("%w: no record batch", storage.ErrCorrupt)
	}
	checkTs := timestampCheck(tsp, now)
	for len(b) > 0 {
		if len(b) < 61 {
			return fmt.Errorf("%w: %d trailing bytes are not a record batch", storage.ErrCorrupt, len(b))
		}
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			return err
		}
		if h.Magic != 2 {
			return fmt.Errorf("%w: message format v%d; reeve stores record batch v2 (Kafka 0.11+ clients)", storage.ErrOldMagic, h.Magic)
		}
		if h.Length < 61 || int(h.Length) > len(b) {
			return fmt.Errorf("%w: batch of %d bytes with %d bytes left", storage.ErrCorrupt, h.Length, len(b))
		}
		// From the header alone, before the CRC or any record is read.
		if int(h.Length) > limit {
			return fmt.Errorf("%w: batch of %d bytes; the topic allows %d (max.message.bytes)", kerr.MessageTooLarge, h.Length, limit)
		}
		if _, err := storage.CheckBatch(b[:h.Length]); err != nil {
			return err
		}
		if h.Attributes&0x10 != 0 {
			return errTransactional
		}
		if h.Attributes&0x20 != 0 {
			return fmt.Errorf("%w: control batch; only the broker writes those", kerr.InvalidRecord)
		}
		if h.Attributes&attrLogAppendTime != 0 {
			// As Kafka's LogValidator, whatever the topic's type.
			return fmt.Errorf("%w: the batch says LogAppendTime; only the broker sets that, producers send CreateTime", kerr.InvalidTimestamp)
		}
		// As Kafka's LogValidator: a client's batch holds at least one
		// record and its offset deltas run 0..count-1, else offsets the log
		// assigns would not match the records a consumer finds.
		if h.RecordCount < 1 || h.LastOffsetDelta != h.RecordCount-1 {
			return fmt.Errorf("%w: batch of %d record(s) with last offset delta %d", kerr.InvalidRecord, h.RecordCount, h.LastOffsetDelta)
		}
		err = withRecords(h, b, limit, func(records []byte) error {
			return checkRecords(records, h.RecordCount, h.BaseTimestamp, checkTs)
		})
		if errors.Is(err, errDecompressedTooLarge) {
			return fmt.Errorf("%w: batch of %d bytes decompresses past %d bytes (max.message.bytes)", kerr.MessageTooLarge, h.Length, limit)
		}
		if err != nil {
			return err
		}
		if checkTs != nil {
			// Retention and the time index go by it, so it is held to the
			// same range as the records.
			if err := checkTs(-1, h.MaxTimestamp); err != nil {
				return err
			}
		}
		if h.ProducerID >= 0 {
			if err := checkIdempotent(all, h); err != nil {
				return err
			}
		}
		b = b[h.Length:]
	}
	return nil
}

// timestampCheck returns what checks each record's timestamp (i its index)
// and each batch's max timestamp (i -1) on a CreateTime topic: one outside
// tsp's window around now (the broker's clock, Unix milliseconds) is
// INVALID_TIMESTAMP, as Kafka's LogValidator answers. It returns nil for a
// LogAppendTime topic, whose timestamps the broker sets.
func timestampCheck(tsp timestampPolicy, now int64) func(i int32, ts int64) error {
	if tsp.logAppendTime {
		return nil
	}
	lo, hi := tsp.window(now)
	return func(i int32, ts int64) error {
		if ts == -1 || (ts >= lo && ts <= hi) { // -1: no timestamp, as Kafka's NO_TIMESTAMP
			return nil
		}
		what := "the batch's max timestamp"
		if i >= 0 {
			what = fmt.Sprintf("record %d's timestamp", i)
		}
		return fmt.Errorf("%w: %s %d (%s) is out of range: the topic accepts %d to %d "+
			"(message.timestamp.before.max.ms and message.timestamp.after.max.ms around the broker's clock); "+
			"fix the producer's clock, or set message.timestamp.type=LogAppendTime for producers without one",
			kerr.InvalidTimestamp, what, ts, time.UnixMilli(ts).UTC().Format(time.RFC3339), lo, hi)
	}
}

// checkRecords walks an uncompressed batch's records: each length must fit
// and their offset deltas must count up from 0. checkTs, when set, is
// given each record's timestamp (baseTs plus its delta).
func checkRecords(recs []byte, count int32, baseTs int64, checkTs func(i int32, ts int64) error) error {
	for i := int32(0); i < count; i++ {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || int64(len(recs)-n) < length {
			return fmt.Errorf("%w: record %d has a bad length", kerr.InvalidRecord, i)
		}
		var r kmsg.Record
		if err := r.UnsafeReadFrom(recs[:n+int(length)]); err != nil || r.OffsetDelta != i { // no copies: only read here
			return fmt.Errorf("%w: record %d is malformed or out of order", kerr.InvalidRecord, i)
		}
		if checkTs != nil {
			if err := checkTs(i, baseTs+r.TimestampDelta64); err != nil {
				return err
			}
		}
		recs = recs[n+int(length):]
	}
	if len(recs) != 0 {
		return fmt.Errorf("%w: %d bytes after the last record", kerr.InvalidRecord, len(recs))
	}
	return nil
}

var errTransactional = errors.New("transactional batch; reeve does not support transactions")

// errorCode maps an error to the Kafka code a client understands.
func errorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, storage.ErrOldMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, storage.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, errTransactional):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	case errors.Is(err, storage.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.KafkaStorageError.Code
}
