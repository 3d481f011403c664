package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// producerBatch builds an uncompressed v2 batch of n records as an
// idempotent producer sends it; record i's value is "<tag>-<i>".
func producerBatch(t testing.TB, id int64, epoch int16, seq int32, n int, tag string) []byte {
	t.Helper()
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(tag + "-" + strconv.Itoa(i))}
		body := r.AppendTo(nil)[1:] // AppendTo writes Length as 0; recompute it
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: id, ProducerEpoch: epoch, FirstSequence: seq, NumRecords: int32(n), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// produceRaw sends one partition's records with acks=all and returns the
// partition's answer.
func produceRaw(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

func header(t testing.TB, id int64, epoch int16, seq int32, n int) storage.BatchHeader {
	h, err := storage.ParseBatchHeader(producerBatch(t, id, epoch, seq, n, "x"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestProducerState_check(t *testing.T) {
	const id = 7
	// Six batches of 10 records of epoch 3, sequences 0-59 at offsets
	// 100-159: the state remembers the last five (sequences 10-59).
	build := func() *producerState {
		ps := &producerState{byID: map[int64]*producerEntry{}}
		for i := range 6 {
			ps.observe(header(t, id, 3, int32(10*i), 10), int64(100+10*i), time.Now())
		}
		return ps
	}
	tests := []struct {
		name    string
		h       storage.BatchHeader
		dupBase int64 // -1: not a duplicate
		want    *kerr.Error
	}{
		{"next in sequence", header(t, id, 3, 60, 5), -1, nil},
		{"retry of the newest", header(t, id, 3, 50, 10), 150, nil},
		{"retry of the oldest remembered", header(t, id, 3, 10, 10), 110, nil},
		{"retry older than five batches", header(t, id, 3, 0, 10), -1, kerr.OutOfOrderSequenceNumber},
		{"same start, other length", header(t, id, 3, 50, 5), -1, kerr.OutOfOrderSequenceNumber},
		{"gap", header(t, id, 3, 61, 1), -1, kerr.OutOfOrderSequenceNumber},
		{"older epoch", header(t, id, 2, 60, 1), -1, kerr.InvalidProducerEpoch},
		{"older epoch with a remembered range", header(t, id, 2, 50, 10), -1, kerr.InvalidProducerEpoch},
		{"newer epoch at 0", header(t, id, 4, 0, 3), -1, nil},
		{"newer epoch not at 0", header(t, id, 4, 60, 1), -1, kerr.OutOfOrderSequenceNumber},
		{"unknown producer at any sequence", header(t, id+1, 0, 12345, 1), -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dup, err := build().check(tt.h)
			var ke *kerr.Error
			errors.As(err, &ke)
			if ke != tt.want || (err != nil && ke == nil) {
				t.Fatalf("check(epoch %d seq %d) = %v, want %v", tt.h.ProducerEpoch, tt.h.BaseSequence, err, tt.want)
			}
			switch {
			case tt.dupBase < 0 && dup != nil:
				t.Errorf("check(seq %d) = duplicate of %+v, want none", tt.h.BaseSequence, *dup)
			case tt.dupBase >= 0 && (dup == nil || dup.baseOffset != tt.dupBase || dup.lastOffset != tt.dupBase+9):
				t.Errorf("check(seq %d) = duplicate %v, want the batch at %d", tt.h.BaseSequence, dup, tt.dupBase)
			}
		})
	}
	t.Run("a new epoch forgets the old batches", func(t *testing.T) {
		ps := build()
		ps.observe(header(t, id, 4, 0, 3), 160, time.Now())
		if dup, err := ps.check(header(t, id, 4, 0, 3)); dup == nil || err != nil {
			t.Errorf("retry in the new epoch = %v, %v; want a duplicate", dup, err)
		}
		if _, err := ps.check(header(t, id, 4, 50, 10)); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
			t.Errorf("old epoch's range in the new epoch = %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", err)
		}
	})
}

func TestProducerState_sequencesWrapAtMaxInt32(t *testing.T) {
	ps := &producerState{byID: map[int64]*producerEntry{}}
	// Records MaxInt32-1, MaxInt32 and 0.
	h := header(t, 1, 0, math.MaxInt32-1, 3)
	if got := lastSequence(h); got != 0 {
		t.Fatalf("lastSequence(base MaxInt32-1, 3 records) = %d, want 0", got)
	}
	ps.observe(h, 0, time.Now())
	if dup, err := ps.check(header(t, 1, 0, 1, 1)); dup != nil || err != nil {
		t.Errorf("sequence 1 after a batch ending at 0 = %v, %v; want accepted", dup, err)
	}
	if dup, err := ps.check(header(t, 1, 0, math.MaxInt32-1, 3)); dup == nil || err != nil {
		t.Errorf("retry of the wrapping batch = %v, %v; want a duplicate", dup, err)
	}
	ps.observe(header(t, 2, 0, math.MaxInt32, 1), 3, time.Now())
	if dup, err := ps.check(header(t, 2, 0, 0, 1)); dup != nil || err != nil {
		t.Errorf("sequence 0 after MaxInt32 = %v, %v; want accepted", dup, err)
	}
}

func TestProducerState_expire(t *testing.T) {
	ps := &producerState{byID: map[int64]*producerEntry{}}
	now := time.Now()
	ps.observe(header(t, 1, 0, 0, 1), 0, now.Add(-25*time.Hour))
	ps.observe(header(t, 2, 0, 0, 1), 1, now)
	if n := ps.expire(now.Add(-producerExpiry)); n != 1 || len(ps.byID) != 1 || ps.byID[2] == nil {
		t.Errorf("expire() forgot %d, left %v; want producer 1 forgotten, 2 kept", n, ps.byID)
	}
}

func TestInitProducerID_freshIDsAndRefusals(t *testing.T) {
	s, _ := startServer(t)
	txn, empty := "txn", ""
	tests := []struct {
		name     string
		version  int16
		txnID    *string
		id       int64
		epoch    int16
		wantCode *kerr.Error
	}{
		{"v0", 0, nil, -1, -1, nil},
		{"v1", 1, nil, -1, -1, nil},
		{"v2 flexible", 2, nil, -1, -1, nil},
		{"v3", 3, nil, -1, -1, nil},
		{"v4", 4, nil, -1, -1, nil},
		{"v4 bump of a known id gets a fresh id", 4, nil, 1, 0, nil},
		{"v3 id without epoch", 3, nil, 5, -1, kerr.InvalidRequest},
		{"v3 epoch without id", 3, nil, -1, 2, kerr.InvalidRequest},
		{"transactional", 4, &txn, -1, -1, kerr.TransactionalIDAuthorizationFailed},
		{"transactional v0", 0, &txn, -1, -1, kerr.TransactionalIDAuthorizationFailed},
		{"empty transactional id", 4, &empty, -1, -1, kerr.InvalidRequest},
	}
	seen := map[int64]bool{}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s)
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionalID, req.TransactionTimeoutMillis = tt.txnID, 60000
			req.ProducerID, req.ProducerEpoch = tt.id, tt.epoch
			c.send(request(req, tt.version, int32(i)))
			corr, body, err := c.reply(tt.version >= 2)
			if err != nil || corr != int32(i) {
				t.Fatalf("InitProducerId v%d: corr %d, %v", tt.version, corr, err)
			}
			resp := kmsg.NewPtrInitProducerIDResponse()
			resp.SetVersion(tt.version)
			if err := resp.ReadFrom(body); err != nil {
				t.Fatal(err)
			}
			if tt.wantCode != nil {
				if resp.ErrorCode != tt.wantCode.Code || resp.ProducerID != -1 || resp.ProducerEpoch != -1 {
					t.Errorf("InitProducerId = code %v id %d epoch %d, want %v, -1, -1",
						kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch, tt.wantCode)
				}
				return
			}
			if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
				t.Errorf("InitProducerId = code %v id %d epoch %d, want a new id with epoch 0",
					kerr.ErrorForCode(resp.ErrorCode), resp.ProducerID, resp.ProducerEpoch)
			}
			seen[resp.ProducerID] = true
		})
	}
}

func TestIdempotentProduce_kgoDefaultProducerNoDuplicatesInOrder(t *testing.T) {
	s, mc := startServer(t)
	ctx := ctxT(t)
	if _, err := mc.CreateTopic(ctx, TopicSpec{Name: "idem", Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, s, kgo.DefaultProduceTopic("idem"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(4<<10)) // many small batches, several in flight
	const n = 10_000
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range n {
		wg.Add(1)
		r := &kgo.Record{Partition: int32(i % 4), Value: []byte(strconv.Itoa(i))}
		prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, the first: %v", len(errs), errs[0])
	}

	cons := newClient(t, s, kgo.ConsumeTopics("idem"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := make(map[int]bool, n)
	last := map[int32]int{0: -1, 1: -1, 2: -1, 3: -1}
	producers := map[int64]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches after %d records = %v", len(seen), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, _ := strconv.Atoi(string(r.Value))
			if seen[v] {
				t.Fatalf("record %d read twice (partition %d offset %d)", v, r.Partition, r.Offset)
			}
			if v%4 != int(r.Partition) || v <= last[r.Partition] {
				t.Fatalf("record %d at partition %d offset %d follows %d", v, r.Partition, r.Offset, last[r.Partition])
			}
			seen[v], last[r.Partition] = true, v
			producers[r.ProducerID] = true
		})
	}
	if len(producers) != 1 || producers[-1] {
		t.Errorf("records came from producer ids %v, want one idempotent producer", producers)
	}
	for p := range int32(4) {
		if end := s.partitionEnd(t, "idem", p); end != n/4 {
			t.Errorf("partition %d ends at %d, want %d", p, end, n/4)
		}
	}
}

// partitionEnd returns the log end offset of a local partition.
func (s *Server) partitionEnd(t testing.TB, topic string, index int32) int64 {
	t.Helper()
	tp, ok := s.parts.topic(topic)
	if !ok {
		t.Fatalf("no topic %q", topic)
	}
	p, err := s.parts.get(tp, index)
	if err != nil {
		t.Fatal(err)
	}
	return p.log.LogEndOffset()
}

// cutProxy forwards Kafka connections to a server and, when armed, lets
// the next produce request through but closes the connection when its
// answer comes back, before the client sees it: the client cannot know
// whether the batch was written and must retry it.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	armed bool
	cuts  []batchID // the batches whose answer was dropped
	sent  []batchID // every produced batch, in the order the proxy saw them
	conns map[net.Conn]bool
}

// batchID names an idempotent batch.
type batchID struct {
	partition int32
	producer  int64
	epoch     int16
	seq       int32
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) arm() {
	p.mu.Lock()
	p.armed = true
	p.mu.Unlock()
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		cut := make(chan int32, 1) // correlation id whose answer is dropped
		go p.upstream(client, server, cut)
		go p.downstream(server, client, cut)
	}
}

// readFrame reads one size-prefixed frame.
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, 4+binary.BigEndian.Uint32(size[:]))
	copy(b, size[:])
	_, err := io.ReadFull(r, b[4:])
	return b, err
}

// upstream copies requests to the server, noting produced batches and
// arming a cut on the first produce after arm.
func (p *cutProxy) upstream(client, server net.Conn, cut chan<- int32) {
	defer server.Close()
	br := bufio.NewReader(client)
	for {
		f, err := readFrame(br)
		if err != nil {
			return
		}
		if key := int16(binary.BigEndian.Uint16(f[4:])); key == int16(kmsg.Produce) {
			ids := producedBatches(f[4:])
			p.mu.Lock()
			p.sent = append(p.sent, ids...)
			if p.armed && len(ids) > 0 {
				p.armed = false
				p.cuts = append(p.cuts, ids...)
				cut <- int32(binary.BigEndian.Uint32(f[8:]))
			}
			p.mu.Unlock()
		}
		if _, err := server.Write(f); err != nil {
			return
		}
	}
}

// downstream copies answers to the client until the one to drop arrives;
// then it closes both sides.
func (p *cutProxy) downstream(server, client net.Conn, cut <-chan int32) {
	defer client.Close()
	defer server.Close()
	drop := int32(-1)
	for {
		f, err := readFrame(server)
		if err != nil {
			return
		}
		select {
		case drop = <-cut:
		default:
		}
		if int32(binary.BigEndian.Uint32(f[4:])) == drop {
			return
		}
		if _, err := client.Write(f); err != nil {
			return
		}
	}
}

// producedBatches decodes a produce request frame (without its size) and
// names the idempotent batches in it.
func producedBatches(frame []byte) []batchID {
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10+max(idLen, 0):]
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil
	}
	var ids []batchID
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if h, err := storage.ParseBatchHeader(rp.Records); err == nil && h.ProducerID >= 0 {
				ids = append(ids, batchID{rp.Partition, h.ProducerID, h.ProducerEpoch, h.BaseSequence})
			}
		}
	}
	return ids
}

func TestIdempotentProduce_retryAfterDroppedConnectionLeavesNoDuplicates(t *testing.T) {
	mc := newMemCluster()
	s, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AutoCreateTopics: true,
		DefaultPartitions: 1, MaxRequestBytes: 1 << 20}, mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, s.Addr().String())
	mc.host, mc.port, _ = SplitHostPort(proxy.ln.Addr().String()) // clients reach the broker through the proxy
	go s.Serve()
	t.Cleanup(func() { s.Close() })

	ctx := ctxT(t)
	if _, err := mc.CreateTopic(ctx, TopicSpec{Name: "cut", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.DefaultProduceTopic("cut"),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.ProducerLinger(0), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	const rounds, perRound = 5, 20
	for round := range rounds {
		proxy.arm()
		var rs []*kgo.Record
		for i := range perRound {
			rs = append(rs, &kgo.Record{Value: []byte(fmt.Sprintf("%d-%d", round, i))})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("round %d: ProduceSync = %v", round, err)
		}
	}

	proxy.mu.Lock()
	cuts, sent := append([]batchID(nil), proxy.cuts...), append([]batchID(nil), proxy.sent...)
	proxy.mu.Unlock()
	if len(cuts) != rounds {
		t.Fatalf("the proxy cut %d produce answers, want %d", len(cuts), rounds)
	}
	// Each cut batch was sent again with the same producer, epoch and
	// sequence: the broker had to recognise the retry.
	for _, c := range cuts {
		n := 0
		for _, b := range sent {
			if b == c {
				n++
			}
		}
		if n < 2 {
			t.Errorf("batch %+v was sent %d times; the test wants kgo to retry it", c, n)
		}
	}

	if end := s.partitionEnd(t, "cut", 0); end != rounds*perRound {
		t.Errorf("log end offset = %d, want %d (each record once)", end, rounds*perRound)
	}
	cons := newClient(t, s, kgo.ConsumeTopics("cut"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < rounds*perRound {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches = %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if want := fmt.Sprintf("%d-%d", i/perRound, i%perRound); v != want {
			t.Fatalf("record at offset %d = %q, want %q", i, v, want)
		}
	}
}

// restartable runs Servers one after another on one data directory and
// one memCluster, as a broker restarting with its Raft state.
type restartable struct {
	t   *testing.T
	mc  *memCluster
	cfg Config
	s   *Server
	cl  *kgo.Client
}

func (r *restartable) start() {
	r.t.Helper()
	s, err := New(r.cfg, r.mc)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		r.t.Fatal(err)
	}
	r.mc.host, r.mc.port, _ = SplitHostPort(s.Addr().String())
	go s.Serve()
	r.s = s
	r.cl, err = kgo.NewClient(kgo.SeedBrokers(s.Addr().String()))
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *restartable) stop() {
	r.cl.Close()
	if err := r.s.Close(); err != nil {
		r.t.Fatal(err)
	}
}

func TestIdempotentProduce_restartedBrokerStillRejectsReplayedSequence(t *testing.T) {
	r := &restartable{t: t, mc: newMemCluster(), cfg: Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		MaxRequestBytes: 1 << 20, Log: LogOptions{SegmentBytes: 600}}} // a few batches a segment
	ctx := ctxT(t)
	if _, err := r.mc.CreateTopic(ctx, TopicSpec{Name: "replay", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	r.start()
	defer func() { r.stop() }()

	const pid = 4242
	// Eight batches of 3 records: sequences 0-23 at offsets 0-23, with a
	// non-idempotent batch in the middle of them (offsets 12-13).
	var batches [][]byte
	for i := range 8 {
		b := producerBatch(t, pid, 0, int32(3*i), 3, "b"+strconv.Itoa(i))
		batches = append(batches, b)
		if i == 4 {
			if p := produceRaw(ctx, t, r.cl, "replay", 0, testBatch(t, 2)); p.ErrorCode != 0 {
				t.Fatalf("plain produce = %v", kerr.ErrorForCode(p.ErrorCode))
			}
		}
		p := produceRaw(ctx, t, r.cl, "replay", 0, append([]byte(nil), b...))
		if p.ErrorCode != 0 {
			t.Fatalf("batch %d = %v", i, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	const end = 8*3 + 2
	offsetOf := func(i int) int64 {
		if i >= 4 {
			return int64(3*i + 2)
		}
		return int64(3 * i)
	}

	r.stop()
	r.start()
	if got := r.s.partitionEnd(t, "replay", 0); got != end {
		t.Fatalf("log end offset after restart = %d, want %d", got, end)
	}
	for _, i := range []int{7, 5, 3} { // the newest, and the oldest of the five remembered
		p := produceRaw(ctx, t, r.cl, "replay", 0, append([]byte(nil), batches[i]...))
		if p.ErrorCode != 0 || p.BaseOffset != offsetOf(i) {
			t.Errorf("replayed batch %d after restart = %v at %d, want NONE at its original offset %d",
				i, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, offsetOf(i))
		}
	}
	if got := r.s.partitionEnd(t, "replay", 0); got != end {
		t.Fatalf("log end offset after replays = %d, want %d (nothing appended)", got, end)
	}

	tests := []struct {
		name  string
		batch []byte
		want  *kerr.Error
	}{
		{"older than the five remembered", batches[2], kerr.OutOfOrderSequenceNumber},
		{"sequence gap", producerBatch(t, pid, 0, 25, 1, "gap"), kerr.OutOfOrderSequenceNumber},
		{"new epoch not at 0", producerBatch(t, pid, 1, 24, 1, "e1"), kerr.OutOfOrderSequenceNumber},
		{"next in sequence", producerBatch(t, pid, 0, 24, 2, "next"), nil},
		{"new epoch at 0", producerBatch(t, pid, 1, 0, 1, "e1"), nil},
		{"old epoch after the new one", producerBatch(t, pid, 0, 26, 1, "old"), kerr.InvalidProducerEpoch},
		{"unknown producer at any sequence", producerBatch(t, pid+1, 0, 77, 1, "other"), nil},
		{"negative sequence", producerBatch(t, pid+2, 0, -1, 1, "neg"), kerr.InvalidRecord},
		{"two batches", append(producerBatch(t, pid+3, 0, 0, 1, "a"), producerBatch(t, pid+3, 0, 1, 1, "b")...), kerr.InvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.s.partitionEnd(t, "replay", 0)
			p := produceRaw(ctx, t, r.cl, "replay", 0, append([]byte(nil), tt.batch...))
			grew := r.s.partitionEnd(t, "replay", 0) != before
			switch {
			case tt.want == nil && (p.ErrorCode != 0 || p.BaseOffset != before || !grew):
				t.Errorf("produce = %v at %d, want NONE at %d", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, before)
			case tt.want != nil && (p.ErrorCode != tt.want.Code || grew || p.ErrorMessage == nil):
				t.Errorf("produce = %v (%v), log grew %v; want %v and nothing appended",
					kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage, grew, tt.want)
			}
		})
	}
}

func TestIdempotentProduce_concurrentRetriesAppendOnce(t *testing.T) {
	s, mc := startServer(t)
	ctx := ctxT(t)
	if _, err := mc.CreateTopic(ctx, TopicSpec{Name: "race", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	const conns, batches = 8, 50
	var rp0 kmsg.ProduceResponseTopicPartition
	var cs []*rawConn
	for range conns {
		cs = append(cs, dialRaw(t, s))
	}
	// Every connection sends the same 50 batches of one producer, all
	// connections each batch at the same time; each batch must be written
	// once, whoever gets there first, and all must be answered its offset.
	send := func(c *rawConn, i int) (kmsg.ProduceResponseTopicPartition, error) {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "race"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = producerBatch(t, 99, 0, int32(2*i), 2, strconv.Itoa(i))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		f := request(req, 8, int32(i))
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...)); err != nil {
			return rp0, err
		}
		_, body, err := c.reply(false)
		if err != nil {
			return rp0, err
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(8)
		if err := resp.ReadFrom(body); err != nil {
			return rp0, err
		}
		return resp.Topics[0].Partitions[0], nil
	}
	offsets := make([][]int64, conns)
	for i := range batches {
		var wg sync.WaitGroup
		for k, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := send(c, i)
				if err != nil || p.ErrorCode != 0 {
					t.Errorf("connection %d batch %d = %v, %v", k, i, kerr.ErrorForCode(p.ErrorCode), err)
					return
				}
				offsets[k] = append(offsets[k], p.BaseOffset)
			}()
		}
		wg.Wait()
	}
	for k := range conns {
		for i, off := range offsets[k] {
			if off != int64(2*i) {
				t.Fatalf("connection %d batch %d answered offset %d, want %d", k, i, off, 2*i)
			}
		}
	}
	if end := s.partitionEnd(t, "race", 0); end != 2*batches {
		t.Errorf("log end offset = %d, want %d", end, 2*batches)
	}
}
