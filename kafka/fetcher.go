package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// The follower side of replication: for each leader node, one fetcher
// fetches every partition this node follows from it with the ordinary Fetch
// API (replica id = this node), appends the batches verbatim, and so tells
// the leader through its next fetch offset where its log ends. Before it
// fetches a partition at a new leader epoch it asks the leader where its
// own latest epoch ends (OffsetForLeaderEpoch) and truncates a divergent
// tail.

const (
	replicaFetchWait  = 500 * time.Millisecond
	replicaFetchBytes = 16 << 20
	replicaPartBytes  = 4 << 20
	replicaRetryFirst = 20 * time.Millisecond  // a new leader often needs a moment to learn it leads
	replicaRetryPause = 500 * time.Millisecond // the longest pause between failed fetches
	isrCheckPeriod    = time.Second
	// replicaFetchVer names topics by id (v13+), so a follower never takes
	// a recreated topic's data for the deleted one of the same name; v13
	// still carries the replica id field.
	replicaFetchVer    = 13
	leaderEpochLookVer = 4
)

// followed is one partition a fetcher copies.
type followed struct {
	t       *Topic
	index   int32
	epoch   int32 // the leader epoch it follows at
	p       *partition
	checked bool // its log was reconciled with this epoch's leader
}

type fetcher struct {
	s      *Server
	leader int32
	addr   string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	parts map[partitionKey]*followed
}

// replicas owns the fetchers and the leader-side ISR upkeep.
type replicas struct {
	s        *Server
	mu       sync.Mutex
	fetchers map[int32]*fetcher
	// caughtUp wakes maintainISR before its next tick: a follower outside
	// the ISR reached the high watermark and can join at once (as Kafka
	// expands the ISR on the fetch that catches up).
	caughtUp chan struct{}
}

func newReplicas(s *Server) *replicas {
	return &replicas{s: s, fetchers: make(map[int32]*fetcher), caughtUp: make(chan struct{}, 1)}
}

// followerCaughtUp asks for an ISR check now.
func (r *replicas) followerCaughtUp() {
	select {
	case r.caughtUp <- struct{}{}:
	default:
	}
}

// reconcile matches the fetchers to the metadata: this node follows every
// partition it is a replica of but does not lead.
func (r *replicas) reconcile() {
	s := r.s
	self := s.cluster.LocalNode()
	brokers := map[int32]Broker{}
	for _, b := range s.cluster.Brokers() {
		brokers[b.ID] = b
	}
	want := map[int32]map[partitionKey]*followed{}
	for _, t := range s.parts.view.Load().byName {
		for _, meta := range t.Partitions {
			if !containsID(meta.Replicas, self) {
				continue
			}
			if meta.Leader == self {
				if p, err := s.parts.get(t, meta.Index); err == nil {
					p.lead(meta.LeaderEpoch, time.Now())
					p.advanceHW(meta.ISR, self)
				}
				continue
			}
			// No longer the leader: step down now, so acks=all produces
			// waiting on this node's HW are told to go elsewhere.
			if p := s.parts.lookup(t.ID, meta.Index); p != nil && p.leading() {
				p.follow()
			}
			if meta.Leader < 0 {
				continue
			}
			if want[meta.Leader] == nil {
				want[meta.Leader] = map[partitionKey]*followed{}
			}
			want[meta.Leader][partitionKey{t.ID, meta.Index}] = &followed{t: t, index: meta.Index, epoch: meta.LeaderEpoch}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, f := range r.fetchers {
		b, ok := brokers[id]
		if _, needed := want[id]; !needed || !ok || b.address() != f.addr {
			f.stop()
			delete(r.fetchers, id)
		}
	}
	for id, parts := range want {
		b, ok := brokers[id]
		if !ok {
			continue // the leader's address is not registered yet
		}
		f := r.fetchers[id]
		if f == nil {
			ctx, cancel := context.WithCancel(s.ctx)
			f = &fetcher{s: s, leader: id, addr: b.address(), cancel: cancel, done: make(chan struct{}), parts: map[partitionKey]*followed{}}
			r.fetchers[id] = f
			go f.run(ctx)
		}
		f.set(parts)
	}
}

func (b Broker) address() string { return fmt.Sprintf("%s:%d", b.Host, b.Port) }

func containsID(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (r *replicas) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, f := range r.fetchers {
		f.stop()
		delete(r.fetchers, id)
	}
}

// set replaces the fetcher's partitions, keeping the state of those it
// already follows at the same epoch.
func (f *fetcher) set(parts map[partitionKey]*followed) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, nf := range parts {
		if old, ok := f.parts[k]; ok && old.epoch == nf.epoch {
			parts[k] = old // a topic's name and id never change
		}
	}
	f.parts = parts
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	c := f.s.peerTo(f.leader, f.addr, fmt.Sprintf("reeve-replica-%d", f.s.cluster.LocalNode()))
	defer c.close()
	log := f.s.log.With("leader", f.leader)
	pause := replicaRetryFirst
	for ctx.Err() == nil {
		err := f.fetchOnce(ctx, c)
		if err == nil || ctx.Err() != nil {
			pause = replicaRetryFirst
			continue
		}
		log.Debug("kafka: replica fetch", "err", err, "retry_in", pause)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
		pause = min(2*pause, replicaRetryPause)
	}
}

// fetchOnce reconciles new partitions' logs with the leader, then fetches
// once from it and appends what comes back.
func (f *fetcher) fetchOnce(ctx context.Context, c *peer) error {
	f.mu.Lock()
	var parts []*followed
	for _, fp := range f.parts {
		parts = append(parts, fp)
	}
	f.mu.Unlock()
	if len(parts) == 0 {
		select {
		case <-time.After(replicaFetchWait):
		case <-ctx.Done():
		}
		return nil
	}
	for _, fp := range parts {
		if fp.p == nil {
			p, err := f.s.parts.get(fp.t, fp.index)
			if err != nil {
				return err
			}
			fp.p = p
		}
		if !fp.checked {
			if err := f.truncateDivergence(ctx, c, fp); err != nil {
				return err
			}
			fp.p.follow()
			fp.checked = true
		}
	}
	self := f.s.cluster.LocalNode()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = self
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(replicaFetchWait/time.Millisecond), 1, replicaFetchBytes
	req.SessionID, req.SessionEpoch = 0, -1
	byID := map[[16]byte]int{}
	for _, fp := range parts {
		i, ok := byID[fp.t.ID]
		if !ok {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = fp.t.Name, fp.t.ID
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			byID[fp.t.ID] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch = fp.index, fp.epoch
		rp.FetchOffset, rp.LogStartOffset = fp.p.log.LogEndOffset(), fp.p.log.LogStartOffset()
		rp.PartitionMaxBytes = replicaPartBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	rctx, cancel := context.WithTimeout(ctx, replicaFetchWait+10*time.Second)
	defer cancel()
	r, err := c.request(rctx, req, replicaFetchVer)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return fmt.Errorf("fetch from node %d: %w", f.leader, kerr.ErrorForCode(resp.ErrorCode))
	}
	find := map[[16]byte]map[int32]*followed{}
	for _, fp := range parts {
		if find[fp.t.ID] == nil {
			find[fp.t.ID] = map[int32]*followed{}
		}
		find[fp.t.ID][fp.index] = fp
	}
	var errs []error
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			fp := find[rt.TopicID][rp.Partition]
			if fp == nil || ctx.Err() != nil || !f.current(fp) {
				// The fetcher was stopped or the partition moved on while
				// the fetch was out: what a deposed leader sent is not
				// appended.
				continue
			}
			if err := f.apply(ctx, fp, rp); err != nil {
				errs = append(errs, fmt.Errorf("%s-%d: %w", fp.t.Name, fp.index, err))
			}
		}
	}
	return errors.Join(errs...)
}

// current reports whether this node still follows fp from this fetcher's
// leader at fp's epoch, by the latest metadata.
func (f *fetcher) current(fp *followed) bool {
	t, ok := f.s.parts.topicByID(fp.t.ID)
	if !ok || int(fp.index) >= len(t.Partitions) {
		return false
	}
	meta := t.Partitions[fp.index]
	return meta.Leader == f.leader && meta.LeaderEpoch == fp.epoch
}

// apply appends one partition's fetched batches and adopts the leader's HW.
func (f *fetcher) apply(ctx context.Context, fp *followed, rp kmsg.FetchResponseTopicPartition) error {
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		fp.checked = false // reconcile with the leader again
		return kerr.OffsetOutOfRange
	case kerr.NotLeaderForPartition.Code, kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code, kerr.UnknownTopicOrPartition.Code,
		kerr.UnknownTopicID.Code:
		f.s.parts.changed() // the metadata here may be behind; look again
		return kerr.ErrorForCode(rp.ErrorCode)
	default:
		return kerr.ErrorForCode(rp.ErrorCode)
	}
	if len(rp.RecordBatches) > 0 {
		data := batchesBelow(rp.RecordBatches, 1<<62) // whole batches only
		if len(data) > 0 {
			last, err := fp.p.log.AppendVerbatim(data)
			if err != nil {
				fp.checked = false
				return err
			}
			// Report only what is on disk: the next fetch offset tells the
			// leader this replica has it.
			if err := fp.p.log.WaitDurable(ctx, last); err != nil {
				return err
			}
			fp.p.grew()
		}
	}
	fp.p.setFollowerHW(rp.HighWatermark)
	return nil
}

// truncateDivergence asks the leader where this replica's latest epoch
// ends in its log and cuts any local records past that point: records an
// old leader wrote that the new one never had.
func (f *fetcher) truncateDivergence(ctx context.Context, c *peer, fp *followed) error {
	l := fp.p.log
	epoch := l.LatestEpoch()
	if epoch < 0 || l.LogEndOffset() == l.LogStartOffset() {
		return nil
	}
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.s.cluster.LocalNode()
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = fp.t.Name
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = fp.index, fp.epoch, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := c.request(rctx, req, leaderEpochLookVer)
	if err != nil {
		return err
	}
	resp := r.(*kmsg.OffsetForLeaderEpochResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("offset for leader epoch: malformed answer")
	}
	ep := resp.Topics[0].Partitions[0]
	if ep.ErrorCode != 0 {
		return fmt.Errorf("offset for leader epoch: %w", kerr.ErrorForCode(ep.ErrorCode))
	}
	end := ep.EndOffset
	if ep.LeaderEpoch < 0 || end < 0 {
		end = fp.p.highWatermark() // the leader knows nothing of our epochs: keep what was committed
	}
	if end >= l.LogEndOffset() {
		return nil
	}
	to, err := batchStart(l, max(end, l.LogStartOffset()))
	if err != nil {
		return err
	}
	f.s.log.Warn("kafka: truncating a divergent log tail", "topic", fp.t.Name, "partition", fp.index,
		"from", l.LogEndOffset(), "to", to, "leader", f.leader, "leader_epoch", fp.epoch)
	if err := l.TruncateTo(to); err != nil {
		return err
	}
	fp.p.forgetProducers()
	return nil
}

// batchStart returns the base offset of the batch holding offset, so a
// truncation lands on a batch boundary.
func batchStart(l *storage.Log, offset int64) (int64, error) {
	if offset >= l.LogEndOffset() {
		return l.LogEndOffset(), nil
	}
	data, err := l.Read(offset, 1)
	if err != nil {
		return 0, err
	}
	h, err := storage.ParseBatchHeader(data)
	if err != nil {
		return 0, err
	}
	return h.BaseOffset, nil
}

// maintainISR runs on every node: for the partitions it leads, it shrinks
// the ISR of followers that fell behind (checked every isrCheckPeriod) and
// expands it with those that caught up (also as soon as one does), each as
// a conditional Raft commit.
func (r *replicas) maintainISR(ctx context.Context, lag time.Duration) {
	t := time.NewTicker(isrCheckPeriod)
	defer t.Stop()
	// committed holds the partition epoch of each change this loop
	// committed, so a pass over a view that has not applied it yet does
	// not propose the same change again.
	committed := map[partitionKey]int32{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.caughtUp:
		}
		s := r.s
		self := s.cluster.LocalNode()
		for _, tp := range s.parts.view.Load().byName {
			for _, meta := range tp.Partitions {
				if meta.Leader != self || len(meta.Replicas) < 2 {
					continue
				}
				key := partitionKey{tp.ID, meta.Index}
				if e, ok := committed[key]; ok {
					if meta.PartitionEpoch < e {
						continue // this view predates our own change
					}
					delete(committed, key)
				}
				p, err := s.parts.get(tp, meta.Index)
				if err != nil {
					continue
				}
				isr := p.isrChanges(meta, self, lag, time.Now())
				if isr == nil {
					continue
				}
				uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				got, err := s.cluster.UpdateISR(uctx, tp.ID, meta.Index, meta.LeaderEpoch, meta.PartitionEpoch, isr)
				cancel()
				if err != nil {
					s.log.Warn("kafka: ISR change not committed", "topic", tp.Name, "partition", meta.Index, "isr", isr, "err", err)
					continue
				}
				committed[key] = got.PartitionEpoch
				s.metrics.isrChanged(meta.ISR, got.ISR)
				s.log.Info("kafka: ISR changed", "topic", tp.Name, "partition", meta.Index, "from", meta.ISR, "to", got.ISR,
					"partition_epoch", got.PartitionEpoch)
				s.parts.changed()
			}
		}
	}
}
