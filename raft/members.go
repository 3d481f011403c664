package raft

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/raftio"
)

// AddNode adds a node to the cluster: it enters the registry as joining and
// becomes a non-voting member of every group, which counts toward no quorum.
// The node, started with join = true, registers its addresses and then
// promotes itself to a voter in each group once it has caught up there
// (promote). Calling AddNode again for the same node finishes an
// interrupted add.
//
// Unless force is set, the node must already answer at raftAddress as a
// node of this cluster (and, with [tls], with node id's certificate): a
// typo or a node never started is refused (ErrNodeUnreachable) instead of
// becoming a member that never answers.
func (s *Store) AddNode(ctx context.Context, id uint64, raftAddress string, force bool) error {
	if s.PartitionGroups() == 0 {
		return fmt.Errorf("add node %d: %w", id, ErrNotBootstrapped)
	}
	if n, ok := s.Node(id); ok && n.State == NodeRemoved {
		return fmt.Errorf("add node %d: %w: its id cannot be reused; pick a new id", id, ErrNodeRemoved)
	}
	if !force {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := s.probeTransport.probe(pctx, id, raftAddress)
		cancel()
		if err != nil {
			return fmt.Errorf("add node %d: %w: %v; start it there first with cluster.join = true (it waits to be added), "+
				"or add it anyway with force", id, ErrNodeUnreachable, err)
		}
	}
	if _, err := s.propose(ctx, ClusterGroup, kindAddNode, addNodeCmd{ID: id, RaftAddress: raftAddress}); err != nil {
		return fmt.Errorf("add node %d: %w", id, err)
	}
	for _, g := range s.Groups() {
		err := s.changeMembership(ctx, g, func(m *dragonboat.Membership) (bool, uint64) {
			_, voter := m.Nodes[id]
			_, nonVoter := m.NonVotings[id]
			return !voter && !nonVoter, m.ConfigChangeID
		}, func(ctx context.Context, ccid uint64) error {
			return s.nh.SyncRequestAddNonVoting(ctx, g, id, raftAddress, ccid)
		})
		if err != nil {
			return fmt.Errorf("add node %d to raft group %d: %w", id, g, err)
		}
	}
	s.log.Info("raft: node added to every group as a non-voter; it becomes a voter in each once it has caught up",
		"added_node_id", id, "raft_address", raftAddress, "forced", force)
	return nil
}

// probeTimeout bounds AddNode's check that the new node answers.
const probeTimeout = 10 * time.Second

// promote makes this node, a non-voter in group, a voter once it has caught
// up there: the membership read is linearizable, so it returns only after
// this replica has applied everything the group had committed when it
// asked.
//
// Dragonboat must be told at each start whether a replica is a non-voter,
// and panics when told wrong: a replica replaying its own addition as a
// non-voter must start as one, and one whose snapshot lists it as a voter
// must not. So the group stays in identity.NonVoting, and restarts start it
// as a non-voter (replaying the promotion makes it a voter again), until a
// local snapshot taken after the promotion exists; from then on restarts
// start from that snapshot as a voter. A stop between the snapshot and the
// identity write is caught at the next start (startGroup).
func (s *Store) promote(ctx context.Context, group uint64) error {
	self := s.cfg.NodeID
	m, err := s.nh.SyncGetShardMembership(ctx, group)
	if err != nil {
		return err
	}
	if _, voter := m.Nodes[self]; !voter {
		if _, ok := m.NonVotings[self]; !ok {
			return fmt.Errorf("raft group %d: node %d is not a member (was it removed?)", group, self)
		}
		if err := s.nh.SyncRequestAddReplica(ctx, group, self, s.cfg.RaftAddress, m.ConfigChangeID); err != nil {
			return err
		}
		s.log.Info("raft: caught up and promoted to a voter", "group", group)
		if m, err = s.nh.SyncGetShardMembership(ctx, group); err != nil {
			return err
		}
	}
	if err := s.snapshotPast(ctx, group, m.ConfigChangeID); err != nil {
		return err
	}
	return s.forgetNonVoting(group)
}

// snapshotPast makes sure the group's latest local snapshot is at index or
// later.
func (s *Store) snapshotPast(ctx context.Context, group, index uint64) error {
	for {
		lr, err := s.nh.GetLogReader(group)
		if err != nil {
			return err
		}
		if lr.Snapshot().Index >= index {
			return nil
		}
		_, err = s.nh.SyncRequestSnapshot(ctx, group, dragonboat.DefaultSnapshotOption)
		if err != nil && !errors.Is(err, dragonboat.ErrRejected) { // rejected: one is being taken
			return fmt.Errorf("raft group %d: snapshot: %w", group, err)
		}
		if err != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

// promotedInSnapshot reports whether the snapshot the group's replica
// started from lists this node as a voter.
func (s *Store) promotedInSnapshot(group uint64) bool {
	lr, err := s.nh.GetLogReader(group)
	if err != nil {
		return false
	}
	_, voter := lr.Snapshot().Membership.Addresses[s.cfg.NodeID]
	return voter
}

// forgetNonVoting records that group's replica starts as a voter from now on.
func (s *Store) forgetNonVoting(group uint64) error {
	return s.updateIdentity(func(id *identity) {
		id.NonVoting = slices.DeleteFunc(id.NonVoting, func(g uint64) bool { return g == group })
	})
}

// RemoveNode takes a node out of every group and marks it removed in the
// registry; its id can never be used again. Replicas of partitions on that
// node stay assigned to it until they are moved.
func (s *Store) RemoveNode(ctx context.Context, id uint64) error {
	n, ok := s.Node(id)
	if !ok {
		return fmt.Errorf("remove node %d: %w", id, ErrUnknownNode)
	}
	active := 0
	for _, m := range s.Nodes() {
		if m.State != NodeRemoved && m.ID != id {
			active++
		}
	}
	if active == 0 && n.State != NodeRemoved {
		return fmt.Errorf("remove node %d: %w", id, ErrLastNode)
	}
	if _, err := s.propose(ctx, ClusterGroup, kindRemoveNode, removeNodeCmd{ID: id}); err != nil {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	groups := s.Groups()
	slices.Reverse(groups) // the cluster group last, so the registry outlives the data groups
	for _, g := range groups {
		err := s.changeMembership(ctx, g, func(m *dragonboat.Membership) (bool, uint64) {
			_, voter := m.Nodes[id]
			_, nonVoter := m.NonVotings[id]
			return voter || nonVoter, m.ConfigChangeID
		}, func(ctx context.Context, ccid uint64) error {
			return s.nh.SyncRequestDeleteReplica(ctx, g, id, ccid)
		})
		if err != nil {
			return fmt.Errorf("remove node %d from raft group %d: %w", id, g, err)
		}
	}
	s.log.Info("raft: node removed from every group", "removed_node_id", id)
	return nil
}

// changeMembership applies one membership change to a group unless it is
// already in effect, retrying while the group has no leader or another
// change is in flight.
func (s *Store) changeMembership(ctx context.Context, group uint64,
	needed func(*dragonboat.Membership) (bool, uint64), change func(context.Context, uint64) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	return s.retry(ctx, "membership change", true, func(actx context.Context) error {
		m, err := s.Membership(ctx, group)
		if err != nil {
			return err
		}
		need, ccid := needed(m)
		if !need {
			return nil
		}
		return change(actx, ccid)
	})
}

// Membership returns a group's Raft membership, read linearizably.
func (s *Store) Membership(ctx context.Context, group uint64) (*dragonboat.Membership, error) {
	var m *dragonboat.Membership
	err := s.retry(ctx, fmt.Sprintf("raft group %d: membership", group), true, func(ctx context.Context) error {
		var err error
		m, err = s.nh.SyncGetShardMembership(ctx, group)
		return err
	})
	return m, err
}

// Snapshot asks every local replica to take a snapshot now (and compact the
// log behind it), as an operator might before a backup.
func (s *Store) Snapshot(ctx context.Context) error {
	for _, g := range s.Groups() {
		if _, err := s.nh.SyncRequestSnapshot(ctx, g, dragonboat.DefaultSnapshotOption); err != nil &&
			!errors.Is(err, dragonboat.ErrRejected) {
			return fmt.Errorf("raft group %d: snapshot: %w", g, err)
		}
	}
	return nil
}

// TransferLeadership hands every group this node leads to another member,
// for a controlled shutdown, and waits (bounded by ctx) until it no longer
// leads any. pick chooses the target among the group's other members.
func (s *Store) TransferLeadership(ctx context.Context, pick func(candidates []uint64) uint64) error {
	var asked []uint64 // groups handed over; one with nobody to take it stays
	for _, g := range s.Groups() {
		if leader, ok := s.GroupLeader(g); !ok || leader != s.cfg.NodeID {
			continue
		}
		m, err := s.Membership(ctx, g)
		if err != nil {
			return err
		}
		var others []uint64
		for id := range m.Nodes {
			if id != s.cfg.NodeID {
				others = append(others, id)
			}
		}
		slices.Sort(others)
		target := pick(others)
		if target == 0 {
			continue
		}
		if err := s.nh.RequestLeaderTransfer(g, target); err != nil {
			return fmt.Errorf("raft group %d: transfer leadership to node %d: %w", g, target, err)
		}
		asked = append(asked, g)
	}
	for {
		leads := 0
		for _, g := range asked {
			if leader, ok := s.GroupLeader(g); ok && leader == s.cfg.NodeID {
				leads++
			}
		}
		if leads == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still leading %d raft group(s): %w", leads, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The transport's member table (memberTable, transport_guard.go) follows
// each local replica's applied membership. Dragonboat's system events say
// when one may have changed; GetNodeHostInfo then gives every running
// group's voters without a network round trip. It leaves out non-voters
// (a node AddNode added that has not promoted itself yet) and witnesses
// (which reeve never adds); they are read with a
// linearizable membership query whenever a group's config change index
// moves, at most once per membersRetry per group while no quorum answers.
const (
	membersRefresh = time.Second     // refresh even without an event, as a safety net
	membersRetry   = 5 * time.Second // between failed reads of a group's non-voters and witnesses
	membersRead    = time.Second     // bounds one refresh's reads of them, over all groups
)

// watchMembers keeps s.members current until the Store closes.
func (s *Store) watchMembers() {
	defer s.done.Done()
	ctx, cancel := s.stopContext()
	defer cancel()
	tick := time.NewTicker(membersRefresh)
	defer tick.Stop()
	extras := make(map[uint64]*extraMembers)
	for {
		s.refreshMembers(ctx, extras)
		select {
		case <-s.membersChanged:
		case <-tick.C:
		case <-s.stop:
			return
		}
	}
}

// extraMembers are a group's non-voters and witnesses, as last read.
type extraMembers struct {
	index   uint64 // the config change index they were read at
	tried   time.Time
	members map[uint64]string
}

func (s *Store) refreshMembers(ctx context.Context, extras map[uint64]*extraMembers) {
	info := s.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true})
	if info == nil {
		return // closing
	}
	stale := s.publishMembers(info.ShardInfoList, extras)
	if len(stale) == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, membersRead)
	defer cancel()
	changed := false
	now := time.Now()
	for _, g := range stale {
		e := extras[g]
		if e == nil {
			e = &extraMembers{}
			extras[g] = e
		}
		if now.Sub(e.tried) < membersRetry || rctx.Err() != nil {
			continue
		}
		e.tried = now
		m, err := s.nh.SyncGetShardMembership(rctx, g)
		if err != nil {
			continue
		}
		e.index = m.ConfigChangeID
		e.members = cloneMembers(m.NonVotings, m.Witnesses)
		changed = true
	}
	if changed {
		s.publishMembers(info.ShardInfoList, extras)
	}
}

// publishMembers replaces the transport's member table with the running
// groups' members and returns the groups whose non-voters and witnesses
// were read at an older config change index.
func (s *Store) publishMembers(shards []dragonboat.ShardInfo, extras map[uint64]*extraMembers) (stale []uint64) {
	groups := make(map[uint64]map[uint64]string, len(shards))
	for _, si := range shards {
		if si.Pending {
			groups[si.ShardID] = nil
			continue
		}
		e := extras[si.ShardID]
		var more map[uint64]string
		if e != nil {
			more = e.members // possibly older: kept until read again
		}
		if e == nil || e.index != si.ConfigChangeIndex {
			stale = append(stale, si.ShardID)
		}
		groups[si.ShardID] = cloneMembers(more, si.Replicas)
	}
	for g := range extras {
		if _, ok := groups[g]; !ok {
			delete(extras, g)
		}
	}
	registry := make(map[uint64]string)
	removed := make(map[uint64]bool)
	for _, n := range s.Nodes() {
		if n.State == NodeRemoved {
			removed[n.ID] = true
		} else if n.RaftAddress != "" {
			registry[n.ID] = n.RaftAddress
		}
	}
	s.members.publish(groups, registry, removed)
	return stale
}

// systemListener receives Dragonboat's system events: those that may
// change which groups run here or who their members are refresh the
// transport's member table. Dragonboat calls it from one goroutine, which
// it must not block.
type systemListener Store

var _ raftio.ISystemEventListener = (*systemListener)(nil)

func (l *systemListener) membersMayHaveChanged() {
	select {
	case l.membersChanged <- struct{}{}:
	default:
	}
}

func (l *systemListener) NodeReady(raftio.NodeInfo)             { l.membersMayHaveChanged() }
func (l *systemListener) NodeUnloaded(raftio.NodeInfo)          { l.membersMayHaveChanged() }
func (l *systemListener) NodeDeleted(raftio.NodeInfo)           { l.membersMayHaveChanged() }
func (l *systemListener) MembershipChanged(raftio.NodeInfo)     { l.membersMayHaveChanged() }
func (l *systemListener) SnapshotRecovered(raftio.SnapshotInfo) { l.membersMayHaveChanged() }

func (l *systemListener) NodeHostShuttingDown()                       {}
func (l *systemListener) ConnectionEstablished(raftio.ConnectionInfo) {}
func (l *systemListener) ConnectionFailed(raftio.ConnectionInfo)      {}
func (l *systemListener) SendSnapshotStarted(raftio.SnapshotInfo)     {}
func (l *systemListener) SendSnapshotCompleted(raftio.SnapshotInfo)   {}
func (l *systemListener) SendSnapshotAborted(raftio.SnapshotInfo)     {}
func (l *systemListener) SnapshotReceived(raftio.SnapshotInfo)        {}
func (l *systemListener) SnapshotCreated(raftio.SnapshotInfo)         {}
func (l *systemListener) SnapshotCompacted(raftio.SnapshotInfo)       {}
func (l *systemListener) LogCompacted(raftio.EntryInfo)               {}
func (l *systemListener) LogDBCompacted(raftio.EntryInfo)             {}
