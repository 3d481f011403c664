package policy

import (
	"strings"
)

// The controller's metrics, written into Controller.Metrics; their names
// and meanings are listed in docs/metrics.md.

// ElectionLatencyBuckets are the upper bounds, in seconds, of the election
// latency histogram: a decision plus one Raft commit takes milliseconds on
// a healthy cluster and seconds on a struggling one.
var ElectionLatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// registerMetrics creates the series an operator expects from the start,
// at zero, so a rate over them works before the first election: every
// reason's committed and failed elections by first-isr, the built-in
// policy and the one that stands in when another fails.
func (c *Controller) registerMetrics() {
	for _, r := range []Reason{ReasonLeaderTimeout, ReasonControlledShutdown, ReasonRebalance, ReasonManual, ReasonStorageFailed} {
		for _, committed := range []bool{true, false} {
			c.Metrics.GetOrCreateCounter(electionsName(r, FirstISR{}.Name(), committed))
		}
	}
	c.Metrics.GetOrCreateCounter("reeve_elections_unclean_total")
	c.Metrics.GetOrCreatePrometheusHistogramExt("reeve_election_latency_seconds", ElectionLatencyBuckets)
}

// countElection counts one election this controller ran.
func (c *Controller) countElection(r DecisionRecord) {
	c.Metrics.GetOrCreateCounter(electionsName(r.Reason, r.Policy, r.Committed)).Inc()
	if !r.Committed {
		return
	}
	if r.Unclean {
		c.Metrics.GetOrCreateCounter("reeve_elections_unclean_total").Inc()
	}
	c.Metrics.GetOrCreatePrometheusHistogramExt("reeve_election_latency_seconds", ElectionLatencyBuckets).
		Update(r.LatencyMs / 1000)
}

// countFallback counts a decision first-isr made in place of policy's.
func (c *Controller) countFallback(policy string, cause Cause) {
	c.Metrics.GetOrCreateCounter(FallbacksName(policy, cause)).Inc()
}

func electionsName(r Reason, policy string, committed bool) string {
	result := "committed"
	if !committed {
		result = "failed"
	}
	return `reeve_elections_total{reason="` + labelValue(string(r)) + `",policy="` + labelValue(policy) +
		`",result="` + result + `"}`
}

// FallbacksName is the series of reeve_policy_fallbacks_total for policy
// and cause.
func FallbacksName(policy string, cause Cause) string {
	return `reeve_policy_fallbacks_total{policy="` + labelValue(policy) + `",cause="` + labelValue(string(cause)) + `"}`
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// labelValue escapes s for use inside a Prometheus label's quotes.
func labelValue(s string) string { return labelEscaper.Replace(s) }
