package api

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestTopicToken_roundTripsEveryKafkaName is a property test: for random
// names over Kafka's whole topic alphabet, the token is one NATS token (no
// '.', '*', '>' or white space), decodes back to the name, and distinct
// names get distinct tokens.
func TestTopicToken_roundTripsEveryKafkaName(t *testing.T) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
	r := rand.New(rand.NewPCG(9, 10))
	seen := map[string]string{}
	names := []string{"a", "a.b", "a_b", "a-b", "a..b", ".a", "a.", "...x", "__consumer_offsets", "line1.temp-sensor_3"}
	for range 20000 {
		n := 1 + r.IntN(40)
		if r.IntN(100) == 0 {
			n = 249
		}
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		names = append(names, b.String())
	}
	for _, name := range names {
		tok := TopicToken(name)
		if strings.ContainsAny(tok, ".*> \t\r\n") || tok == "" {
			t.Fatalf("TopicToken(%q) = %q, not a single NATS token", name, tok)
		}
		if back := TopicFromToken(tok); back != name {
			t.Fatalf("TopicFromToken(TopicToken(%q)) = %q", name, back)
		}
		if other, dup := seen[tok]; dup && other != name {
			t.Fatalf("%q and %q share the token %q", name, other, tok)
		}
		seen[tok] = name
	}
}

// TestEventSubject_perKind pins each kind's subject: partition events by
// topic token and partition, node events by node, policy events by the
// policy's token even though they name the node that ran the policy.
func TestEventSubject_perKind(t *testing.T) {
	for _, tt := range []struct {
		ev   Event
		want string
	}{
		{Event{Type: EventLeaderChanged, Topic: "line1.temp", Partition: 3, Node: 2}, "reeve.site1.leader_changed.line1~temp.3"},
		{Event{Type: EventPartitionOffline, Topic: "a_b-c", Partition: 0}, "reeve.site1.partition_offline.a_b-c.0"},
		{Event{Type: EventNodeDown, Node: 7}, "reeve.site1.node_down.7"},
		{Event{Type: EventPolicyFellBack, Policy: "prefer label*.wasm", Node: 2}, "reeve.site1.policy_fell_back.prefer_label_~wasm"},
	} {
		if got := EventSubject("reeve", "site1", tt.ev); got != tt.want {
			t.Errorf("EventSubject(%s) = %q, want %q", tt.ev.Type, got, tt.want)
		}
	}
}
