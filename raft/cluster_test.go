package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCluster runs real NodeHosts, each on its own 127.0.0.x address with
// real TCP between them, in this process.
type testCluster struct {
	t      testing.TB
	cfgs   map[uint64]Config
	stores map[uint64]*Store
}

// freeAddr returns a host:port on ip that nothing listens on right now,
// and that it has not returned before in this test binary: the kernel may
// hand a port it just gave back out again at once.
func freeAddr(t testing.TB, ip string) string {
	t.Helper()
	for {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatalf("listen on %s: %v", ip, err)
		}
		addr := l.Addr().String()
		l.Close()
		givenMu.Lock()
		_, seen := givenAddrs[addr]
		givenAddrs[addr] = struct{}{}
		givenMu.Unlock()
		if !seen {
			return addr
		}
	}
}

var (
	givenMu    sync.Mutex
	givenAddrs = map[string]struct{}{}
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("REEVE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func nodeConfig(t testing.TB, id uint64, dir string) Config {
	return Config{
		NodeID:             id,
		ClusterName:        "test",
		RaftAddress:        freeAddr(t, fmt.Sprintf("127.0.0.%d", id)),
		KafkaAddress:       fmt.Sprintf("127.0.0.%d:9092", id),
		Labels:             map[string]string{"rack": fmt.Sprintf("r%d", id)},
		DataDir:            dir,
		PartitionGroups:    4,
		RTT:                10 * time.Millisecond,
		ElectionRTT:        20,
		HeartbeatRTT:       2,
		SnapshotEntries:    20,
		CompactionOverhead: 5,
		Logger:             testLogger(t),
	}
}

// newTestCluster starts n nodes and waits until every one has joined;
// tweaks, if any, change each node's configuration first.
func newTestCluster(t testing.TB, n int, tweaks ...func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cfgs: make(map[uint64]Config), stores: make(map[uint64]*Store)}
	members := make(map[uint64]string)
	for id := uint64(1); id <= uint64(n); id++ {
		cfg := nodeConfig(t, id, t.TempDir())
		for _, tweak := range tweaks {
			tweak(&cfg)
		}
		c.cfgs[id] = cfg
		members[id] = cfg.RaftAddress
	}
	for id, cfg := range c.cfgs {
		cfg.InitialMembers = members
		c.cfgs[id] = cfg
	}
	for id := range c.cfgs {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			s.Close()
		}
	})
	for id := range c.cfgs {
		c.waitReady(id)
	}
	return c
}

func (c *testCluster) start(id uint64) *Store {
	c.t.Helper()
	s, err := Open(c.cfgs[id])
	if err != nil {
		c.t.Fatalf("Open(node %d) = %v", id, err)
	}
	c.stores[id] = s
	return s
}

func (c *testCluster) stop(id uint64) {
	c.stores[id].Close()
	delete(c.stores, id)
}

func (c *testCluster) waitReady(id uint64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.stores[id].WaitReady(ctx); err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// topicEverywhere waits until every running node sees the topic and all of
// its partitions as want describes.
func (c *testCluster) topicEverywhere(want Topic) {
	c.t.Helper()
	for id, s := range c.stores {
		eventually(c.t, fmt.Sprintf("node %d sees topic %s", id, want.Name), func() error {
			got, ok := s.Topic(want.Name)
			if !ok {
				return fmt.Errorf("topic missing")
			}
			if got.ID != want.ID || got.Partitions != want.Partitions {
				return fmt.Errorf("topic = %+v, want %+v", got, want)
			}
			if n := len(s.Partitions(got)); n != int(want.Partitions) {
				return fmt.Errorf("%d of %d partitions", n, want.Partitions)
			}
			return nil
		})
	}
}

func TestCluster_topicCreatedOnOneNodeIsVisibleOnAll(t *testing.T) {
	c := newTestCluster(t, 3)
	topic, err := c.stores[2].CreateTopic(ctxT(t), TopicSpec{Name: "orders", Partitions: 6, ReplicationFactor: 3,
		Config: map[string]string{"retention.ms": "60000"}})
	if err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	c.topicEverywhere(topic)

	leads := map[uint64]int{}
	for _, p := range c.stores[3].Partitions(topic) {
		if p.Leader != p.Replicas[0] || !slices.Equal(p.ISR, p.Replicas) || len(p.Replicas) != 3 {
			t.Errorf("partition %d = %+v, want first replica leading and ISR = replicas", p.Partition, p)
		}
		if p.LeaderEpoch != 0 || p.PartitionEpoch != 0 {
			t.Errorf("partition %d epochs = %d/%d, want 0/0", p.Partition, p.LeaderEpoch, p.PartitionEpoch)
		}
		if g := c.stores[1].GroupOf(topic.ID, p.Partition); g < 2 || g > 5 {
			t.Errorf("GroupOf(%d) = %d, want 2..5", p.Partition, g)
		}
		leads[p.Leader]++
	}
	for id := uint64(1); id <= 3; id++ {
		if leads[id] != 2 {
			t.Errorf("node %d leads %d partitions, want 2 (leaders %v)", id, leads[id], leads)
		}
	}
	got, _ := c.stores[1].Topic("orders")
	if got.Config["retention.ms"] != "60000" {
		t.Errorf("topic config = %v, want retention.ms=60000", got.Config)
	}
	for id, s := range c.stores {
		nodes := s.Nodes()
		if len(nodes) != 3 {
			t.Fatalf("node %d registry = %+v, want 3 nodes", id, nodes)
		}
		for _, n := range nodes {
			if n.State != NodeActive || n.KafkaAddress != fmt.Sprintf("127.0.0.%d:9092", n.ID) || n.Labels["rack"] != fmt.Sprintf("r%d", n.ID) {
				t.Errorf("node %d registry entry = %+v", id, n)
			}
		}
	}

	if _, err := c.stores[3].CreateTopic(ctxT(t), TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1}); !errors.Is(err, ErrTopicExists) {
		t.Errorf("CreateTopic(existing) = %v, want ErrTopicExists", err)
	}
}

func TestCluster_replicationFactorAboveNodeCountIsRefused(t *testing.T) {
	c := newTestCluster(t, 3)
	_, err := c.stores[1].CreateTopic(ctxT(t), TopicSpec{Name: "wide", Partitions: 1, ReplicationFactor: 4})
	if !errors.Is(err, ErrReplicationFactor) {
		t.Fatalf("CreateTopic(rf=4) = %v, want ErrReplicationFactor", err)
	}
	t.Logf("error reads: %v", err)
	if _, ok := c.stores[1].Topic("wide"); ok {
		t.Errorf("refused topic exists")
	}
}

func TestCluster_staleConditionalUpdateIsRejected(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "sensors", Partitions: 1, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	c.topicEverywhere(topic)
	p, _ := c.stores[1].Partition(topic.ID, 0)
	newLeader := p.Replicas[1]
	move := PartitionUpdate{TopicID: topic.ID, Partition: 0, ExpectedLeaderEpoch: 0, ExpectedPartitionEpoch: 0, Leader: &newLeader}

	got, err := c.stores[2].UpdatePartition(ctx, move)
	if err != nil {
		t.Fatalf("UpdatePartition = %v", err)
	}
	if got.Leader != newLeader || got.LeaderEpoch != 1 || got.PartitionEpoch != 1 {
		t.Fatalf("after move = %+v, want leader %d epochs 1/1", got, newLeader)
	}

	// The same proposal again (a duplicate, or a stale controller) is refused.
	_, err = c.stores[3].UpdatePartition(ctx, move)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("UpdatePartition(duplicate) = %v, want ErrStale", err)
	}
	// An ISR shrink at the right epochs applies and bumps only the partition epoch.
	shrunk, err := c.stores[3].UpdatePartition(ctx, PartitionUpdate{TopicID: topic.ID, Partition: 0,
		ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 1, ISR: []uint64{newLeader, p.Replicas[2]}})
	if err != nil || shrunk.LeaderEpoch != 1 || shrunk.PartitionEpoch != 2 || len(shrunk.ISR) != 2 {
		t.Fatalf("shrink = %+v, %v; want epochs 1/2 and 2 in ISR", shrunk, err)
	}
	// The old leader, now out of the ISR, cannot be elected cleanly ...
	old := p.Replicas[0]
	_, err = c.stores[1].UpdatePartition(ctx, PartitionUpdate{TopicID: topic.ID, Partition: 0,
		ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 2, Leader: &old})
	if !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("UpdatePartition(leader outside ISR) = %v, want ErrInvalidUpdate", err)
	}
	// ... nor can a node that is not a replica.
	stranger := uint64(9)
	_, err = c.stores[1].UpdatePartition(ctx, PartitionUpdate{TopicID: topic.ID, Partition: 0,
		ExpectedLeaderEpoch: 1, ExpectedPartitionEpoch: 2, Leader: &stranger, Unclean: true})
	if !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("UpdatePartition(non-replica) = %v, want ErrInvalidUpdate", err)
	}
	// Every replica agrees on the final state.
	for id, s := range c.stores {
		eventually(t, fmt.Sprintf("node %d converges", id), func() error {
			q, _ := s.Partition(topic.ID, 0)
			if q.PartitionEpoch != 2 || q.Leader != newLeader {
				return fmt.Errorf("partition = %+v", q)
			}
			return nil
		})
	}
}

func TestCluster_batchedUpdatesReportEachItem(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "batch", Partitions: 16, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	c.topicEverywhere(topic)
	var updates []PartitionUpdate
	for p := int32(0); p < topic.Partitions; p++ {
		st, _ := c.stores[1].Partition(topic.ID, p)
		epoch := int32(0)
		if p%4 == 3 {
			epoch = 7 // stale on purpose
		}
		updates = append(updates, PartitionUpdate{TopicID: topic.ID, Partition: p, ExpectedLeaderEpoch: epoch,
			ExpectedPartitionEpoch: epoch, ISR: st.Replicas[:2]})
	}
	res, err := c.stores[2].UpdatePartitions(ctx, updates)
	if err != nil {
		t.Fatalf("UpdatePartitions = %v", err)
	}
	for i, r := range res {
		stale := i%4 == 3
		if stale != errors.Is(r.Err, ErrStale) {
			t.Errorf("result %d err = %v, want stale %v", i, r.Err, stale)
		}
		if r.Partition.Partition != int32(i) {
			t.Errorf("result %d is for partition %d", i, r.Partition.Partition)
		}
		if !stale && len(r.Partition.ISR) != 2 {
			t.Errorf("result %d ISR = %v, want 2 replicas", i, r.Partition.ISR)
		}
	}
}

func TestCluster_deleteTopicDropsPartitionsAndFreesTheName(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	first, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "scratch", Partitions: 8, ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	c.topicEverywhere(first)
	if _, err := c.stores[3].DeleteTopic(ctx, "scratch"); err != nil {
		t.Fatalf("DeleteTopic = %v", err)
	}
	for id, s := range c.stores {
		eventually(t, fmt.Sprintf("node %d drops the topic", id), func() error {
			if _, ok := s.Topic("scratch"); ok {
				return fmt.Errorf("topic still listed")
			}
			if n := len(s.Partitions(first)); n != 0 {
				return fmt.Errorf("%d partitions remain", n)
			}
			return nil
		})
	}
	if _, err := c.stores[2].DeleteTopic(ctx, "scratch"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("DeleteTopic(again) = %v, want ErrUnknownTopic", err)
	}
	second, err := c.stores[2].CreateTopic(ctx, TopicSpec{Name: "scratch", Partitions: 2, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic(reused name) = %v", err)
	}
	if second.ID == first.ID {
		t.Errorf("reused name kept topic id %s", first.ID)
	}
	c.topicEverywhere(second)
}

func TestCluster_addAndRemoveNode(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	before, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "before", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}

	cfg := nodeConfig(t, 4, t.TempDir())
	cfg.Join = true
	c.cfgs[4] = cfg
	if err := c.stores[2].AddNode(ctx, 4, cfg.RaftAddress, false); !errors.Is(err, ErrNodeUnreachable) {
		t.Fatalf("AddNode(4) before node 4 runs = %v, want ErrNodeUnreachable", err)
	}
	if _, ok := c.stores[2].Node(4); ok {
		t.Error("a refused add left node 4 in the registry")
	}
	// The new node starts first and waits to be added.
	start := time.Now()
	c.start(4)
	if err := c.stores[2].AddNode(ctx, 4, cfg.RaftAddress, false); err != nil {
		t.Fatalf("AddNode(4) = %v", err)
	}
	t.Logf("add took %v", time.Since(start))
	c.waitReady(4)
	t.Logf("join took %v", time.Since(start))
	c.topicEverywhere(before)
	// It joined every group as a non-voter and promotes itself in each.
	waitVoter(t, c.stores[1], 4)
	t.Logf("promotion took %v", time.Since(start))
	eventually(t, "node 4's identity lists no non-voting group", func() error {
		if nv := c.stores[4].identity().NonVoting; len(nv) > 0 {
			return fmt.Errorf("non_voting = %v", nv)
		}
		return nil
	})
	// A restart after the promotion starts every replica as a voter, even
	// one that stopped before it could forget it had joined as a
	// non-voter (its identity file still listing every group).
	c.stop(4)
	groups := c.stores[1].Groups()
	b, err := json.Marshal(identity{Cluster: "test", NodeID: 4, PartitionGroups: 4, NonVoting: groups})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "raft", identityFile), b, 0o640); err != nil {
		t.Fatal(err)
	}
	c.start(4)
	c.waitReady(4)
	if nv := c.stores[4].identity().NonVoting; len(nv) > 0 {
		t.Errorf("after the restart, non_voting = %v", nv)
	}
	eventually(t, "node 4 leads the cluster group (a non-voter cannot)", func() error {
		if l, ok := c.stores[1].GroupLeader(ClusterGroup); ok && l == 4 {
			return nil
		}
		if err := c.stores[1].nh.RequestLeaderTransfer(ClusterGroup, 4); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		return errors.New("not yet")
	})
	for _, g := range c.stores[1].Groups() {
		m, err := c.stores[4].Membership(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Nodes) != 4 || len(m.NonVotings) != 0 {
			t.Errorf("group %d voters %v, non-voters %v, want 4 voters", g, m.Nodes, m.NonVotings)
		}
	}
	wide, err := c.stores[4].CreateTopic(ctx, TopicSpec{Name: "wide", Partitions: 4, ReplicationFactor: 4})
	if err != nil {
		t.Fatalf("CreateTopic(rf=4 after add) = %v", err)
	}
	c.topicEverywhere(wide)

	start = time.Now()
	if err := c.stores[1].RemoveNode(ctx, 3); err != nil {
		t.Fatalf("RemoveNode(3) = %v", err)
	}
	t.Logf("remove took %v", time.Since(start))
	c.stop(3)
	for _, g := range c.stores[1].Groups() {
		m, err := c.stores[1].Membership(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.Nodes[3]; ok || len(m.Nodes) != 3 {
			t.Errorf("group %d members after remove = %v", g, m.Nodes)
		}
	}
	if n, _ := c.stores[4].Node(3); n.State != NodeRemoved {
		t.Errorf("registry entry of node 3 = %+v, want removed", n)
	}
	// New topics place replicas only on the remaining nodes.
	after, err := c.stores[4].CreateTopic(ctx, TopicSpec{Name: "after", Partitions: 6, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic(after remove) = %v", err)
	}
	for _, r := range after.Assignment {
		if slices.Contains(r, 3) {
			t.Errorf("assignment %v uses removed node 3", after.Assignment)
		}
	}
	if _, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "too-wide", Partitions: 1, ReplicationFactor: 4}); !errors.Is(err, ErrReplicationFactor) {
		t.Errorf("CreateTopic(rf=4 on 3 live) = %v, want ErrReplicationFactor", err)
	}
	if err := c.stores[1].AddNode(ctx, 3, "127.0.0.3:1", true); !errors.Is(err, ErrNodeRemoved) {
		t.Errorf("AddNode(removed id) = %v, want ErrNodeRemoved", err)
	}
}

// waitVoter waits until node id is a voter, and no non-voter, in every
// group, as s reads it linearizably.
func waitVoter(t *testing.T, s *Store, id uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("node %d is a voter in every group", id), func() error {
		for _, g := range s.Groups() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m, err := s.Membership(ctx, g)
			cancel()
			if err != nil {
				return err
			}
			if _, ok := m.Nodes[id]; !ok {
				return fmt.Errorf("group %d: voters %v, non-voters %v", g, m.Nodes, m.NonVotings)
			}
			if _, ok := m.NonVotings[id]; ok {
				return fmt.Errorf("group %d: node %d still listed as a non-voter", g, id)
			}
		}
		return nil
	})
}

// A node added by force that never comes (the phantom a forged admin
// request used to add as a voter) costs the cluster no quorum: it is a
// non-voter. Even a one-node cluster keeps committing, before and after a
// restart, and the phantom can be removed again.
func TestCluster_forcedAddOfAnAbsentNodeCostsNoQuorum(t *testing.T) {
	c := newTestCluster(t, 1)
	ctx := ctxT(t)
	phantom := freeAddr(t, "127.0.0.99")
	if err := c.stores[1].AddNode(ctx, 99, phantom, false); !errors.Is(err, ErrNodeUnreachable) {
		t.Fatalf("AddNode(99) = %v, want ErrNodeUnreachable", err)
	}
	if err := c.stores[1].AddNode(ctx, 99, phantom, true); err != nil {
		t.Fatalf("AddNode(99, force) = %v", err)
	}
	for _, g := range c.stores[1].Groups() {
		m, err := c.stores[1].Membership(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.NonVotings[99]; !ok || len(m.Nodes) != 1 {
			t.Errorf("group %d: voters %v, non-voters %v; want node 99 a non-voter only", g, m.Nodes, m.NonVotings)
		}
	}
	if _, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "still-writable", Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatalf("CreateTopic after the forced add = %v", err)
	}
	c.stop(1)
	c.start(1)
	c.waitReady(1)
	if _, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "after-restart", Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatalf("CreateTopic after a restart = %v", err)
	}
	if err := c.stores[1].RemoveNode(ctx, 99); err != nil {
		t.Fatalf("RemoveNode(99) = %v", err)
	}
	for _, g := range c.stores[1].Groups() {
		m, err := c.stores[1].Membership(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.NonVotings[99]; ok {
			t.Errorf("group %d still lists node 99 as a non-voter", g)
		}
	}
}

func TestCluster_restartedNodeRecoversFromDiskAndSnapshot(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	var topics []Topic
	for i := range 5 {
		tp, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: fmt.Sprintf("t%d", i), Partitions: 8, ReplicationFactor: 3})
		if err != nil {
			t.Fatal(err)
		}
		topics = append(topics, tp)
	}
	for _, tp := range topics {
		c.topicEverywhere(tp)
	}
	groupsBefore := map[string]uint64{}
	for _, tp := range topics {
		for p := range tp.Partitions {
			groupsBefore[fmt.Sprintf("%s/%d", tp.Name, p)] = c.stores[3].GroupOf(tp.ID, p)
		}
	}
	if err := c.stores[3].Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot = %v", err)
	}
	c.stop(3)

	// Changes made while node 3 is down reach it after the restart.
	late, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "late", Partitions: 3, ReplicationFactor: 3})
	if err != nil {
		t.Fatal(err)
	}
	topics = append(topics, late)
	// Node 3 may have led partition 0's group: the update then waits out a
	// Raft election, and a try that timed out (not repeated by the store,
	// as updates are conditional) is tried again.
	p0, _ := c.stores[1].Partition(topics[0].ID, 0)
	for try := 0; ; try++ {
		_, err := c.stores[2].UpdatePartition(ctx, PartitionUpdate{TopicID: topics[0].ID, Partition: 0, ISR: p0.Replicas[:2]})
		if err == nil {
			break
		}
		if cur, _ := c.stores[2].Partition(topics[0].ID, 0); slices.Equal(cur.ISR, p0.Replicas[:2]) {
			break // the timed-out try was applied
		}
		if try == 10 {
			t.Fatal(err)
		}
	}

	s := c.start(3)
	c.waitReady(3)
	for _, tp := range topics {
		c.topicEverywhere(tp)
	}
	for _, tp := range topics[:5] {
		for p := range tp.Partitions {
			if g := s.GroupOf(tp.ID, p); g != groupsBefore[fmt.Sprintf("%s/%d", tp.Name, p)] {
				t.Errorf("group of %s/%d moved from %d to %d across restart", tp.Name, p, groupsBefore[fmt.Sprintf("%s/%d", tp.Name, p)], g)
			}
		}
	}
	eventually(t, "node 3 has the ISR change made while it was down", func() error {
		q, _ := s.Partition(topics[0].ID, 0)
		if q.PartitionEpoch != 1 || len(q.ISR) != 2 {
			return fmt.Errorf("partition = %+v", q)
		}
		return nil
	})
	snaps, _ := os.ReadDir(c.cfgs[3].DataDir + "/raft")
	if len(snaps) == 0 {
		t.Errorf("no raft state under %s", c.cfgs[3].DataDir)
	}
}

func TestOpen_refusesAnotherNodesDataDir(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig(t, 1, dir)
	cfg.InitialMembers = map[uint64]string{1: cfg.RaftAddress}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := nodeConfig(t, 2, dir)
	other.InitialMembers = map[uint64]string{2: other.RaftAddress}
	if _, err := Open(other); !errors.Is(err, ErrIdentity) {
		t.Fatalf("Open(node 2 on node 1's dir) = %v, want ErrIdentity", err)
	}
}

func TestCluster_createPartitionsGrowsATopic(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "grow", Partitions: 2, ReplicationFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	grown, err := c.stores[2].CreatePartitions(ctx, "grow", 5)
	if err != nil {
		t.Fatalf("CreatePartitions = %v", err)
	}
	if grown.ID != topic.ID || grown.Partitions != 5 || len(grown.Assignment) != 5 {
		t.Fatalf("grown topic = %+v", grown)
	}
	for i := range topic.Assignment {
		if !slices.Equal(grown.Assignment[i], topic.Assignment[i]) {
			t.Errorf("partition %d moved from %v to %v", i, topic.Assignment[i], grown.Assignment[i])
		}
	}
	c.topicEverywhere(grown)
	if _, err := c.stores[3].CreatePartitions(ctx, "grow", 3); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("CreatePartitions(shrink) = %v, want ErrInvalidTopic", err)
	}
	if _, err := c.stores[3].CreatePartitions(ctx, "nope", 3); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("CreatePartitions(unknown) = %v, want ErrUnknownTopic", err)
	}
}

// TestCluster_partitionGroupsMismatchAtBootstrapIsFatal: founding nodes
// configured with different partition_groups cannot both have their way;
// the one the cluster refuses is told once through Fatal, with both
// values, instead of retrying for ever.
func TestCluster_partitionGroupsMismatchAtBootstrapIsFatal(t *testing.T) {
	c := &testCluster{t: t, cfgs: make(map[uint64]Config), stores: make(map[uint64]*Store)}
	members := make(map[uint64]string)
	for id := uint64(1); id <= 2; id++ {
		cfg := nodeConfig(t, id, t.TempDir())
		cfg.PartitionGroups = int(4 * id) // node 1: 4, node 2: 8
		c.cfgs[id] = cfg
		members[id] = cfg.RaftAddress
	}
	for id, cfg := range c.cfgs {
		cfg.InitialMembers = members
		c.cfgs[id] = cfg
		c.start(id)
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			s.Close()
		}
	})
	var fatal []error
	deadline := time.After(20 * time.Second)
	for len(fatal) == 0 {
		select {
		case err := <-c.stores[1].Fatal():
			fatal = append(fatal, err)
		case err := <-c.stores[2].Fatal():
			fatal = append(fatal, err)
		case <-deadline:
			t.Fatal("neither node was told of the mismatch")
		}
	}
	err := fatal[0]
	if !errors.Is(err, ErrBootstrapMismatch) || !strings.Contains(err.Error(), "partition_groups = 4") || !strings.Contains(err.Error(), "partition_groups = 8") {
		t.Errorf("Fatal() = %v, want ErrBootstrapMismatch naming both counts", err)
	}
	select {
	case err := <-c.stores[1].Fatal():
		t.Errorf("both nodes were refused; the second: %v", err)
	case err := <-c.stores[2].Fatal():
		t.Errorf("both nodes were refused; the second: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}
