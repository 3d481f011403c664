package kafka

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetrics_countRecordsAndBytesBothWays produces 300 records in
// compressed batches and consumes them: the produced and fetched record
// counts are exact, whatever the batching, and the bytes are the batches'.
func TestMetrics_countRecordsAndBytesBothWays(t *testing.T) {
	set := metrics.NewSet()
	s, _ := startServer(t, func(c *Config) { c.Metrics, c.DefaultPartitions = set, 1 })
	const records = 300
	cl := newClient(t, s, kgo.DefaultProduceTopic("counted"), kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ConsumeTopics("counted"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t)
	var rs []*kgo.Record
	for i := range records {
		rs = append(rs, &kgo.Record{Value: []byte(strings.Repeat(strconv.Itoa(i), 20))})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for seen := 0; seen < records; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		seen += fs.NumRecords()
	}
	m := s.metrics
	if got := m.producedRecords.Get(); got != records {
		t.Errorf("reeve_kafka_records_produced_total = %d, want %d", got, records)
	}
	if got := m.fetchedRecords.Get(); got != records {
		t.Errorf("reeve_kafka_records_fetched_total = %d, want %d", got, records)
	}
	if p, f := m.producedBytes.Get(), m.fetchedBytes.Get(); p == 0 || f != p {
		t.Errorf("bytes produced %d, fetched %d; want the same batches both ways", p, f)
	}
	var out bytes.Buffer
	set.WritePrometheus(&out)
	for _, want := range []string{`reeve_kafka_request_latency_seconds_count{api="produce"} `, `reeve_kafka_request_latency_seconds_count{api="fetch"} `,
		`reeve_kafka_request_latency_seconds_count{api="metadata"} `, `reeve_kafka_request_latency_seconds_bucket{api="produce",le="0.0005"} `} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the metric set has no %s...:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `reeve_kafka_request_latency_seconds_count{api="produce"} 0`) {
		t.Errorf("no produce request counted:\n%s", out.String())
	}
}

func TestServerMetrics_isrChanged(t *testing.T) {
	tests := []struct {
		name            string
		from, to        []int32
		shrinks, expand uint64
	}{
		{name: "shrink", from: []int32{1, 2, 3}, to: []int32{1, 2}, shrinks: 1},
		{name: "shrink by two", from: []int32{1, 2, 3}, to: []int32{1}, shrinks: 1},
		{name: "expand", from: []int32{1}, to: []int32{1, 3}, expand: 1},
		{name: "replace", from: []int32{1, 2}, to: []int32{1, 3}, shrinks: 1, expand: 1},
		{name: "reorder", from: []int32{1, 2}, to: []int32{2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newServerMetrics(nil)
			m.isrChanged(tt.from, tt.to)
			if s, e := m.isrShrinks.Get(), m.isrExpands.Get(); s != tt.shrinks || e != tt.expand {
				t.Errorf("isrChanged(%v, %v) = %d shrinks, %d expands; want %d, %d", tt.from, tt.to, s, e, tt.shrinks, tt.expand)
			}
		})
	}
}

func TestAPILabel(t *testing.T) {
	tests := []struct {
		key  kmsg.Key
		want string
	}{
		{kmsg.Produce, "produce"},
		{kmsg.ApiVersions, "api_versions"},
		{kmsg.InitProducerID, "init_producer_id"},
		{kmsg.OffsetForLeaderEpoch, "offset_for_leader_epoch"},
		{kmsg.BrokerHeartbeat, "broker_heartbeat"},
	}
	for _, tt := range tests {
		if got := apiLabel(int16(tt.key)); got != tt.want {
			t.Errorf("apiLabel(%d) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// BenchmarkServerMetrics_request measures what the metrics add to a
// request: a histogram update for a produce, and for a consumer's fetch the
// walk over the returned batches' headers to count records (4 partitions
// of 64 batches each).
func BenchmarkServerMetrics_request(b *testing.B) {
	b.Run("produce", func(b *testing.B) {
		m := newServerMetrics(nil)
		req := kmsg.NewPtrProduceRequest()
		for range b.N {
			m.request(int16(kmsg.Produce), req, nil, time.Millisecond)
		}
	})
	b.Run("fetch-256-batches", func(b *testing.B) {
		batch := make([]byte, 1024)
		binary.BigEndian.PutUint32(batch[8:], uint32(len(batch)-12)) // batch length
		binary.BigEndian.PutUint32(batch[57:], 10)                   // record count
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		resp := kmsg.NewPtrFetchResponse()
		t := kmsg.NewFetchResponseTopic()
		for range 4 {
			p := kmsg.NewFetchResponseTopicPartition()
			p.RecordBatches = bytes.Repeat(batch, 64)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
		m := newServerMetrics(nil)
		b.ResetTimer()
		for range b.N {
			m.request(int16(kmsg.Fetch), req, resp, time.Millisecond)
		}
		if got := m.fetchedRecords.Get(); got != uint64(b.N)*4*64*10 {
			b.Fatalf("records fetched = %d, want %d", got, b.N*4*64*10)
		}
	})
}
