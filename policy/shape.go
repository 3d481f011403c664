package policy

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Shape is what a rule's topics look like in the cluster: the nodes with
// their labels, and the topics the rule matches with their partition
// counts and replication factors. A module's self-test asks it about
// batches of this shape (Sample), so that a module cannot tell the
// self-test from a real election.
type Shape struct {
	Nodes  []ShapeNode
	Topics []ShapeTopic
}

// ShapeNode is one node of a Shape.
type ShapeNode struct {
	ID     uint64
	Labels map[string]string
}

// ShapeTopic is one topic of a Shape.
type ShapeTopic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int
}

// maxSample bounds the partitions of one sampled batch.
const maxSample = 256

// Sample returns a batch of inputs drawn from shape with rng: real topic
// names and nodes when the shape has them (made-up ones otherwise), every
// reason, and replicas alive, dead, in and out of the ISR in every mix,
// each input as a controller would build it (a leader_timeout or
// controlled_shutdown round's leader is not alive).
func Sample(shape Shape, rng *rand.Rand) []Input {
	nodes := shape.Nodes
	if len(nodes) == 0 {
		nodes = []ShapeNode{{ID: 1}, {ID: 2}, {ID: 3}}
	}
	topics := shape.Topics
	if len(topics) == 0 {
		topics = []ShapeTopic{{Name: fmt.Sprintf("t%d", rng.IntN(1000)), Partitions: 1 + rng.Int32N(16), ReplicationFactor: min(3, len(nodes))}}
	}
	reasons := []Reason{ReasonLeaderTimeout, ReasonControlledShutdown, ReasonRebalance, ReasonManual}
	n := 1 + rng.IntN(maxSample)
	out := make([]Input, 0, n)
	for range n {
		t := topics[rng.IntN(len(topics))]
		rf := min(max(t.ReplicationFactor, 1), len(nodes))
		in := Input{Topic: t.Name, Partition: rng.Int32N(max(t.Partitions, 1)), LeaderEpoch: rng.Int32N(100),
			Reason: reasons[rng.IntN(len(reasons))], Unclean: rng.IntN(8) == 0}
		for _, i := range rng.Perm(len(nodes))[:rf] {
			r := Replica{ID: nodes[i].ID, Alive: rng.IntN(4) != 0, InISR: rng.IntN(4) != 0, Labels: nodes[i].Labels,
				LogEndOffset: -1}
			if r.Alive {
				r.HeartbeatAge = time.Duration(rng.Int64N(int64(3 * time.Second)))
			} else {
				r.HeartbeatAge = 10*time.Second + time.Duration(rng.Int64N(int64(time.Minute)))
			}
			if rng.IntN(2) == 0 {
				r.LogEndOffset = rng.Int64N(1 << 20)
			}
			in.Replicas = append(in.Replicas, r)
		}
		if rng.IntN(6) != 0 {
			in.Leader = in.Replicas[rng.IntN(len(in.Replicas))].ID
		}
		if in.Reason.LeaderLeaving() {
			for i := range in.Replicas {
				if in.Replicas[i].ID == in.Leader {
					in.Replicas[i].Alive = false
				}
			}
		}
		out = append(out, in)
	}
	return out
}
