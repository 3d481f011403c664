package raft

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The store's metrics, written into Config.Metrics; their names and
// meanings are listed in docs/metrics.md.

// ProposalLatencyBuckets are the upper bounds, in seconds, of the proposal
// latency histogram: a commit takes a few milliseconds on a LAN, longer
// across a Raft election or a slow disk.
var ProposalLatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// storeMetrics are one Store's proposal metrics.
type storeMetrics struct {
	latency *metrics.PrometheusHistogram // committed proposals, retries included
	failed  *metrics.Counter             // proposals that never committed
	// dropped counts the messages and snapshot chunks the transport
	// dropped because they failed validation (transport_guard.go).
	dropped *metrics.Counter
}

func newStoreMetrics(set *metrics.Set) storeMetrics {
	if set == nil {
		set = metrics.NewSet()
	}
	return storeMetrics{
		latency: set.NewPrometheusHistogramExt("reeve_raft_proposal_latency_seconds", ProposalLatencyBuckets),
		failed:  set.NewCounter("reeve_raft_proposal_failures_total"),
		dropped: set.NewCounter("reeve_raft_messages_dropped_total"),
	}
}

// proposed records one proposal's outcome: its latency when it committed
// (a state machine's rejection is a commit too), a failure when not.
func (m storeMetrics) proposed(start time.Time, err error) {
	if err != nil {
		m.failed.Inc()
		return
	}
	m.latency.UpdateDuration(start)
}
