package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/internal/testpki"
)

// testClock is a settable broker clock (Config.Log.Now). It starts at the
// real time, so the segment files' modification times, which storage
// reads as when they were last written, match it.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// createTopic creates a one-partition topic with the given settings and
// returns the code CreateTopics answered.
func createTopic(t *testing.T, s *Server, cl *kgo.Client, name string, cfg map[string]string) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
	for k, v := range cfg {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatalf("CreateTopics(%s) = %v", name, err)
	}
	s.parts.refresh()
	got := resp.Topics[0]
	msg := ""
	if got.ErrorMessage != nil {
		msg = *got.ErrorMessage
	}
	return got.ErrorCode, msg
}

// segmentCount counts the .log files of a topic's partition 0.
func segmentCount(t *testing.T, s *Server, topic string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(s.cfg.DataDir, topic+"-0.*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// startEnd is a partition's log start offset (ListOffsets earliest) and
// its end (latest).
func startEnd(t *testing.T, cl *kgo.Client, topic string) (int64, int64) {
	t.Helper()
	return listOffset(t, cl, topic, -2).Offset, listOffset(t, cl, topic, -1).Offset
}

func TestTopicConfig_timestampAndRollSettings(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	cl := newClient(t, s)
	for _, tt := range []struct {
		name string
		cfg  map[string]string
		want int16
	}{
		{"LogAppendTime", map[string]string{"message.timestamp.type": "LogAppendTime"}, 0},
		{"CreateTime with bounds", map[string]string{"message.timestamp.type": "CreateTime",
			"message.timestamp.before.max.ms": "86400000", "message.timestamp.after.max.ms": "0"}, 0},
		{"the older single bound", map[string]string{"message.timestamp.difference.max.ms": "60000"}, 0},
		{"short segment.ms", map[string]string{"segment.ms": "1000", "retention.ms": "2000"}, 0},
		{"unknown timestamp type", map[string]string{"message.timestamp.type": "WallClock"}, kerr.InvalidConfig.Code},
		{"lower case type", map[string]string{"message.timestamp.type": "logappendtime"}, kerr.InvalidConfig.Code},
		{"negative before", map[string]string{"message.timestamp.before.max.ms": "-1"}, kerr.InvalidConfig.Code},
		{"after not a number", map[string]string{"message.timestamp.after.max.ms": "1h"}, kerr.InvalidConfig.Code},
		{"difference past int64", map[string]string{"message.timestamp.difference.max.ms": "9223372036854775808"}, kerr.InvalidConfig.Code},
		{"segment.ms zero", map[string]string{"segment.ms": "0"}, kerr.InvalidConfig.Code},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := "cfg-" + strings.ReplaceAll(tt.name, " ", "-")
			if got, msg := createTopic(t, s, cl, name, tt.cfg); got != tt.want {
				t.Errorf("CreateTopics(%v) = %v (%s), want %v", tt.cfg, kerr.ErrorForCode(got), msg, kerr.ErrorForCode(tt.want))
			}
		})
	}

	// DescribeConfigs reports the new settings: a topic's own values, and
	// the defaults where it has none.
	if code, msg := createTopic(t, s, cl, "described", map[string]string{"message.timestamp.type": "LogAppendTime"}); code != 0 {
		t.Fatalf("CreateTopics = %v (%s)", kerr.ErrorForCode(code), msg)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "described"
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("DescribeConfigs = %v, %v", resp, err)
	}
	got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		got[c.Name] = c
	}
	for name, want := range map[string]string{
		"message.timestamp.type":              "LogAppendTime",
		"message.timestamp.before.max.ms":     "9223372036854775807",
		"message.timestamp.after.max.ms":      "3600000",
		"message.timestamp.difference.max.ms": "9223372036854775807",
		"segment.ms":                          "604800000", // Config.Log.SegmentAge left zero: storage's 7 days
		"retention.ms":                        "604800000",
		"retention.bytes":                     "-1",
	} {
		c, ok := got[name]
		if !ok || c.Value == nil || *c.Value != want {
			t.Errorf("DescribeConfigs %s = %v, want %s", name, c.Value, want)
		}
	}
	if c := got["message.timestamp.type"]; c.IsDefault || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("message.timestamp.type source = %v default %v, want the topic's own", c.Source, c.IsDefault)
	}
}

func TestProduce_createTimeOutOfRangeIsInvalidTimestamp(t *testing.T) {
	clk := newTestClock()
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1; c.Log.Now = clk.Now })
	cl := newClient(t, s, kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
	for topic, cfg := range map[string]map[string]string{
		"defaults":   nil,
		"bounded":    {"message.timestamp.before.max.ms": "3600000", "message.timestamp.after.max.ms": "60000"},
		"difference": {"message.timestamp.difference.max.ms": "60000"},
		"both":       {"message.timestamp.difference.max.ms": "60000", "message.timestamp.before.max.ms": "86400000"},
	} {
		if code, msg := createTopic(t, s, cl, topic, cfg); code != 0 {
			t.Fatalf("CreateTopics(%s) = %v (%s)", topic, kerr.ErrorForCode(code), msg)
		}
	}
	now := clk.Now()
	tests := []struct {
		topic string
		ts    time.Time
		want  error
	}{
		{"defaults", time.UnixMilli(1000), nil}, // any past, as Kafka
		{"defaults", now.Add(59 * time.Minute), nil},
		{"defaults", now.Add(61 * time.Minute), kerr.InvalidTimestamp}, // an hour ahead at most
		{"bounded", now.Add(-59 * time.Minute), nil},
		{"bounded", now.Add(-61 * time.Minute), kerr.InvalidTimestamp},
		{"bounded", time.UnixMilli(1000), kerr.InvalidTimestamp},
		{"bounded", now.Add(2 * time.Minute), kerr.InvalidTimestamp},
		{"difference", now.Add(-2 * time.Minute), kerr.InvalidTimestamp},
		{"difference", now.Add(2 * time.Minute), kerr.InvalidTimestamp},
		{"difference", now.Add(-30 * time.Second), nil},
		{"both", now.Add(-2 * time.Hour), nil}, // before.max.ms wins over the older bound
		{"both", now.Add(2 * time.Minute), kerr.InvalidTimestamp},
	}
	accepted := map[string]int64{}
	for _, tt := range tests {
		err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: tt.topic, Value: []byte("v"), Timestamp: tt.ts}).FirstErr()
		if !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("produce to %s stamped %v (broker at %v) = %v, want %v", tt.topic, tt.ts.UTC(), now.UTC(), err, tt.want)
		}
		if err == nil {
			accepted[tt.topic]++
		}
	}
	for topic, n := range accepted {
		if _, end := startEnd(t, cl, topic); end != n {
			t.Errorf("%s: log end %d, want %d: a refused batch was written", topic, end, n)
		}
	}

	// The refusal says what is wrong and what to do, naming the partition.
	p := produceOne(t, cl, "bounded", rawBatch(0, append(recordHead(1), 0, 0))) // stamped batchTime, 2025
	if p.ErrorCode != kerr.InvalidTimestamp.Code || p.ErrorMessage == nil ||
		!bytes.Contains([]byte(*p.ErrorMessage), []byte("bounded-0")) || !bytes.Contains([]byte(*p.ErrorMessage), []byte("LogAppendTime")) {
		t.Errorf("produce of a 2025 record to bounded = %v %v, want INVALID_TIMESTAMP naming the partition and LogAppendTime",
			kerr.ErrorForCode(p.ErrorCode), p.ErrorMessage)
	}
	// Only the broker sets LogAppendTime, whatever the topic's type.
	for _, topic := range []string{"defaults", "bounded"} {
		if p := produceOne(t, cl, topic, rawBatch(attrLogAppendTime, append(recordHead(1), 0, 0))); p.ErrorCode != kerr.InvalidTimestamp.Code {
			t.Errorf("produce of a batch that says LogAppendTime to %s = %v, want INVALID_TIMESTAMP", topic, kerr.ErrorForCode(p.ErrorCode))
		}
	}
}

func TestLogAppendTime_consumerSeesTheBrokerTimeAndRetentionGoesByIt(t *testing.T) {
	clk := newTestClock()
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1; c.Log.Now = clk.Now })
	admin := newClient(t, s)
	const topic = "stamped"
	if code, msg := createTopic(t, s, admin, topic, map[string]string{
		"message.timestamp.type": "LogAppendTime", "retention.ms": "60000"}); code != 0 {
		t.Fatalf("CreateTopics = %v (%s)", kerr.ErrorForCode(code), msg)
	}
	stamp := clk.Now().UnixMilli()
	clockless := time.UnixMilli(1000) // a device that believes it is 1970
	sent := 0
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.ZstdCompression(), kgo.GzipCompression()} {
		prod := newClient(t, s, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
		var rs []*kgo.Record
		for i := range 10 {
			rs = append(rs, &kgo.Record{Value: []byte("reading " + strconv.Itoa(sent+i)), Timestamp: clockless})
		}
		if err := prod.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
			t.Fatalf("ProduceSync = %v", err)
		}
		sent += len(rs)
	}

	// franz-go checks every batch's CRC (kgo.DisableFetchCRCValidation is
	// not set), so a stamp without a new CRC fails the fetch.
	cons := newClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < sent {
		fs := cons.PollFetches(ctxT(t))
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches = %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Attrs.TimestampType() != 1 || r.Timestamp.UnixMilli() != stamp {
				t.Errorf("record %d: timestamp type %d at %d, want LogAppendTime (1) at the broker's %d",
					r.Offset, r.Attrs.TimestampType(), r.Timestamp.UnixMilli(), stamp)
			}
			got++
		})
	}

	// ListOffsets by time goes by the broker's stamp: every record is
	// after 1970 and none after the stamp.
	if p := listOffset(t, admin, topic, clockless.UnixMilli()+1); p.Offset != 0 {
		t.Errorf("ListOffsets(1970) = %d, want 0", p.Offset)
	}
	if p := listOffset(t, admin, topic, stamp+1); p.Offset != -1 {
		t.Errorf("ListOffsets(after the stamp) = %d, want -1", p.Offset)
	}

	// Retention too: right after the append nothing has expired, though
	// the producer said 1970; once retention.ms has passed by the broker's
	// clock, everything has.
	s.parts.retain()
	if start, end := startEnd(t, admin, topic); start != 0 || end != int64(sent) {
		t.Fatalf("log start, end = %d, %d right after the append, want 0, %d", start, end, sent)
	}
	clk.Advance(2 * time.Minute)
	s.parts.retain()
	if start, end := startEnd(t, admin, topic); start != int64(sent) || end != int64(sent) {
		t.Fatalf("log start, end = %d, %d once retention.ms passed, want %d, %d", start, end, sent, sent)
	}
}

func TestRetention_idlePartitionExpiresOnTime(t *testing.T) {
	clk := newTestClock()
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1; c.Log.Now = clk.Now })
	cl := newClient(t, s, kgo.DefaultProduceTopic("idle"))
	if code, msg := createTopic(t, s, cl, "idle", map[string]string{"segment.ms": "60000", "retention.ms": "120000"}); code != 0 {
		t.Fatalf("CreateTopics = %v (%s)", kerr.ErrorForCode(code), msg)
	}
	var rs []*kgo.Record
	for i := range 5 {
		rs = append(rs, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: clk.Now()})
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Nothing is produced from here on; only the maintenance timer runs.
	steps := []struct {
		advance    time.Duration // since the step before
		segments   int
		start, end int64
	}{
		{30 * time.Second, 1, 0, 5}, // younger than segment.ms
		{31 * time.Second, 2, 0, 5}, // rolled by segment.ms, not expired
		{30 * time.Second, 2, 0, 5}, // no empty segment rolled after it
		{30 * time.Second, 1, 5, 5}, // 2m1s: past retention.ms
		{time.Hour, 1, 5, 5},
		{time.Hour, 1, 5, 5},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		s.parts.retain()
		start, end := startEnd(t, cl, "idle")
		if n := segmentCount(t, s, "idle"); n != st.segments || start != st.start || end != st.end {
			t.Fatalf("step %d: %d segments, log start %d, end %d; want %d, %d, %d", i, n, start, end, st.segments, st.start, st.end)
		}
	}
	// The partition takes records again after it expired.
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("again"), Timestamp: clk.Now()}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if start, end := startEnd(t, cl, "idle"); start != 5 || end != 6 {
		t.Errorf("log start, end = %d, %d after a new record, want 5, 6", start, end)
	}
}

// A follower copies the leader's stamped batches byte for byte: it does
// not stamp them again with its own clock, which here runs an hour ahead.
func TestLogAppendTime_followerKeepsTheLeadersStamp(t *testing.T) {
	pki := testpki.New(t, tlsCluster)
	leaderClock, followerClock := newTestClock(), newTestClock()
	followerClock.Advance(time.Hour)
	clocks := []func() time.Time{leaderClock.Now, followerClock.Now}
	node := 0
	ns, servers, _ := startTLSNodes(t, pki, 2, func(c *Config) { c.Log.Now = clocks[node]; node++ })
	ns.addTopic("stamped", []int32{1, 2}, []int32{1, 2})
	ns.mc.mu.Lock()
	tp := ns.mc.topics["stamped"]
	tp.Config = map[string]string{"message.timestamp.type": "LogAppendTime"}
	ns.mc.topics["stamped"] = tp
	ns.mc.mu.Unlock()
	ns.changed()
	for _, s := range servers {
		s.parts.refresh()
	}

	cl := newClient(t, servers[0], kgo.DefaultProduceTopic("stamped"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	var rs []*kgo.Record
	for i := range 20 {
		rs = append(rs, &kgo.Record{Value: []byte("reading " + strconv.Itoa(i)), Timestamp: time.UnixMilli(1000)})
	}
	if err := cl.ProduceSync(ctxT(t), rs...).FirstErr(); err != nil {
		t.Fatalf("acks=all ProduceSync = %v", err)
	}
	logBytes := func(s *Server) []byte {
		t.Helper()
		topic, _ := s.parts.topic("stamped")
		p, err := s.parts.get(topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.log.Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	leader, follower := logBytes(servers[0]), logBytes(servers[1])
	if !bytes.Equal(leader, follower) {
		t.Fatalf("the follower's log (%d bytes) differs from the leader's (%d bytes)", len(follower), len(leader))
	}
	stamp := leaderClock.Now().UnixMilli()
	if err := eachRecordOf(leader, func(offset, ts int64) bool {
		if ts != stamp {
			t.Errorf("record %d stamped %d, want the leader's %d", offset, ts, stamp)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
}

// eachRecordOf runs eachRecord over every batch of b.
func eachRecordOf(b []byte, fn func(offset, ts int64) bool) error {
	for len(b) >= 61 {
		n := int(binary.BigEndian.Uint32(b[8:])) + 12
		if b[22]&attrLogAppendTime == 0 {
			return errors.New("a stored batch does not say LogAppendTime")
		}
		if err := eachRecord(b[:n], 1<<20, fn); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
