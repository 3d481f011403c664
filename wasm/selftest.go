package wasm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// sampledBatches is how many batches drawn from the rule's shape a module
// answers at every load, besides the fixed one.
const sampledBatches = 4

// selfTestTimeout is a self-test call's deadline: four times an
// election's, as for instantiation. The self-test checks what a module
// answers, not how fast: a busy moment at load must not refuse a good
// module (a 50 ms deadline refused prefer-label once in 400 loads on a
// loaded 2-core machine), and a module slow in a real round falls back
// then.
func selfTestTimeout(t time.Duration) time.Duration { return 4 * t }

// selfTest asks the module about the fixed batch (SelfTestBatch) and about
// batches drawn from shape with a new random seed each time, and checks
// every answer with policy.Validate: a module that fails, or answers
// something the controller would refuse, never replaces a working
// policy. A module cannot pass by recognising the test: the sampled
// batches look like the rule's real elections.
func (p *Policy) selfTest(ctx context.Context, shape policy.Shape) error {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, seed>>1|1))
	batches := [][]policy.Input{fromBatch(SelfTestBatch())}
	for range sampledBatches {
		batches = append(batches, policy.Sample(shape, rng))
	}
	for bi, in := range batches {
		what := "the fixed batch"
		if bi > 0 {
			what = fmt.Sprintf("sampled batch %d (seed %#x)", bi, seed)
		}
		ds, err := p.decideInputs(ctx, in, selfTestTimeout(p.mod.rt.cfg.Timeout))
		if err != nil {
			return fmt.Errorf("%w: self-test, %s: %v", ErrRefused, what, err)
		}
		if len(ds) != len(in) {
			return fmt.Errorf("%w: %s: self-test, %s: %d answers for %d partitions", ErrRefused, p.mod.name, what, len(ds), len(in))
		}
		for i, d := range ds {
			if err := policy.Validate(in[i], d); err != nil {
				return fmt.Errorf("%w: %s: self-test, %s: %s-%d (%s): %v", ErrRefused, p.mod.name, what,
					in[i].Topic, in[i].Partition, in[i].Reason, err)
			}
		}
	}
	return nil
}

// fromBatch converts a batch back to inputs.
func fromBatch(b *abi.Batch) []policy.Input {
	out := make([]policy.Input, len(b.Partitions))
	for i, p := range b.Partitions {
		in := policy.Input{Topic: p.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Reason: policyReason(p.Reason), Unclean: p.Unclean}
		for _, r := range p.Replicas {
			n := b.Nodes[r.Node]
			labels := map[string]string{}
			for _, l := range n.Labels {
				labels[l.Key] = l.Value
			}
			in.Replicas = append(in.Replicas, policy.Replica{ID: n.ID, Alive: r.Alive, InISR: r.InISR, Labels: labels,
				HeartbeatAge: msAge(n.HeartbeatAgeMs), LogEndOffset: r.LogEndOffset})
		}
		out[i] = in
	}
	return out
}

// SelfTestBatch is the fixed batch a module must answer before it is
// used: three nodes with labels, partitions for every reason, with and
// without a live in-sync replica.
func SelfTestBatch() *abi.Batch {
	b := &abi.Batch{Nodes: []abi.Node{
		{ID: 1, HeartbeatAgeMs: 12000, Labels: []abi.Label{{Key: "power", Value: "battery"}}},
		{ID: 2, HeartbeatAgeMs: 300, Labels: []abi.Label{{Key: "power", Value: "mains"}}},
		{ID: 3, HeartbeatAgeMs: 0},
	}}
	all := func(alive [3]bool, isr [3]bool) []abi.Replica {
		out := make([]abi.Replica, 3)
		for i := range out {
			out[i] = abi.Replica{Node: uint32(i), Alive: alive[i], InISR: isr[i], LogEndOffset: int64(100 - i)}
		}
		return out
	}
	for i, r := range []abi.Reason{abi.ReasonLeaderTimeout, abi.ReasonControlledShutdown, abi.ReasonRebalance, abi.ReasonManual} {
		b.Partitions = append(b.Partitions,
			abi.Partition{Topic: "reeve-self-test", Partition: int32(2 * i), Reason: r, Leader: 1, LeaderEpoch: 3,
				Replicas: all([3]bool{false, true, true}, [3]bool{true, true, true})},
			abi.Partition{Topic: "reeve.self_test-2", Partition: int32(2*i + 1), Reason: r, Leader: 1, LeaderEpoch: 7, Unclean: i == 0,
				Replicas: all([3]bool{false, true, false}, [3]bool{true, false, true})},
		)
	}
	return b
}
