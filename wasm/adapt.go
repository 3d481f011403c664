package wasm

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// This file adapts a module to policy.Policy: inputs become an ABI batch,
// answers become decisions.

var _ policy.Policy = (*Policy)(nil)

// Name implements policy.Policy: the module's name (its file).
func (p *Policy) Name() string { return p.mod.name }

// Decide implements policy.Policy. Every decision names the module and
// its digest; its safety is the controller's to check (policy.Validate).
func (p *Policy) Decide(ctx context.Context, in []policy.Input) ([]policy.Decision, error) {
	return p.decideInputs(ctx, in, p.mod.rt.cfg.Timeout)
}

func (p *Policy) decideInputs(ctx context.Context, in []policy.Input, timeout time.Duration) ([]policy.Decision, error) {
	ads, err := p.decideWithin(ctx, toBatch(in), timeout)
	if err != nil {
		return nil, err
	}
	src := policy.Source{Policy: p.mod.name, Digest: p.mod.digest}
	out := make([]policy.Decision, len(ads))
	for j, d := range ads {
		switch d.Kind {
		case abi.DecideKeep:
			out[j] = policy.Decision{Keep: true, Reason: d.Reason, Source: src}
		case abi.DecideLeader:
			out[j] = policy.Decision{Leader: d.Leader, Reason: d.Reason, Source: src}
		default:
			out[j] = policy.Decision{Reason: d.Reason, Source: src}
		}
	}
	return out, nil
}

// toBatch converts inputs to a batch. Nodes are listed once per batch
// (their labels converted once), and replicas share one backing array, so
// the conversion costs little next to the call.
func toBatch(in []policy.Input) *abi.Batch {
	total := 0
	for i := range in {
		total += len(in[i].Replicas)
	}
	b := &abi.Batch{Partitions: make([]abi.Partition, len(in))}
	reps := make([]abi.Replica, total)
	var nodeIDs [8]uint64 // batches name few nodes: a linear scan beats a map
	nodes := nodeIDs[:0]
	for j := range in {
		pin := &in[j]
		rs := reps[:len(pin.Replicas):len(pin.Replicas)]
		reps = reps[len(pin.Replicas):]
		for k := range pin.Replicas {
			r := &pin.Replicas[k]
			ni := slices.Index(nodes, r.ID)
			if ni < 0 {
				ni = len(nodes)
				nodes = append(nodes, r.ID)
				b.Nodes = append(b.Nodes, abi.Node{ID: r.ID, HeartbeatAgeMs: ageMs(r.HeartbeatAge), Labels: Settings(r.Labels)})
			}
			rs[k] = abi.Replica{Node: uint32(ni), Alive: r.Alive, InISR: r.InISR, LogEndOffset: r.LogEndOffset}
		}
		b.Partitions[j] = abi.Partition{Topic: pin.Topic, Partition: pin.Partition, Reason: abiReason(pin.Reason), Unclean: pin.Unclean,
			Leader: pin.Leader, LeaderEpoch: pin.LeaderEpoch, Replicas: rs}
	}
	return b
}

// Settings converts a settings or labels table to the ABI's form, sorted
// by key.
func Settings(m map[string]string) []abi.Label {
	out := make([]abi.Label, 0, len(m))
	for k, v := range m {
		out = append(out, abi.Label{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func abiReason(r policy.Reason) abi.Reason {
	switch r {
	case policy.ReasonControlledShutdown, policy.ReasonStorageFailed:
		// A module knows four reasons; storage_failed means what
		// controlled_shutdown does: the live leader leaves the partition.
		return abi.ReasonControlledShutdown
	case policy.ReasonRebalance:
		return abi.ReasonRebalance
	case policy.ReasonManual:
		return abi.ReasonManual
	}
	return abi.ReasonLeaderTimeout
}

func policyReason(r abi.Reason) policy.Reason {
	switch r {
	case abi.ReasonControlledShutdown:
		return policy.ReasonControlledShutdown
	case abi.ReasonRebalance:
		return policy.ReasonRebalance
	case abi.ReasonManual:
		return policy.ReasonManual
	}
	return policy.ReasonLeaderTimeout
}

func msAge(ms uint32) time.Duration {
	if ms == abi.NeverHeard {
		return time.Duration(abi.NeverHeard) * time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

func ageMs(d time.Duration) uint32 {
	switch {
	case d <= 0:
		return 0
	case d >= time.Duration(abi.NeverHeard-1)*time.Millisecond:
		return abi.NeverHeard
	}
	return uint32(d / time.Millisecond)
}
