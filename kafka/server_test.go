package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// startServer runs a Server on a free loopback port with a memCluster.
func startServer(t testing.TB, mutate ...func(*Config)) (*Server, *memCluster) {
	t.Helper()
	mc := newMemCluster()
	cfg := Config{
		Listen:                   "127.0.0.1:0",
		DataDir:                  t.TempDir(),
		AutoCreateTopics:         true,
		DefaultPartitions:        3,
		DefaultReplicationFactor: 3,
		MaxRequestBytes:          1 << 20,
		Log:                      LogOptions{SegmentBytes: 1 << 20},
	}
	for _, f := range mutate {
		f(&cfg)
	}
	s, err := New(cfg, mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := SplitHostPort(s.Addr().String())
	mc.host, mc.port = host, port
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, mc
}

func newClient(t testing.TB, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Addr().String()), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestProduceFetch_everyCodecRoundTrips(t *testing.T) {
	s, _ := startServer(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "codec-" + name
			prod := newClient(t, s, kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
			ctx := ctxT(t)
			base := time.UnixMilli(1_700_000_000_000)
			var sent []*kgo.Record
			for i := range 500 {
				r := &kgo.Record{
					Key:       []byte("key-" + strconv.Itoa(i%7)),
					Value:     bytes.Repeat([]byte{byte(i)}, 100+i%50),
					Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}},
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				sent = append(sent, r)
			}
			if err := prod.ProduceSync(ctx, sent...).FirstErr(); err != nil {
				t.Fatalf("ProduceSync = %v", err)
			}
			cons := newClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := map[string]*kgo.Record{}
			for len(got) < len(sent) {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("PollFetches = %v", err)
				}
				fs.EachRecord(func(r *kgo.Record) { got[string(r.Headers[0].Value)] = r })
			}
			for i, want := range sent {
				g := got[strconv.Itoa(i)]
				if g == nil || !bytes.Equal(g.Key, want.Key) || !bytes.Equal(g.Value, want.Value) || !g.Timestamp.Equal(want.Timestamp) {
					t.Fatalf("record %d = %+v, want %+v", i, g, want)
				}
			}
		})
	}
}

func TestListOffsets_byTimestampFindsTheRecord(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	prod := newClient(t, s, kgo.DefaultProduceTopic("times"), kgo.ProducerLinger(0))
	base := time.UnixMilli(1_700_000_000_000)
	for batch := range 4 {
		var rs []*kgo.Record
		for i := range 10 {
			rs = append(rs, &kgo.Record{Value: []byte("v"), Timestamp: base.Add(time.Duration(batch*10+i) * time.Second)})
		}
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		ts         int64
		wantOffset int64
	}{
		{"before everything", base.UnixMilli() - 1, 0},
		{"exact first", base.UnixMilli(), 0},
		{"inside a batch", base.Add(15 * time.Second).UnixMilli(), 15},
		{"between records", base.Add(15*time.Second + 500*time.Millisecond).UnixMilli(), 16},
		{"last", base.Add(39 * time.Second).UnixMilli(), 39},
		{"after everything", base.Add(time.Hour).UnixMilli(), -1},
		{"earliest", -2, 0},
		{"latest", -1, 40},
		{"max timestamp", -3, 39},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "times"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp = tt.ts
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, prod)
			if err != nil {
				t.Fatal(err)
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.Offset != tt.wantOffset {
				t.Errorf("ListOffsets(%d) = offset %d code %d, want %d", tt.ts, p.Offset, p.ErrorCode, tt.wantOffset)
			}
		})
	}
}

func TestProduce_notLeaderNamesTheLeader(t *testing.T) {
	s, mc := startServer(t)
	ctx := ctxT(t)
	c := newClient(t, s)
	if _, err := mc.CreateTopic(ctx, TopicSpec{Name: "moved", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	mc.setLeader("moved", 0, 2)
	s.MetadataChanged()
	s.parts.refresh()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 10
	req.Acks = 1
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "moved"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testBatch(t, 3)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.NotLeaderForPartition.Code || p.CurrentLeader.LeaderID != 2 || p.CurrentLeader.LeaderEpoch != 1 {
		t.Errorf("produce to moved partition = %+v, want NOT_LEADER_OR_FOLLOWER naming node 2 epoch 1", p)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 2 {
		t.Errorf("NodeEndpoints = %+v, want node 2", resp.Brokers)
	}
}

// testBatch builds an uncompressed v2 batch of n small records.
func testBatch(t testing.TB, n int) []byte {
	t.Helper()
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value-" + strconv.Itoa(i))}
		body := r.AppendTo(nil)[1:] // AppendTo writes Length as 0; recompute it
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	b := kmsg.RecordBatch{
		Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: recs,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// rawConn speaks the wire format by hand, for input no client would send.
type rawConn struct {
	t testing.TB
	net.Conn
}

func dialRaw(t testing.TB, s *Server) *rawConn {
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c}
}

func (c *rawConn) send(frame []byte) {
	buf := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	if _, err := c.Write(append(buf, frame...)); err != nil {
		c.t.Fatal(err)
	}
}

// request encodes req as a frame with the given correlation id.
func request(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	f := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	f = binary.BigEndian.AppendUint16(f, uint16(version))
	f = binary.BigEndian.AppendUint32(f, uint32(corr))
	f = binary.BigEndian.AppendUint16(f, 4)
	f = append(f, "test"...)
	if req.IsFlexible() {
		f = append(f, 0)
	}
	return req.AppendTo(f)
}

// reply reads one response frame and returns its correlation id and body.
func (c *rawConn) reply(flexibleHeader bool) (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return 0, nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, nil, err
	}
	corr := int32(binary.BigEndian.Uint32(b))
	b = b[4:]
	if flexibleHeader {
		b = b[1:]
	}
	return corr, b, nil
}

// closed reports whether the server closed the connection.
func (c *rawConn) closed() bool {
	_, _, err := c.reply(false)
	return err != nil
}

func TestBadInput_closesOnlyThatConnection(t *testing.T) {
	s, _ := startServer(t)
	healthy := newClient(t, s, kgo.DefaultProduceTopic("healthy"))
	ctx := ctxT(t)
	if err := healthy.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		frame []byte
		raw   []byte // sent as is, without a length prefix
	}{
		{name: "length over the limit", raw: binary.BigEndian.AppendUint32(nil, 2<<20)},
		{name: "negative length", raw: binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{name: "length under the header", raw: []byte{0, 0, 0, 3, 0, 0, 0}},
		{name: "unknown api key", frame: []byte{0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff}},
		{name: "unsupported version", frame: request(kmsg.NewPtrMetadataRequest(), 13, 1)},
		{name: "garbage body", frame: append(request(kmsg.NewPtrMetadataRequest(), 1, 1)[:10], 0xde, 0xad, 0xbe, 0xef, 0xff)},
		{name: "client id past the frame", frame: []byte{0, 3, 0, 1, 0, 0, 0, 1, 0x10, 0x00, 'a'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, s)
			if tt.raw != nil {
				c.Write(tt.raw)
			} else {
				c.send(tt.frame)
			}
			if !c.closed() {
				t.Errorf("connection still open after %s", tt.name)
			}
			// Others are unaffected.
			if err := healthy.ProduceSync(ctx, &kgo.Record{Value: []byte(tt.name)}).FirstErr(); err != nil {
				t.Fatalf("healthy client after %s: %v", tt.name, err)
			}
		})
	}
	t.Run("truncated frame then close", func(t *testing.T) {
		c := dialRaw(t, s)
		c.Write([]byte{0, 0, 0, 50, 0, 3, 0})
		c.Close()
		if err := healthy.ProduceSync(ctx, &kgo.Record{Value: []byte("after truncation")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestApiVersions_tooNewGetsV0AnswerWithRanges(t *testing.T) {
	s, _ := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrApiVersionsRequest()
	c.send(append(request(req, 0, 7)[:2], append([]byte{0, 9}, request(req, 0, 7)[4:]...)...)) // version 9
	corr, body, err := c.reply(false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if corr != 7 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != len(apis) {
		t.Fatalf("ApiVersions v9 = corr %d, %+v", corr, resp)
	}
	// Pipelined requests are answered in order on one connection.
	for i := range 5 {
		c.send(request(kmsg.NewPtrApiVersionsRequest(), 3, int32(100+i)))
	}
	for i := range 5 {
		corr, _, err := c.reply(false)
		if err != nil || corr != int32(100+i) {
			t.Fatalf("pipelined answer %d = corr %d, %v", i, corr, err)
		}
	}
}

func TestProduce_corruptedCRCIsRefusedAndNothingIsWritten(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	c := newClient(t, s, kgo.DefaultProduceTopic("crc"))
	if err := c.ProduceSync(ctx, &kgo.Record{Value: []byte("good")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	batch := testBatch(t, 2)
	batch[len(batch)-1] ^= 0xff
	for _, tt := range []struct {
		name  string
		batch []byte
		want  *kerr.Error
	}{
		{"flipped byte", batch, kerr.CorruptMessage},
		{"magic 1", func() []byte { b := testBatch(t, 1); b[16] = 1; return b }(), kerr.UnsupportedForMessageFormat},
		{"truncated", testBatch(t, 2)[:70], kerr.CorruptMessage},
	} {
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "crc"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = tt.batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != tt.want.Code {
			t.Errorf("%s: produce = %v, want %v", tt.name, kerr.ErrorForCode(code), tt.want)
		}
	}
	offs, err := listEnd(ctx, c, "crc")
	if err != nil || offs != 1 {
		t.Errorf("log end offset after refused produces = %d, %v; want 1", offs, err)
	}
}

func listEnd(ctx context.Context, c *kgo.Client, topic string) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		return 0, err
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		return 0, fmt.Errorf("code %d", p.ErrorCode)
	}
	return p.Offset, nil
}

func TestProduce_v2IsAdvertisedButRefused(t *testing.T) {
	s, _ := startServer(t)
	c := dialRaw(t, s)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "old"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testBatch(t, 1)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	c.send(request(req, 2, 5))
	corr, body, err := c.reply(false)
	if err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(2)
	if err := resp.ReadFrom(body); err != nil || corr != 5 {
		t.Fatalf("produce v2 answer = corr %d, %v", corr, err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Errorf("produce v2 = %v, want UNSUPPORTED_VERSION", kerr.ErrorForCode(code))
	}
}

func TestProduce_batchWhoseOffsetsDoNotMatchItsRecordsIsRefused(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	c := newClient(t, s, kgo.DefaultProduceTopic("deltas"))
	if err := c.ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	b := testBatch(t, 2)
	binary.BigEndian.PutUint32(b[23:], 0) // last offset delta 0 for two records
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "deltas"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = b
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRecord.Code {
		t.Errorf("produce of a batch with a wrong last offset delta = %v, want INVALID_RECORD", kerr.ErrorForCode(code))
	}
	if end, err := listEnd(ctx, c, "deltas"); err != nil || end != 1 {
		t.Errorf("log end after the refused batch = %d, %v; want 1", end, err)
	}
}
