package kafka

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// Idempotent producers.
//
// A producer that has a producer id (InitProducerId) numbers the records it
// sends to each partition: a batch carries its producer id and epoch and
// the sequence number of its first record. The partition leader keeps, per
// producer id, the epoch and the last five batches it appended, and judges
// each new batch as Apache Kafka's ProducerStateManager and
// ProducerAppendInfo do for a client append:
//
//   - a batch with the producer's current epoch and the same first and last
//     sequence as one of the five is a retry of a batch already written: it
//     is answered with NONE and the base offset of the original, and not
//     appended again (Kafka 1.1 and later; older brokers answered
//     DUPLICATE_SEQUENCE_NUMBER);
//   - an epoch older than the producer's is refused with
//     INVALID_PRODUCER_EPOCH (what Kafka answers on Produce since 2.7;
//     PRODUCER_FENCED is for the transaction coordinator's APIs);
//   - a newer epoch must start at sequence 0, and the current epoch must go
//     on at the last sequence + 1 (wrapping from MaxInt32 to 0); anything
//     else is OUT_OF_ORDER_SEQUENCE_NUMBER;
//   - a producer id the partition does not know is accepted at any sequence
//     (Kafka 2.5 and later, KIP-360: its state may have been forgotten by
//     retention or expiry, and UNKNOWN_PRODUCER_ID only made clients reset).
//
// Five batches is Kafka's NUM_BATCHES_TO_RETAIN, which is why producers may
// keep at most five requests in flight per connection.
//
// The check and the append are one step under the partition's producer
// lock, so two connections retrying the same batch at once append it once.
//
// # Restart
//
// The state is rebuilt from the log when it is first needed: by the first
// idempotent produce a partition gets after it is opened, or after this
// node leads it again (a follower keeps no producer state: the leader's
// appends reach it verbatim). The rebuild starts from the newest usable
// producer-state snapshot (producer_snapshot.go: one is written at every
// segment roll and at Close) and reads the batch headers after it
// (storage.Log.ScanHeaders) without sequence checks, as Kafka replays a
// log after its snapshot. With no usable snapshot it reads every batch
// header of the retained log. A producer whose batches retention has
// deleted is forgotten.
//
// # Expiry
//
// A producer not seen for producerExpiry (Kafka's producer.id.expiration.ms,
// one day) is forgotten. Unlike Kafka, the age is measured with the
// broker's clock (the time of the append; for a batch a rebuild read from
// the log, the time of the rebuild), never with batch timestamps: edge
// producers often have no real-time clock. A snapshot keeps the last-seen
// times, so a restart does not make idle producers young again, and one
// idle for producerExpiry is not loaded.

const (
	// producerBatches is how many recent batches a partition remembers per
	// producer (Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN).
	producerBatches = 5
	// producerExpiry forgets a producer that has not produced to a
	// partition for this long (Kafka's producer.id.expiration.ms).
	producerExpiry = 24 * time.Hour
	// controlBatch is the attributes bit of a transaction marker batch.
	controlBatch = 0x20
)

// batchMeta is what a partition remembers of one idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

// producerEntry is one producer id's state on one partition.
type producerEntry struct {
	epoch    int16
	batches  [producerBatches]batchMeta // a ring; the newest is at (head+n-1)%len
	head, n  int
	lastSeen time.Time
}

func (e *producerEntry) newest() batchMeta {
	return e.batches[(e.head+e.n-1)%producerBatches]
}

// add remembers a batch, forgetting the oldest of five.
func (e *producerEntry) add(b batchMeta) {
	if e.n == producerBatches {
		e.batches[e.head] = b
		e.head = (e.head + 1) % producerBatches
		return
	}
	e.batches[(e.head+e.n)%producerBatches] = b
	e.n++
}

// find returns the remembered batch with exactly this sequence range
// (Kafka's ProducerStateEntry.batchWithSequenceRange).
func (e *producerEntry) find(first, last int32) (batchMeta, bool) {
	for i := range e.n {
		if b := e.batches[(e.head+i)%producerBatches]; b.firstSeq == first && b.lastSeq == last {
			return b, true
		}
	}
	return batchMeta{}, false
}

// producerState is the idempotent producers of one partition.
type producerState struct {
	mu     sync.Mutex
	loaded bool // byID has been rebuilt from the log
	byID   map[int64]*producerEntry

	// snapMu guards the roll snapshots (producer_snapshot.go): the roll
	// offsets not yet snapshotted, in order, the running writer's done
	// channel (nil when none runs), and whether the log is closing. It is
	// never held while the log is called.
	snapMu     sync.Mutex
	snapWant   []int64
	snapDone   chan struct{}
	snapClosed bool
}

// lastSequence is the sequence of a batch's last record: sequences count
// from 0 to MaxInt32 and wrap to 0 (Kafka's
// DefaultRecordBatch.incrementSequence).
func lastSequence(h storage.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// inSequence reports whether next may follow last.
func inSequence(last, next int32) bool {
	return int64(next) == int64(last)+1 || (next == 0 && last == math.MaxInt32)
}

// produceError is a batch refused for its producer fields: the code the
// client gets and a message saying why.
type produceError struct {
	code *kerr.Error
	msg  string
}

func (e *produceError) Error() string { return e.msg }
func (e *produceError) Unwrap() error { return e.code }

func refuse(code *kerr.Error, format string, args ...any) error {
	return &produceError{code: code, msg: fmt.Sprintf(format, args...)}
}

// check judges an idempotent batch against the state: a duplicate of a
// remembered batch (dup set), a batch to append (nil), or a refusal. The
// caller holds mu.
func (ps *producerState) check(h storage.BatchHeader) (dup *batchMeta, err error) {
	e, ok := ps.byID[h.ProducerID]
	if !ok {
		return nil, nil
	}
	last := lastSequence(h)
	if h.ProducerEpoch == e.epoch {
		if b, ok := e.find(h.BaseSequence, last); ok {
			return &b, nil
		}
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return nil, refuse(kerr.InvalidProducerEpoch,
			"producer %d: epoch %d is older than the epoch %d this partition has seen; a newer instance of this producer took over",
			h.ProducerID, h.ProducerEpoch, e.epoch)
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return nil, refuse(kerr.OutOfOrderSequenceNumber,
				"producer %d: a new epoch %d must start at sequence 0, got %d", h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
	default:
		if n := e.newest(); !inSequence(n.lastSeq, h.BaseSequence) {
			return nil, refuse(kerr.OutOfOrderSequenceNumber,
				"producer %d epoch %d: sequence %d does not follow the last written sequence %d",
				h.ProducerID, h.ProducerEpoch, h.BaseSequence, n.lastSeq)
		}
	}
	return nil, nil
}

// observe records an appended batch whose first record got offset base.
// A new epoch starts afresh. The caller holds mu (or owns ps).
func (ps *producerState) observe(h storage.BatchHeader, base int64, now time.Time) {
	e, ok := ps.byID[h.ProducerID]
	if !ok {
		e = &producerEntry{epoch: h.ProducerEpoch}
		ps.byID[h.ProducerID] = e
	}
	if e.epoch != h.ProducerEpoch {
		*e = producerEntry{epoch: h.ProducerEpoch}
	}
	e.add(batchMeta{
		firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		baseOffset: base, lastOffset: base + int64(h.LastOffsetDelta),
	})
	e.lastSeen = now
}

// load rebuilds the state from the log once. The caller holds mu.
func (ps *producerState) load(p *partition) error {
	if ps.loaded {
		return nil
	}
	start := time.Now()
	r, err := rebuildProducers(p.log, p.logger, p.log.LogEndOffset(), start)
	if err != nil {
		return fmt.Errorf("rebuild producer state of %s-%d: %w", p.topic, p.index, err)
	}
	ps.byID, ps.loaded = r.byID, true
	if len(r.byID) > 0 || time.Since(start) > time.Second {
		p.logger.Info("kafka: rebuilt idempotent producer state", "topic", p.topic, "partition", p.index,
			"producers", len(r.byID), "snapshot", r.snapshot, "batches_read", r.batches,
			"took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// expire forgets producers not seen since before cutoff and reports how
// many it forgot.
func (ps *producerState) expire(cutoff time.Time) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	n := 0
	for id, e := range ps.byID {
		if e.lastSeen.Before(cutoff) {
			delete(ps.byID, id)
			n++
		}
	}
	return n
}

// appendIdempotent appends one batch of an idempotent producer (header h,
// already checked) unless it is refused or a duplicate, in which case
// nothing is written and base and last are the original's offsets.
func (p *partition) appendIdempotent(batch []byte, h storage.BatchHeader, leaderEpoch int32) (base, last int64, dup bool, err error) {
	ps := &p.producers
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err := ps.load(p); err != nil {
		return -1, -1, false, err
	}
	d, err := ps.check(h)
	if err != nil {
		return -1, -1, false, err
	}
	if d != nil {
		return d.baseOffset, d.lastOffset, true, nil
	}
	base, last, err = p.log.Append(batch, leaderEpoch)
	if err != nil {
		return -1, -1, false, err
	}
	ps.observe(h, base, time.Now())
	return base, last, false, nil
}

// checkIdempotent applies the rules Kafka's LogValidator and
// ProduceRequest.validateRecords apply to a batch with a producer id: the
// partition's records are exactly that one batch, and its epoch and
// sequence are not negative.
func checkIdempotent(records []byte, h storage.BatchHeader) error {
	switch {
	case int(h.Length) != len(records):
		return refuse(kerr.InvalidRecord, "producer %d: an idempotent produce carries exactly one record batch per partition", h.ProducerID)
	case h.BaseSequence < 0:
		return refuse(kerr.InvalidRecord, "producer %d: invalid base sequence %d", h.ProducerID, h.BaseSequence)
	case h.ProducerEpoch < 0:
		return refuse(kerr.InvalidRecord, "producer %d: invalid producer epoch %d", h.ProducerID, h.ProducerEpoch)
	}
	return nil
}

// forgetProducers drops the producer state, to be rebuilt from the log
// when this node next takes an idempotent produce: after a truncation, or
// while following, when the leader's appends do not pass through here.
// Snapshots above the log end offset (a truncation left them) are removed;
// a rebuild would pass over them anyway.
func (p *partition) forgetProducers() {
	ps := &p.producers
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.loaded, ps.byID = false, nil
	pruneSnapshots(p.log, math.MaxInt)
}
