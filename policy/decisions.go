package policy

import (
	"sync"
	"time"
)

// DecisionRecord is one election as the decision log keeps it.
type DecisionRecord struct {
	Time         time.Time `json:"time"`
	Topic        string    `json:"topic"`
	Partition    int32     `json:"partition"`
	Reason       Reason    `json:"reason"`
	Policy       string    `json:"policy"`                  // who decided: a rule's module file, first-isr, operator
	PolicyDigest string    `json:"policy_digest,omitempty"` // the module's digest
	From         uint64    `json:"from"`
	To           uint64    `json:"to"` // 0: offline
	LeaderEpoch  int32     `json:"leader_epoch"`
	Why          string    `json:"why"`
	Input        string    `json:"input"` // replicas with alive/in-ISR flags, e.g. "1(dead,isr) 2(alive,isr) 3(alive)"
	LatencyMs    float64   `json:"latency_ms"`
	Unclean      bool      `json:"unclean,omitempty"` // the new leader was not in the ISR
	Committed    bool      `json:"committed"`
	Error        string    `json:"error,omitempty"`
	// The policy first-isr decided in place of, and why (Cause, and the
	// exact error).
	FallbackFrom   string `json:"fallback_from,omitempty"`
	FallbackDigest string `json:"fallback_digest,omitempty"`
	FallbackCause  Cause  `json:"fallback_cause,omitempty"`
	FallbackError  string `json:"fallback_error,omitempty"`

	err error
}

// DecisionLog keeps the last decisions this node made, newest last.
type DecisionLog struct {
	mu        sync.Mutex
	max       int
	recs      []DecisionRecord
	fallbacks int
}

func (l *DecisionLog) countFallback() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.fallbacks++
	l.mu.Unlock()
}

// Fallbacks counts decisions the controller replaced with first-isr's
// because the policy failed or chose an ineligible leader.
func (l *DecisionLog) Fallbacks() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fallbacks
}

// NewDecisionLog keeps up to max records.
func NewDecisionLog(max int) *DecisionLog { return &DecisionLog{max: max} }

// Add records one decision.
func (l *DecisionLog) Add(r DecisionRecord) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	if len(l.recs) > l.max {
		l.recs = append(l.recs[:0], l.recs[len(l.recs)-l.max:]...)
	}
}

// Records returns a copy of the log, oldest first.
func (l *DecisionLog) Records() []DecisionRecord {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]DecisionRecord(nil), l.recs...)
}

// summary describes an input's replicas for the log.
func summary(in Input) string {
	s := ""
	for i, r := range in.Replicas {
		if i > 0 {
			s += " "
		}
		state := "dead"
		if r.Alive {
			state = "alive"
		}
		if r.InISR {
			state += ",isr"
		}
		s += uintText(r.ID) + "(" + state + ")"
	}
	return s
}

func uintText(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
