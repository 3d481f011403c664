package kafka

import (
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The Kafka layer's metrics, written into Config.Metrics; their names and
// meanings are listed in docs/metrics.md.

// RequestLatencyBuckets are the upper bounds, in seconds, of the request
// latency histograms: from a sub-millisecond metadata answer to a fetch
// that long-polls for its max wait.
var RequestLatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// serverMetrics are one Server's counters and histograms.
type serverMetrics struct {
	set *metrics.Set
	// latency holds one histogram per API key, created on the first
	// request of that API (Produce and Fetch at once); followerFetch is
	// Fetch from replicas, kept apart from consumers' fetches as Kafka's
	// FetchFollower and FetchConsumer are.
	latency       []atomic.Pointer[metrics.PrometheusHistogram]
	followerFetch *metrics.PrometheusHistogram

	producedRecords, producedBytes *metrics.Counter
	fetchedRecords, fetchedBytes   *metrics.Counter
	replicatedBytes                *metrics.Counter
	isrShrinks, isrExpands         *metrics.Counter

	// refusedMax and refusedPerIP count connections closed at accept by
	// a limit; acceptErrors failed accepts (EMFILE and the like).
	refusedMax, refusedPerIP *metrics.Counter
	acceptErrors             *metrics.Counter
	// budgetWaits counts reads that waited for the request memory budget.
	budgetWaits *metrics.Counter
	// nodeHandshakes and nodeClaims count what [tls] refused: node
	// connections whose TLS handshake failed, and requests made as a node
	// on a connection whose certificate does not name it.
	nodeHandshakes, nodeClaims *metrics.Counter
}

func newServerMetrics(set *metrics.Set) *serverMetrics {
	if set == nil {
		set = metrics.NewSet()
	}
	maxKey := int16(0)
	for k := range apis {
		maxKey = max(maxKey, k)
	}
	m := &serverMetrics{
		set:             set,
		latency:         make([]atomic.Pointer[metrics.PrometheusHistogram], maxKey+1),
		followerFetch:   set.NewPrometheusHistogramExt(latencyName("fetch_follower"), RequestLatencyBuckets),
		producedRecords: set.NewCounter("reeve_kafka_records_produced_total"),
		producedBytes:   set.NewCounter("reeve_kafka_bytes_produced_total"),
		fetchedRecords:  set.NewCounter("reeve_kafka_records_fetched_total"),
		fetchedBytes:    set.NewCounter("reeve_kafka_bytes_fetched_total"),
		replicatedBytes: set.NewCounter("reeve_kafka_bytes_replicated_total"),
		isrShrinks:      set.NewCounter("reeve_isr_shrinks_total"),
		isrExpands:      set.NewCounter("reeve_isr_expands_total"),
		refusedMax:      set.NewCounter(`reeve_kafka_connections_refused_total{reason="` + refusedMaxConnections + `"}`),
		refusedPerIP:    set.NewCounter(`reeve_kafka_connections_refused_total{reason="` + refusedMaxConnectionsPerIP + `"}`),
		acceptErrors:    set.NewCounter("reeve_kafka_accept_errors_total"),
		budgetWaits:     set.NewCounter("reeve_kafka_request_budget_waits_total"),
		nodeHandshakes:  set.NewCounter(`reeve_kafka_node_refused_total{reason="handshake"}`),
		nodeClaims:      set.NewCounter(`reeve_kafka_node_refused_total{reason="claim"}`),
	}
	m.histogram(int16(kmsg.Produce))
	m.histogram(int16(kmsg.Fetch))
	return m
}

// histogram returns the latency histogram of an API key in the dispatch
// table, creating it on first use.
func (m *serverMetrics) histogram(key int16) *metrics.PrometheusHistogram {
	if h := m.latency[key].Load(); h != nil {
		return h
	}
	h := m.set.GetOrCreatePrometheusHistogramExt(latencyName(apiLabel(key)), RequestLatencyBuckets)
	m.latency[key].Store(h)
	return h
}

// request records one answered request: its latency, and for Fetch the
// records and bytes it returned.
func (m *serverMetrics) request(key int16, req kmsg.Request, resp kmsg.Response, took time.Duration) {
	secs := took.Seconds()
	f, ok := req.(*kmsg.FetchRequest)
	if !ok {
		m.histogram(key).Update(secs)
		return
	}
	follower := f.ReplicaID >= 0 || f.Version >= 15 && f.ReplicaState.ID >= 0
	if follower {
		m.followerFetch.Update(secs)
	} else {
		m.histogram(key).Update(secs)
	}
	fr, _ := resp.(*kmsg.FetchResponse)
	if fr == nil {
		return
	}
	var bytes, records int
	for _, t := range fr.Topics {
		for _, p := range t.Partitions {
			bytes += len(p.RecordBatches)
			if !follower {
				records += countRecords(p.RecordBatches)
			}
		}
	}
	if follower {
		m.replicatedBytes.Add(bytes)
		return
	}
	m.fetchedBytes.Add(bytes)
	m.fetchedRecords.Add(records)
}

// produced counts records appended to a partition log for a client.
func (m *serverMetrics) produced(records int64, bytes int) {
	m.producedRecords.Add(int(records))
	m.producedBytes.Add(bytes)
}

// refused counts a connection closed at accept for reason.
func (m *serverMetrics) refused(reason string) {
	if reason == refusedMaxConnections {
		m.refusedMax.Inc()
	} else {
		m.refusedPerIP.Inc()
	}
}

// isrChanged counts a committed ISR change: a shrink if a replica left,
// an expand if one joined (both if one replaced another).
func (m *serverMetrics) isrChanged(from, to []int32) {
	for _, r := range from {
		if !slices.Contains(to, r) {
			m.isrShrinks.Inc()
			break
		}
	}
	for _, r := range to {
		if !slices.Contains(from, r) {
			m.isrExpands.Inc()
			break
		}
	}
}

// countRecords adds up the record counts of the whole batches in b. It
// reads only the two fields it needs (a v2 batch's length at byte 8, its
// record count at byte 57): a full header parse per batch costs a
// consumer's fetch of small batches several times more.
func countRecords(b []byte) int {
	const batchHeaderLen = 61
	n := 0
	for len(b) >= batchHeaderLen {
		size := 12 + int(binary.BigEndian.Uint32(b[8:]))
		if size < batchHeaderLen || size > len(b) {
			break
		}
		n += int(int32(binary.BigEndian.Uint32(b[57:])))
		b = b[size:]
	}
	return n
}

func latencyName(api string) string {
	return `reeve_kafka_request_latency_seconds{api="` + api + `"}`
}

// apiLabel is an API's name in snake case, as the API files are named:
// produce, fetch, api_versions, init_producer_id.
func apiLabel(key int16) string {
	var b strings.Builder
	name := kmsg.NameForKey(key)
	for i, r := range name {
		if unicode.IsUpper(r) && i > 0 && unicode.IsLower(rune(name[i-1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
