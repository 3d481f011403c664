package appliance_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOffsets_recreatedTopicStartsEmptyAndKeepsItsOwn drives a one-node
// reeve with a Kafka client: group g commits to topic T, T is deleted and
// created again under its name; the new T has no offsets of g, and g's
// commit to it is stored in Raft under the new T's id (not the name
// alone, which a later purge of the old T would take) and fetched back.
func TestOffsets_recreatedTopicStartsEmptyAndKeepsItsOwn(t *testing.T) {
	s := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	commit := func(at int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: "T", Partition: 0, At: at, LeaderEpoch: -1})
		offs.Add(kadm.Offset{Topic: "T", Partition: 1, At: at + 1, LeaderEpoch: -1})
		resp, err := adm.CommitOffsets(ctx, "g", offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("CommitOffsets(g, T at %d) = %v", at, err)
		}
	}
	fetch := func() map[int32]int64 {
		t.Helper()
		resp, err := adm.FetchOffsets(ctx, "g")
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("FetchOffsets(g) = %v", err)
		}
		out := map[int32]int64{}
		resp.Each(func(o kadm.OffsetResponse) {
			if o.Topic != "T" {
				t.Errorf("FetchOffsets(g) lists %s/%d; g committed only to T", o.Topic, o.Partition)
			}
			out[o.Partition] = o.At
		})
		return out
	}
	create := func() {
		t.Helper()
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, "T"); err != nil {
			t.Fatal(err)
		}
	}

	create()
	commit(100)
	if got := fetch(); got[0] != 100 || got[1] != 101 {
		t.Fatalf("g's offsets of T = %v, want 0:100 1:101", got)
	}
	resp, err := adm.DeleteTopics(ctx, "T")
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	create()
	if got := fetch(); len(got) != 0 {
		t.Errorf("g's offsets of the recreated T before any commit = %v, want none", got)
	}
	commit(7)
	if got := fetch(); got[0] != 7 || got[1] != 8 {
		t.Errorf("g's offsets of the recreated T = %v, want 0:7 1:8", got)
	}

	topic, ok := s.Store().Topic("T")
	if !ok {
		t.Fatal("the store has no topic T")
	}
	stored, err := s.Store().GroupOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("stored offsets of g = %+v, want T's two", stored)
	}
	for _, o := range stored {
		if o.TopicID != topic.ID {
			t.Errorf("stored offset %+v has topic id %s, want the recreated T's %s", o, o.TopicID, topic.ID)
		}
	}
}
