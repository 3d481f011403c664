package api

import "time"

// Election is one leader election a node decided: GET /v1/elections lists
// the answering node's, oldest first; GET /v1/status carries the latest.
type Election struct {
	Time      time.Time `json:"time"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	// Reason is why the election ran: leader_timeout, controlled_shutdown,
	// rebalance or manual.
	Reason string `json:"reason"`
	// Policy is who decided: a rule's module file, first-isr or operator;
	// PolicyDigest the module's SHA-256.
	Policy       string `json:"policy"`
	PolicyDigest string `json:"policy_digest,omitempty"`
	From         uint64 `json:"from"`
	To           uint64 `json:"to"` // NoLeader: the partition went offline
	LeaderEpoch  int32  `json:"leader_epoch"`
	Why          string `json:"why"`
	// Input is the replicas as the policy saw them, e.g.
	// "1(dead,isr) 2(alive,isr) 3(alive)".
	Input     string  `json:"input"`
	LatencyMs float64 `json:"latency_ms"`
	Unclean   bool    `json:"unclean,omitempty"` // the new leader was not in the ISR
	Committed bool    `json:"committed"`
	Error     string  `json:"error,omitempty"`
	// When first-isr decided in place of a failed policy: that policy, its
	// digest, the kind of failure and the exact error.
	FallbackFrom   string `json:"fallback_from,omitempty"`
	FallbackDigest string `json:"fallback_digest,omitempty"`
	FallbackCause  string `json:"fallback_cause,omitempty"`
	FallbackError  string `json:"fallback_error,omitempty"`
}

// Policies is the body of GET /v1/policies: the election rules and what
// each runs.
type Policies struct {
	PolicyDir string       `json:"policy_dir,omitempty"`
	Rules     []PolicyRule `json:"rules"`
	Loaded    int64        `json:"modules_loaded"`  // modules put in force since start
	Refused   int64        `json:"modules_refused"` // modules refused since start
	// Fallbacks counts the decisions first-isr made in place of a failed
	// policy, since start.
	Fallbacks int `json:"fallbacks"`
}

// PolicyRule is one [[election.rules]] entry and what it runs.
type PolicyRule struct {
	Topics   string            `json:"topics"`
	Policy   string            `json:"policy"`
	Settings map[string]string `json:"settings,omitempty"`
	Digest   string            `json:"digest,omitempty"` // of the module running, "" for the built-in or none
	// Running is true while the rule's own policy decides (false: first-isr
	// stands in).
	Running bool `json:"running"`
	Resets  int  `json:"instance_resets"` // instances replaced after traps or deadlines
	// Error is why the folder's current file is not what runs.
	Error string `json:"last_error,omitempty"`
}
