// Command prefer-label is an election policy that prefers replicas on nodes
// with a given label, say those on mains power over those on battery.
//
// Its settings name the label: label is the key and value the value to
// prefer, as in
//
//	[[election.rules]]
//	topics = "line*"
//	policy = "prefer-label.wasm"
//	settings = { label = "power", value = "mains" }
//
// A replica is eligible when it is alive and in the ISR and, when the
// leader timed out or is shutting down, is not the leader. When the leader
// is gone, the policy elects the first eligible replica in preference order
// whose node has the label. For a rebalance or a manual election it keeps
// the leader if the leader has the label and is eligible, and otherwise
// elects the first eligible replica that has it. With no eligible replica
// that has the label it decides as the built-in first-ISR policy does.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o prefer-label.wasm ./wasm/examples/prefer-label
package main

import (
	"errors"
	"reflect"

	"github.com/reeve-edge/reeve/wasm/sdk"
)

// The preferred label, from the settings.
var label, value string

// The reasons, made once from the settings so that deciding allocates
// nothing.
var electReason, keepReason string

func init() {
	sdk.Init(configure)
	sdk.Handle(decide)
}

func configure(settings map[string]string) error {
	var ok bool
	if label, ok = settings["label"]; !ok || label == "" {
		return errors.New("prefer-label: setting label (the label key to prefer) is required")
	}
	if value, ok = settings["value"]; !ok {
		return errors.New("prefer-label: setting value (the label value to prefer) is required")
	}
	electReason = "first eligible replica with " + label + "=" + value
	keepReason = "the leader has " + label + "=" + value
	return nil
}

func decide(in sdk.Input) sdk.Decision {
	if in.Reason != sdk.LeaderTimeout && in.Reason != sdk.ControlledShutdown {
		// A rebalance or a manual election: a leader that qualifies stays,
		// which saves a needless move.
		for _, r := range in.Replicas {
			if r.ID == in.Leader && eligible(r) && preferred(r) {
				return sdk.Keep(keepReason)
			}
		}
	}
	// The leader is gone, or it does not qualify: the first other replica
	// that does.
	for _, r := range in.Replicas {
		if r.ID != in.Leader && eligible(r) && preferred(r) {
			return sdk.Elect(r.ID, electReason)
		}
	}
	return sdk.FirstISR(in)
}

func eligible(r sdk.Replica) bool { return r.Alive && r.InISR }

// preferred reports whether the replica's node has the label. A node
// without the label key never matches, even when value is empty.
func preferred(r sdk.Replica) bool {
	if r.Labels == nil {
		return false
	}
	// The SDK shares one label map per node while the node's labels stay
	// the same, so the answer is remembered per map: a batch asks about
	// the same few nodes for every partition. The memo holds the maps it
	// names, so none of them is freed and its address reused.
	id := reflect.ValueOf(r.Labels).Pointer()
	for _, m := range memo {
		if m.id == id {
			return m.preferred
		}
	}
	v, ok := r.Labels[label]
	m := nodeMemo{id: id, labels: r.Labels, preferred: ok && v == value}
	if len(memo) == cap(memo) {
		memo = memo[:0] // nodes come and go: start over
	}
	memo = append(memo, m)
	return m.preferred
}

// nodeMemo is preferred's answer for one node's label map.
type nodeMemo struct {
	id        uintptr
	labels    map[string]string // keeps the map, and so its address, alive
	preferred bool
}

var memo = make([]nodeMemo, 0, 32)

func main() {}
