package config

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Scenario is a described cluster state for `reeve policy test`: nodes
// and the partitions a policy should decide.
type Scenario struct {
	Nodes      []ScenarioNode      `toml:"node"`
	Partitions []ScenarioPartition `toml:"partition"`
}

// ScenarioNode is one node of a scenario.
type ScenarioNode struct {
	ID uint64 `toml:"id"`
	// Alive defaults to true.
	Alive        *bool             `toml:"alive"`
	HeartbeatAge Duration          `toml:"heartbeat_age"`
	Labels       map[string]string `toml:"labels"`
}

// IsAlive reports the node's liveness, true unless set false.
func (n ScenarioNode) IsAlive() bool { return n.Alive == nil || *n.Alive }

// ScenarioPartition is one partition to decide.
type ScenarioPartition struct {
	Topic       string   `toml:"topic"`
	Partition   int32    `toml:"partition"`
	Reason      string   `toml:"reason"` // leader_timeout (default), controlled_shutdown, rebalance, manual
	Leader      uint64   `toml:"leader"`
	LeaderEpoch int32    `toml:"leader_epoch"`
	Replicas    []uint64 `toml:"replicas"`
	ISR         []uint64 `toml:"isr"`
	// LogEndOffsets, if set, has one entry per replica; -1 is unknown.
	LogEndOffsets []int64 `toml:"log_end_offsets"`
	Unclean       bool    `toml:"unclean"`
	// Expect, if set, is the answer the policy must give: "leader N",
	// "keep" or "none"; `reeve policy test` exits 1 on a mismatch.
	Expect string `toml:"expect"`
}

// LoadScenario reads and checks a scenario file; errors carry
// file:line:col like the configuration's.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, Errors{syntaxError(path, data, err)}
	}
	d := &decoder{file: path, loc: locate(data), seen: map[string]bool{}, bad: map[string]bool{}}
	s := &Scenario{}
	d.table(nil, raw, reflect.ValueOf(s).Elem())
	nodes := map[uint64]bool{}
	for i, n := range s.Nodes {
		key := fmt.Sprintf("node[%d].id", i)
		if n.ID == 0 && d.ok(key) {
			d.errorf(key, "missing or 0; give every node an id of 1 or more")
		}
		nodes[n.ID] = true
	}
	for i, p := range s.Partitions {
		key := fmt.Sprintf("partition[%d]", i)
		switch p.Reason {
		case "", "leader_timeout", "controlled_shutdown", "rebalance", "manual":
		default:
			d.errorf(key+".reason", "%q: use leader_timeout, controlled_shutdown, rebalance or manual", p.Reason)
		}
		if len(p.Replicas) == 0 && d.ok(key+".replicas") {
			d.errorf(key+".replicas", "missing; list the replica node ids in preference order")
		}
		for _, r := range append(append([]uint64{}, p.Replicas...), p.ISR...) {
			if !nodes[r] && d.ok(key+".replicas") {
				d.errorf(key+".replicas", "node %d is not a [[node]] of the scenario", r)
				break
			}
		}
		if _, _, ok := p.Expected(); !ok && d.ok(key+".expect") {
			d.errorf(key+".expect", "%q: write \"leader N\" with a replica's node id, \"keep\" or \"none\"", p.Expect)
		}
		if len(p.LogEndOffsets) > 0 && len(p.LogEndOffsets) != len(p.Replicas) && d.ok(key+".log_end_offsets") {
			d.errorf(key+".log_end_offsets", "%d offsets for %d replicas; give one per replica (-1 for unknown)", len(p.LogEndOffsets), len(p.Replicas))
		}
	}
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return s, nil
}

// Expected parses Expect: its kind ("leader", "keep", "none", or "" when
// unset) and, for leader, the node; ok is false if it does not parse.
func (p ScenarioPartition) Expected() (kind string, leader uint64, ok bool) {
	f := strings.Fields(p.Expect)
	switch {
	case len(f) == 0:
		return "", 0, true
	case len(f) == 1 && (f[0] == "keep" || f[0] == "none"):
		return f[0], 0, true
	case len(f) == 2 && f[0] == "leader":
		n, err := strconv.ParseUint(f[1], 10, 64)
		return "leader", n, err == nil && n > 0
	}
	return "", 0, false
}
