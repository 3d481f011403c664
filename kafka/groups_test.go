package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupConsumer is one member of a consumer group, recording which
// partitions it owns over time.
type groupConsumer struct {
	cl *kgo.Client

	mu       sync.Mutex
	owned    map[int32]bool
	revoked  map[int32]int // times each partition was revoked from it
	records  int
	assigned chan struct{}
}

func startGroupConsumer(t *testing.T, s *Server, group, topic string, balancer kgo.GroupBalancer) *groupConsumer {
	t.Helper()
	gc := &groupConsumer{owned: map[int32]bool{}, revoked: map[int32]int{}, assigned: make(chan struct{}, 16)}
	gc.cl = newClient(t, s, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.Balancers(balancer),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			for _, p := range m[topic] {
				gc.owned[p] = true
			}
			gc.mu.Unlock()
			gc.assigned <- struct{}{}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			for _, p := range m[topic] {
				delete(gc.owned, p)
				gc.revoked[p]++
			}
			gc.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			gc.mu.Lock()
			for _, p := range m[topic] {
				delete(gc.owned, p)
			}
			gc.mu.Unlock()
		}),
	)
	go func() {
		for {
			fs := gc.cl.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			gc.mu.Lock()
			gc.records += fs.NumRecords()
			gc.mu.Unlock()
		}
	}()
	return gc
}

func (gc *groupConsumer) partitions() map[int32]bool {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	out := map[int32]bool{}
	for p := range gc.owned {
		out[p] = true
	}
	return out
}

// waitBalanced waits until the consumers own disjoint sets covering all n
// partitions, each owning n/len(cs).
func waitBalanced(t *testing.T, n int, cs ...*groupConsumer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[int32]int{}
		ok := true
		for _, c := range cs {
			ps := c.partitions()
			if len(ps) != n/len(cs) {
				ok = false
			}
			for p := range ps {
				seen[p]++
			}
		}
		if ok && len(seen) == n {
			for _, k := range seen {
				if k != 1 {
					ok = false
				}
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, c := range cs {
				got = append(got, fmt.Sprint(c.partitions()))
			}
			t.Fatalf("group never balanced %d partitions over %d members: %v", n, len(cs), got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func groupServer(t *testing.T) *Server {
	s, _ := startServer(t, func(c *Config) {
		c.DefaultPartitions = 12
		c.InitialRebalanceDelay = 100 * time.Millisecond
		c.MaxRequestBytes = 4 << 20 // room for an oversized protocol metadata in one frame
	})
	return s
}

func TestGroups_threeMembersShareTwelvePartitionsAndALeaverMovesWork(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{{"range", kgo.RangeBalancer()}, {"cooperative-sticky", kgo.CooperativeStickyBalancer()}} {
		t.Run(bal.name, func(t *testing.T) {
			s := groupServer(t)
			ctx := ctxT(t)
			prod := newClient(t, s, kgo.DefaultProduceTopic("work"))
			for i := range 1200 {
				prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}, nil)
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			a := startGroupConsumer(t, s, "g", "work", bal.b)
			b := startGroupConsumer(t, s, "g", "work", bal.b)
			c := startGroupConsumer(t, s, "g", "work", bal.b)
			waitBalanced(t, 12, a, b, c)

			before := map[*groupConsumer]map[int32]bool{a: a.partitions(), b: b.partitions()}
			c.cl.Close() // leaves the group
			waitBalanced(t, 12, a, b)
			if bal.name == "cooperative-sticky" {
				// Sticky and cooperative: a and b keep what they had and
				// nothing of theirs was revoked.
				for _, gc := range []*groupConsumer{a, b} {
					now := gc.partitions()
					for p := range before[gc] {
						if !now[p] {
							t.Errorf("partition %d moved away from a remaining member", p)
						}
					}
					gc.mu.Lock()
					for p, n := range gc.revoked {
						if before[gc][p] && n > 0 {
							t.Errorf("partition %d was revoked from a remaining member %d times", p, n)
						}
					}
					gc.mu.Unlock()
				}
			}
		})
	}
}

func TestGroups_commitsAreFetchedBack(t *testing.T) {
	s := groupServer(t)
	ctx := ctxT(t)
	prod := newClient(t, s, kgo.DefaultProduceTopic("commits"))
	for i := range 120 {
		prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, s, kgo.ConsumerGroup("committer"), kgo.ConsumeTopics("commits"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	n := 0
	for n < 120 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		n += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("CommitUncommittedOffsets = %v", err)
	}
	adm := kadm.NewClient(newClient(t, s))
	offs, err := adm.FetchOffsets(ctx, "committer")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 120 {
		t.Errorf("committed offsets sum to %d, want 120", total)
	}
	groups, err := adm.DescribeGroups(ctx, "committer")
	if err != nil || groups["committer"].State != "Stable" || len(groups["committer"].Members) != 1 {
		t.Errorf("DescribeGroups = %+v, %v", groups, err)
	}
	// The test cluster lists a second, unreachable broker, so ListGroups
	// (sent to every broker) reports a shard error beside its answer.
	listed, err := adm.ListGroups(ctx)
	if _, ok := listed["committer"]; !ok {
		t.Errorf("ListGroups = %+v, %v", listed, err)
	}
	if _, err := adm.DeleteGroups(ctx, "committer"); err != nil {
		t.Fatal(err)
	}
	if r, _ := adm.DeleteGroups(ctx, "committer"); r["committer"].Err == nil {
		t.Errorf("DeleteGroups of a live group succeeded")
	}
}

func TestGroups_badInputGetsKafkaCodes(t *testing.T) {
	s := groupServer(t)
	ctx := ctxT(t)
	cl := newClient(t, s)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	join := func(member string, meta []byte) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = "bad", member, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := join("", make([]byte, maxProtocolBytes+1)); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("join with oversized metadata = %v, want INVALID_REQUEST", kerr.ErrorForCode(r.ErrorCode))
	}
	r := join("", []byte{0})
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		t.Fatalf("first join = %v, want MEMBER_ID_REQUIRED with an id", kerr.ErrorForCode(r.ErrorCode))
	}
	id := r.MemberID
	r = join(id, []byte{0})
	if r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != id {
		t.Fatalf("second join = %+v", r)
	}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = "bad", id, 99
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "t"
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}
	commit.Topics = append(commit.Topics, ct)
	cr, err := commit.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := cr.Topics[0].Partitions[0].ErrorCode; code != kerr.IllegalGeneration.Code {
		t.Errorf("commit for an unknown generation = %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "bad", "someone-evicted", 1
	hr, err := hb.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if hr.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat from an unknown member = %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(hr.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "bad", id, 7
	sr, err := sync.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if sr.ErrorCode != kerr.IllegalGeneration.Code {
		t.Errorf("sync with a wrong generation = %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(sr.ErrorCode))
	}
}

// joinAlone joins a one-member group with raw requests and syncs as its
// leader, returning the member id and generation.
func joinAlone(t *testing.T, cl *kgo.Client, group string, instance *string, session int32) (string, int32) {
	t.Helper()
	ctx := ctxT(t)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.ProtocolType, req.InstanceID = group, "consumer", instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = session, 10000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode == kerr.MemberIDRequired.Code {
		req.MemberID = resp.MemberID
		if resp, err = req.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	if resp.ErrorCode != 0 {
		t.Fatalf("join = %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation, sync.InstanceID = group, resp.MemberID, resp.Generation, instance
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: resp.MemberID, MemberAssignment: []byte("all")}}
	sr, err := sync.RequestWith(ctx, cl)
	if err != nil || sr.ErrorCode != 0 || string(sr.MemberAssignment) != "all" {
		t.Fatalf("sync = %+v, %v", sr, err)
	}
	return resp.MemberID, resp.Generation
}

func heartbeat(t *testing.T, cl *kgo.Client, group, member string, instance *string, generation int32) int16 {
	t.Helper()
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.InstanceID, hb.Generation = group, member, instance, generation
	resp, err := hb.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ErrorCode
}

func TestGroups_staticMemberRejoinFencesItsOldIDWithoutARebalance(t *testing.T) {
	s := groupServer(t)
	cl := newClient(t, s)
	instance := kmsg.StringPtr("line-3-plc")
	oldID, gen := joinAlone(t, cl, "static", instance, 10000)

	// The same instance joins again, as after a restart: a new member id,
	// the same generation, and the old id is fenced.
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.ProtocolType, req.InstanceID = "static", "consumer", instance
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{1}}}
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != 0 || resp.MemberID == oldID || resp.MemberID == "" {
		t.Fatalf("static rejoin = %v, member %q (old %q)", kerr.ErrorForCode(resp.ErrorCode), resp.MemberID, oldID)
	}
	if code := heartbeat(t, cl, "static", oldID, instance, gen); code != kerr.FencedInstanceID.Code {
		t.Errorf("heartbeat with the old member id = %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}
}

func TestGroups_silentMemberIsEvictedAfterItsSession(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a 6 s session")
	}
	s := groupServer(t)
	cl := newClient(t, s)
	id, gen := joinAlone(t, cl, "silent", nil, int32(minSessionTimeout/time.Millisecond))
	if code := heartbeat(t, cl, "silent", id, nil, gen); code != 0 {
		t.Fatalf("heartbeat while alive = %v", kerr.ErrorForCode(code))
	}
	time.Sleep(minSessionTimeout + time.Second)
	if code := heartbeat(t, cl, "silent", id, nil, gen); code != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat from an evicted member = %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	groups, err := kadm.NewClient(cl).DescribeGroups(ctxT(t), "silent")
	if err != nil {
		t.Fatal(err)
	}
	if g := groups["silent"]; g.State != "Empty" || len(g.Members) != 0 {
		t.Errorf("group after eviction = %s with %d members, want Empty with none", g.State, len(g.Members))
	}
}
