package kafka

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// offsetServer starts a server whose cluster lists it alone, so the
// clients' FindCoordinator never goes to the unreachable second broker.
func offsetServer(t *testing.T, mutate ...func(*Config)) (*Server, *memCluster) {
	t.Helper()
	s, mc := startServer(t, mutate...)
	mc.alone.Store(true)
	return s, mc
}

// commitStandalone commits offsets of group as a consumer outside any
// generation does, and fails the test on any error.
func commitStandalone(t *testing.T, adm *kadm.Client, group, topic string, at map[int32]int64) {
	t.Helper()
	var offs kadm.Offsets
	for p, o := range at {
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctxT(t), group, offs)
	if err != nil {
		t.Fatalf("CommitOffsets(%s, %s %v) = %v", group, topic, at, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("CommitOffsets(%s, %s %v): %v", group, topic, at, err)
	}
}

// fetched lists a group's committed offsets as OffsetFetch (every topic)
// answers them: "topic/partition=offset", sorted.
func fetched(t *testing.T, adm *kadm.Client, group string) []string {
	t.Helper()
	resp, err := adm.FetchOffsets(ctxT(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets(%s) = %v", group, err)
	}
	var out []string
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err != nil {
			t.Errorf("FetchOffsets(%s): %s/%d: %v", group, o.Topic, o.Partition, o.Err)
		}
		out = append(out, fmt.Sprintf("%s/%d=%d", o.Topic, o.Partition, o.At))
	})
	sort.Strings(out)
	return out
}

// fetchPartitions asks OffsetFetch for the given partitions of one topic
// and returns each one's committed offset (-1 for none). The request is
// filled for v0-v7 (one group) and v8+ (groups), whichever kgo sends.
func fetchPartitions(t *testing.T, cl *kgo.Client, group, topic string, parts ...int32) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, parts
	req.Topics = append(req.Topics, rt)
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = group
	gt := kmsg.NewOffsetFetchRequestGroupTopic()
	gt.Topic, gt.Partitions = topic, parts
	rg.Topics = append(rg.Topics, gt)
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	if resp.Version >= 8 {
		if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
			t.Fatalf("OffsetFetch v%d(%s, %s) = %+v, want one group without error", resp.Version, group, topic, resp.Groups)
		}
		for _, rt := range resp.Groups[0].Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = rp.Offset
			}
		}
		return out
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch v%d(%s, %s) = %v", resp.Version, group, topic, kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			out[rp.Partition] = rp.Offset
		}
	}
	return out
}

// stored returns what the cluster holds for a group, and how many times
// SyncTopics was called.
func (m *memCluster) stored(group string) ([]CommittedOffset, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]CommittedOffset(nil), m.offsets[group]...), m.syncs
}

func deleteTopic(t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	resp, err := adm.DeleteTopics(ctxT(t), topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("DeleteTopics(%s) = %v", topic, err)
	}
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestOffsets_recreatedTopicKeepsItsOffsetsWhateverTheOldPurgeOrder is the
// delete-and-recreate race through the Kafka API: group g committed to
// topic T; T is deleted and created again; the purge of the old T's
// offsets (which Raft applies later, in the group's own Raft group) comes
// after g committed to the new T, or before. Either way the new T never
// shows the old T's offsets and keeps its own.
func TestOffsets_recreatedTopicKeepsItsOffsetsWhateverTheOldPurgeOrder(t *testing.T) {
	for _, tt := range []struct {
		name        string
		purgeBefore bool
	}{
		{"purge after the new commit", false},
		{"purge before the new commit", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, mc := offsetServer(t)
			mc.holdPurges = true
			cl := newClient(t, s)
			adm := kadm.NewClient(cl)
			ctx := ctxT(t)
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, "T"); err != nil {
				t.Fatal(err)
			}
			commitStandalone(t, adm, "g", "T", map[int32]int64{0: 50, 1: 60})
			if got, want := fetched(t, adm, "g"), []string{"T/0=50", "T/1=60"}; !equal(got, want) {
				t.Fatalf("offsets of g before the delete = %v, want %v", got, want)
			}
			deleteTopic(t, adm, "T")
			if got := fetched(t, adm, "g"); len(got) != 0 {
				t.Errorf("offsets of g with T deleted, its purge pending = %v, want none", got)
			}
			if _, err := adm.CreateTopic(ctx, 2, 1, nil, "T"); err != nil {
				t.Fatal(err)
			}
			if got := fetchPartitions(t, cl, "g", "T", 0, 1); got[0] != -1 || got[1] != -1 {
				t.Errorf("the recreated T's offsets before any commit = %v, want -1 for both: nothing is inherited", got)
			}
			if tt.purgeBefore {
				mc.purgeHeld()
			}
			commitStandalone(t, adm, "g", "T", map[int32]int64{0: 5})
			if !tt.purgeBefore {
				mc.purgeHeld()
			}
			if got, want := fetched(t, adm, "g"), []string{"T/0=5"}; !equal(got, want) {
				t.Errorf("offsets of g after the purge = %v, want %v", got, want)
			}
			if got := fetchPartitions(t, cl, "g", "T", 0, 1); got[0] != 5 || got[1] != -1 {
				t.Errorf("the recreated T's offsets = %v, want 0:5 and 1:-1", got)
			}
			if stored, _ := mc.stored("g"); len(stored) != 1 || stored[0].Offset != 5 {
				t.Errorf("stored offsets of g = %+v, want the new T's one", stored)
			}
		})
	}
}

// TestOffsets_consumerOfARecreatedTopicStartsFromItsReset: a consumer
// group that read the old topic to offset 4 reads the recreated topic
// from its start (its reset policy), not from the old topic's offset 4,
// while the old topic's purge is still pending.
func TestOffsets_consumerOfARecreatedTopicStartsFromItsReset(t *testing.T) {
	s, mc := offsetServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	mc.holdPurges = true
	adm := kadm.NewClient(newClient(t, s))
	ctx := ctxT(t)
	produce := func(n int) {
		t.Helper()
		prod := newClient(t, s, kgo.DefaultProduceTopic("events"))
		for i := range n {
			prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(10)
	commitStandalone(t, adm, "readers", "events", map[int32]int64{0: 4})
	deleteTopic(t, adm, "events")
	produce(10) // auto-creates the new "events"
	cons := newClient(t, s, kgo.ConsumerGroup("readers"), kgo.ConsumeTopics("events"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	n := 0
	for n < 10 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != int64(n) {
				t.Errorf("record %d has offset %d; the consumer did not start at the new topic's start", n, r.Offset)
			}
			n++
		})
	}
}

// TestOffsetCommit_unknownTopicIsRefused: as in Kafka, a commit for a topic
// that does not exist is UNKNOWN_TOPIC_OR_PARTITION and stores nothing, so
// no offset waits under a name for a topic created later.
func TestOffsetCommit_unknownTopicIsRefused(t *testing.T) {
	s, mc := offsetServer(t)
	cl := newClient(t, s)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = "g", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "nowhere"
	rt.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: -1}}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("commit for a missing topic = %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	if groups := mc.OffsetGroups(); len(groups) != 0 {
		t.Errorf("groups with offsets after a refused commit = %v, want none", groups)
	}
}

// TestOffsetFetch_legacyOffsetsBelongToTheTopicOfTheirName: offsets stored
// before ids were kept (zero id) are answered for the topic that has
// their name now; those of a name no topic has are not listed.
func TestOffsetFetch_legacyOffsetsBelongToTheTopicOfTheirName(t *testing.T) {
	s, mc := offsetServer(t)
	adm := kadm.NewClient(newClient(t, s))
	if _, err := adm.CreateTopic(ctxT(t), 2, 1, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := mc.CommitOffsets(context.Background(), "g", []CommittedOffset{
		{Topic: "kept", Partition: 0, Offset: 11, LeaderEpoch: -1},
		{Topic: "kept", Partition: 1, Offset: 12, LeaderEpoch: -1},
		{Topic: "gone", Partition: 0, Offset: 13, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := fetched(t, adm, "g"), []string{"kept/0=11", "kept/1=12"}; !equal(got, want) {
		t.Errorf("offsets of g = %v, want %v", got, want)
	}
	if _, syncs := mc.stored("g"); syncs != 0 {
		t.Errorf("SyncTopics called %d times; legacy offsets need no sync", syncs)
	}
}

// TestOffsetFetch_laggingViewIsSyncedBeforeHidingOffsets: a coordinator
// whose view still has the old T (it has not applied the recreation yet)
// sees an offset under an id it does not know for T; it syncs its view
// and answers the offset, rather than hiding it and sending the consumer
// to its reset policy.
func TestOffsetFetch_laggingViewIsSyncedBeforeHidingOffsets(t *testing.T) {
	s, mc := offsetServer(t)
	adm := kadm.NewClient(newClient(t, s))
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "T"); err != nil {
		t.Fatal(err)
	}
	mc.freezeView()
	if err := mc.DeleteTopic(ctx, "T"); err != nil {
		t.Fatal(err)
	}
	recreated, err := mc.CreateTopic(ctx, TopicSpec{Name: "T", Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Committed through another coordinator that knew the new T.
	if err := mc.CommitOffsets(ctx, "g", []CommittedOffset{{Topic: "T", TopicID: recreated.ID, Partition: 0, Offset: 21, LeaderEpoch: -1}}); err != nil {
		t.Fatal(err)
	}
	if got, want := fetched(t, adm, "g"), []string{"T/0=21"}; !equal(got, want) {
		t.Errorf("offsets of g = %v, want %v", got, want)
	}
	if _, syncs := mc.stored("g"); syncs != 1 {
		t.Errorf("SyncTopics called %d times, want once", syncs)
	}
}
