package raft

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
)

// groupOffsets is what the machine holds for one consumer group, sorted as
// a read or a snapshot lists it.
func (d *driver) groupOffsets(group string) []GroupOffset {
	d.t.Helper()
	psm := d.m.(*partitionSM)
	psm.mu.RLock()
	defer psm.mu.RUnlock()
	if m, ok := psm.offsets[group]; ok {
		return sortedOffsets(m)
	}
	return nil
}

// offsetsOf keeps the offsets a coordinator answers for the topic that
// has id under its name: those committed for that id, and the legacy ones
// of the name (offsets.go).
func offsetsOf(offs []GroupOffset, name string, id TopicID) []GroupOffset {
	var out []GroupOffset
	for _, o := range offs {
		if o.Topic == name && (o.TopicID == id || o.Legacy()) {
			out = append(out, o)
		}
	}
	return out
}

// TestOffsets_purgeOfADeletedTopicKeepsTheRecreatedTopicsOffsets is the
// delete-and-recreate race, in both orders: topic T (id A) has a committed
// offset of group g; T is deleted and recreated (id B); g commits for the
// new T; the purge of A comes after that commit or before it. Either way
// the new offset stays, and g's offsets for T are the new one alone.
func TestOffsets_purgeOfADeletedTopicKeepsTheRecreatedTopicsOffsets(t *testing.T) {
	a, b := idFor("T-a"), idFor("T-b")
	oldOffsets := []GroupOffset{
		{Topic: "T", TopicID: a, Partition: 0, Offset: 500, LeaderEpoch: 2},
		{Topic: "T", TopicID: a, Partition: 1, Offset: 700, LeaderEpoch: 2},
	}
	newOffset := GroupOffset{Topic: "T", TopicID: b, Partition: 0, Offset: 3, Metadata: "new"}
	purgeA := removePartitionsCmd{TopicID: a, Topic: "T"}
	for _, tt := range []struct {
		name        string
		purgeBefore bool // the purge of A is applied before g's commit for B
	}{
		{"purge after the new commit", false},
		{"purge before the new commit", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newPartitionDriver(t)
			mustDo(t, d, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
				{Topic: "T", TopicID: a, Partition: 0, Replicas: []uint64{1}, Leader: 1, ISR: []uint64{1}},
			}})
			mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: oldOffsets})
			mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "other", Offsets: []GroupOffset{
				{Topic: "U", TopicID: idFor("U"), Partition: 0, Offset: 9},
			}})
			// T is deleted and recreated as B in the cluster group; B's
			// partition lands in this group beside A's, not yet purged.
			mustDo(t, d, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
				{Topic: "T", TopicID: b, Partition: 0, Replicas: []uint64{1}, Leader: 1, ISR: []uint64{1}},
			}})
			if tt.purgeBefore {
				mustDo(t, d, kindRemovePartitions, purgeA)
				if got := d.groupOffsets("g"); got != nil {
					t.Fatalf("g's offsets after the purge of A = %+v, want none", got)
				}
			}
			mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{newOffset}})
			if !tt.purgeBefore {
				// Before the purge A's offsets are still held, under A:
				// none of them reads as the new T's.
				if got := offsetsOf(d.groupOffsets("g"), "T", b); !reflect.DeepEqual(got, []GroupOffset{newOffset}) {
					t.Errorf("g's offsets for T (id B) before the purge = %+v, want only %+v", got, newOffset)
				}
				mustDo(t, d, kindRemovePartitions, purgeA)
			}

			if got := d.groupOffsets("g"); !reflect.DeepEqual(got, []GroupOffset{newOffset}) {
				t.Errorf("g's offsets = %+v, want only the new topic's %+v", got, newOffset)
			}
			if got := offsetsOf(d.groupOffsets("g"), "T", b); !reflect.DeepEqual(got, []GroupOffset{newOffset}) {
				t.Errorf("g's offsets for T (id B) = %+v, want only %+v", got, newOffset)
			}
			if got := d.groupOffsets("other"); len(got) != 1 || got[0].Topic != "U" {
				t.Errorf("another group's offsets of another topic = %+v, want its one offset of U", got)
			}
			if parts := d.partitions(); len(parts) != 1 || parts[0].TopicID != b {
				t.Errorf("partitions after the purge of A = %+v, want B's partition 0 alone", parts)
			}

			// Then B is deleted in its turn: its purge takes its offset.
			mustDo(t, d, kindRemovePartitions, removePartitionsCmd{TopicID: b, Topic: "T"})
			if got := d.groupOffsets("g"); got != nil {
				t.Errorf("g's offsets after the purge of B = %+v, want none", got)
			}
		})
	}
}

// TestOffsets_recreatedTopicInheritsNothing: until its purge comes, a
// deleted topic's offsets are held under its id, so a topic recreated
// under the same name reads none of them, even for partitions its groups
// never committed.
func TestOffsets_recreatedTopicInheritsNothing(t *testing.T) {
	a, b := idFor("T-a"), idFor("T-b")
	d := newPartitionDriver(t)
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{
		{Topic: "T", TopicID: a, Partition: 0, Offset: 500},
		{Topic: "T", TopicID: a, Partition: 1, Offset: 700},
	}})
	if got := offsetsOf(d.groupOffsets("g"), "T", b); got != nil {
		t.Errorf("offsets for the recreated T (id B), no commit yet = %+v, want none", got)
	}
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{
		{Topic: "T", TopicID: b, Partition: 1, Offset: 4},
	}})
	want := []GroupOffset{{Topic: "T", TopicID: b, Partition: 1, Offset: 4}}
	if got := offsetsOf(d.groupOffsets("g"), "T", b); !reflect.DeepEqual(got, want) {
		t.Errorf("offsets for the recreated T (id B) = %+v, want %+v", got, want)
	}
	// A commit for B replaced nothing of A's: A's offset of partition 1 is
	// still its own, for the purge to take.
	if got := offsetsOf(d.groupOffsets("g"), "T", a); len(got) != 2 {
		t.Errorf("A's offsets = %+v, want its two, untouched by B's commit", got)
	}
}

// TestOffsets_legacyEntries: commits written before offsets carried a
// topic id still apply, as legacy offsets that belong to whichever topic
// has their name; a commit with an id replaces the legacy offset of its
// name and partition; a purge drops the legacy offsets of the purged
// topic's name; and a commit without an id (a node not yet upgraded)
// replaces every offset of its name and partition, as that node does.
func TestOffsets_legacyEntries(t *testing.T) {
	a, b := idFor("T-a"), idFor("T-b")
	d := newPartitionDriver(t)
	// The JSON the previous release proposed, byte for byte.
	legacy := append([]byte{commandVersion, byte(kindCommitOffsets)},
		`{"group":"g","offsets":[{"topic":"T","partition":0,"offset":10,"leader_epoch":1},{"topic":"T","partition":1,"offset":11,"leader_epoch":1},{"topic":"V","partition":0,"offset":12,"leader_epoch":1}]}`...)
	if r := d.apply(legacy); r.Code != "" {
		t.Fatalf("legacy commit = %s: %s, want success", r.Code, r.Message)
	}
	want := []GroupOffset{
		{Topic: "T", Partition: 0, Offset: 10, LeaderEpoch: 1},
		{Topic: "T", Partition: 1, Offset: 11, LeaderEpoch: 1},
		{Topic: "V", Partition: 0, Offset: 12, LeaderEpoch: 1},
	}
	if got := d.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the legacy commit: %+v, want %+v", got, want)
	}
	if got := offsetsOf(d.groupOffsets("g"), "T", a); len(got) != 2 {
		t.Errorf("legacy offsets read for the T of today = %+v, want both of T's", got)
	}

	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", TopicID: a, Partition: 0, Offset: 20}}})
	want = []GroupOffset{
		{Topic: "T", TopicID: a, Partition: 0, Offset: 20},
		{Topic: "T", Partition: 1, Offset: 11, LeaderEpoch: 1},
		{Topic: "V", Partition: 0, Offset: 12, LeaderEpoch: 1},
	}
	if got := d.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a commit with an id: %+v, want it in place of the legacy T-0, T-1 legacy still: %+v", got, want)
	}

	// A node not yet upgraded commits T-0 by name: its offset is now T-0's,
	// whatever id the previous one had.
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", Partition: 0, Offset: 21}}})
	want[0] = GroupOffset{Topic: "T", Partition: 0, Offset: 21}
	if got := d.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a commit without an id: %+v, want %+v", got, want)
	}

	// T (A) is deleted and recreated as B; B's consumers commit T-0; the
	// purge of A drops the legacy T-1 (possibly A's) and keeps B's T-0 and
	// V's legacy offset.
	mustDo(t, d, kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", TopicID: b, Partition: 0, Offset: 1}}})
	mustDo(t, d, kindRemovePartitions, removePartitionsCmd{TopicID: a, Topic: "T"})
	want = []GroupOffset{
		{Topic: "T", TopicID: b, Partition: 0, Offset: 1},
		{Topic: "V", Partition: 0, Offset: 12, LeaderEpoch: 1},
	}
	if got := d.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Errorf("after the purge of A: %+v, want %+v", got, want)
	}

	// A purge entry of the previous release carries the id and the name,
	// as this one does; one with an empty name drops by id only.
	mustDo(t, d, kindRemovePartitions, removePartitionsCmd{TopicID: idFor("V")})
	if got := d.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Errorf("after a purge without a name: %+v, want legacy V-0 kept: %+v", got, want)
	}
}

// TestOffsets_replayIsDeterministic: replicas that apply the same entries,
// one of them recovering from a snapshot half way, hold the same offsets
// and save the same snapshot bytes.
func TestOffsets_replayIsDeterministic(t *testing.T) {
	a, b := idFor("T-a"), idFor("T-b")
	steps := []struct {
		k    kind
		body any
	}{
		{kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", Partition: 0, Offset: 1}, {Topic: "T", Partition: 1, Offset: 2}}}},
		{kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", TopicID: a, Partition: 0, Offset: 3}}}},
		{kindCommitOffsets, commitOffsetsCmd{Group: "h", Offsets: []GroupOffset{{Topic: "T", TopicID: a, Partition: 2, Offset: 4}}}},
		{kindCommitOffsets, commitOffsetsCmd{Group: "g", Offsets: []GroupOffset{{Topic: "T", TopicID: b, Partition: 0, Offset: 5}}}},
		{kindRemovePartitions, removePartitionsCmd{TopicID: a, Topic: "T"}},
		{kindCommitOffsets, commitOffsetsCmd{Group: "h", Offsets: []GroupOffset{{Topic: "T", TopicID: b, Partition: 2, Offset: 6}}}},
	}
	whole := newPartitionDriver(t)
	for _, s := range steps {
		mustDo(t, whole, s.k, s.body)
	}
	for cut := range steps {
		t.Run(fmt.Sprintf("snapshot after %d entries", cut), func(t *testing.T) {
			first := newPartitionDriver(t)
			for _, s := range steps[:cut] {
				mustDo(t, first, s.k, s.body)
			}
			second := newPartitionDriver(t)
			if err := second.m.RecoverFromSnapshot(bytes.NewReader(save(t, first.m)), nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot = %v", err)
			}
			second.index = first.index
			for _, s := range steps[cut:] {
				mustDo(t, second, s.k, s.body)
			}
			if got, want := second.snapshot(), whole.snapshot(); string(got) != string(want) {
				t.Errorf("snapshot after recovery at %d and replay = %s\nwant %s", cut, got, want)
			}
		})
	}
	want := []GroupOffset{{Topic: "T", TopicID: b, Partition: 0, Offset: 5}}
	if got := whole.groupOffsets("g"); !reflect.DeepEqual(got, want) {
		t.Errorf("g = %+v, want %+v", got, want)
	}
	want = []GroupOffset{{Topic: "T", TopicID: b, Partition: 2, Offset: 6}}
	if got := whole.groupOffsets("h"); !reflect.DeepEqual(got, want) {
		t.Errorf("h = %+v, want %+v", got, want)
	}
}

// TestCluster_purgeRacingARecreateKeepsTheNewTopicsOffsets runs the race
// through real Raft groups: a topic with a committed offset is deleted
// (its purge left to run later), recreated and committed to, and the old
// topic's purge runs after the new commit, before the recreate, or at the
// same time. In every order the new topic's offset stays and the old
// one's go.
func TestCluster_purgeRacingARecreateKeepsTheNewTopicsOffsets(t *testing.T) {
	c := newTestCluster(t, 1)
	s := c.stores[1]
	ctx := ctxT(t)
	for round, order := range []string{"after", "before", "racing", "racing", "racing"} {
		name, group := fmt.Sprintf("orders-%d", round), fmt.Sprintf("billing-%d", round)
		old, err := s.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 4, ReplicationFactor: 1})
		if err != nil {
			t.Fatal(err)
		}
		oldOffsets := make([]GroupOffset, 4)
		for p := range oldOffsets {
			oldOffsets[p] = GroupOffset{Topic: name, TopicID: old.ID, Partition: int32(p), Offset: 1000}
		}
		if err := s.CommitOffsets(ctx, group, oldOffsets); err != nil {
			t.Fatal(err)
		}
		// The delete alone, as a proposer that crashed before the purge
		// leaves it (the cluster leader's reconcile loop may purge too).
		res, err := s.propose(ctx, ClusterGroup, kindDeleteTopic, deleteTopicCmd{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg       sync.WaitGroup
			purgeErr error
		)
		purge := func() {
			defer wg.Done()
			purgeErr = s.purge(context.WithoutCancel(ctx), *res.Topic)
		}
		wg.Add(1)
		switch order {
		case "before":
			purge()
		case "racing":
			go purge()
		}
		recreated, err := s.CreateTopic(ctx, TopicSpec{Name: name, Partitions: 2, ReplicationFactor: 1})
		if err != nil {
			t.Fatal(err)
		}
		newOffset := GroupOffset{Topic: name, TopicID: recreated.ID, Partition: int32(round % 2), Offset: 7, LeaderEpoch: -1}
		if err := s.CommitOffsets(ctx, group, []GroupOffset{newOffset}); err != nil {
			t.Fatal(err)
		}
		if order == "after" {
			purge()
		}
		wg.Wait()
		if purgeErr != nil {
			t.Fatalf("round %d (purge %s): purge of the old %s = %v", round, order, name, purgeErr)
		}
		got, err := s.GroupOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, []GroupOffset{newOffset}) {
			t.Errorf("round %d (purge %s): %s's offsets = %+v, want only the recreated topic's %+v", round, order, group, got, newOffset)
		}
		if _, err := s.DeleteTopic(ctx, name); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GroupOffsets(ctx, group); err != nil || len(got) != 0 {
			t.Errorf("round %d: offsets after the recreated topic's delete = %+v, %v; want none", round, got, err)
		}
		if groups := s.OffsetGroups(); len(groups) != 0 {
			t.Errorf("round %d: OffsetGroups() = %v, want none once every offset is purged", round, groups)
		}
	}
}
