package raft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/lni/dragonboat/v4"
	dbconfig "github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/reeve-edge/reeve/config"
)

// Config is what a Store needs to run; appliance fills it from the TOML file.
type Config struct {
	NodeID      uint64
	ClusterName string
	RaftAddress string // host:port other nodes dial
	ListenAddr  string // bind address when it differs from RaftAddress
	// SourceIP, when set, is the source address of the connections this
	// node dials to others, so each node is a distinct endpoint even when
	// several share a host; nil lets the kernel choose.
	SourceIP     net.IP
	KafkaAddress string // advertised Kafka address, recorded in the registry
	Labels       map[string]string
	DataDir      string // the Store keeps its files under DataDir/raft
	// InitialMembers maps node id to Raft address for a new cluster; it is
	// ignored once the node has state on disk.
	InitialMembers map[uint64]string
	// Join starts a node that an operator added with AddNode.
	Join bool
	// NodeCert, when set, is this node's certificate from [tls]: the Raft
	// transport then speaks mutual TLS with every peer and believes a
	// peer only as the node its certificate names (transport_tls.go). It
	// must name NodeID of ClusterName. Nil: plain TCP.
	NodeCert        *config.NodeCert
	PartitionGroups int // K, used only when bootstrapping a new cluster

	RTT                time.Duration
	ElectionRTT        uint64
	HeartbeatRTT       uint64
	SnapshotEntries    uint64
	CompactionOverhead uint64

	// Live reports whether a node is alive, for replica placement. Nil means
	// every active registered node is live.
	Live   func(nodeID uint64) bool
	Logger *slog.Logger
	// Metrics receives the store's proposal metrics (docs/metrics.md);
	// nil keeps them in a set nobody reads.
	Metrics *metrics.Set
}

// Store is this node's replica of the cluster's metadata: one Dragonboat
// NodeHost with the cluster group and K partition groups. Reads come from the
// local replica (stale-ok) unless a method says it is linearizable.
type Store struct {
	cfg  Config
	log  *slog.Logger
	nh   *dragonboat.NodeHost
	feed *feed
	mets storeMetrics

	cluster *clusterSM
	mu      sync.RWMutex
	groups  map[uint64]*partitionSM // by group id, set as groups start
	k       int                     // partition groups, 0 until known

	leaders       sync.Map      // group id -> uint64 leader node id, from Raft events
	leaderChanged chan struct{} // signalled (never blocking) when a group's leader changes

	members        *memberTable  // what the transport checks senders against (watchMembers)
	membersChanged chan struct{} // signalled (never blocking) by Dragonboat's system events

	pidMu           sync.Mutex // guards the local block of producer ids
	pidNext, pidEnd int64

	dropMu sync.Mutex // guards drops
	drops  map[uint64]*dropReport

	idMu  sync.Mutex // guards id, and orders its writes
	id    identity
	idDir string

	// probeTransport dials a new node's raft address for AddNode; it
	// has the node's deployment id, certificate and member table, and
	// never listens.
	probeTransport *Transport

	registered atomic.Bool
	ready      chan struct{} // closed once groups run and this node is registered
	fatal      chan error    // capacity 1: why the node can never join (Fatal)
	stop       chan struct{}
	done       sync.WaitGroup
	closeOnce  sync.Once
}

// Open starts the node's Raft groups and returns without waiting for a quorum;
// WaitReady tells when the node has joined. A new cluster is bootstrapped from
// cfg.InitialMembers; a node with state on disk restarts from it.
func Open(cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		cfg:    cfg,
		log:    cfg.Logger.With("node_id", cfg.NodeID),
		feed:   newFeed(),
		mets:   newStoreMetrics(cfg.Metrics),
		groups: make(map[uint64]*partitionSM),
		drops:  make(map[uint64]*dropReport),
		ready:  make(chan struct{}),
		fatal:  make(chan error, 1),
		stop:   make(chan struct{}),

		leaderChanged:  make(chan struct{}, 1),
		membersChanged: make(chan struct{}, 1),
	}
	s.members = &memberTable{self: cfg.NodeID}
	if !cfg.Join && len(cfg.InitialMembers) > 0 {
		s.members.bootstrap = cloneMembers(cfg.InitialMembers)
	}
	var ptls *peerTLS
	if cfg.NodeCert != nil {
		leaf := cfg.NodeCert.Cert.Leaf
		if leaf == nil {
			return nil, errors.New("raft: the node certificate has no parsed leaf; load it with config.LoadNodeCert")
		}
		if id, ok := config.NodeOf(leaf, cfg.ClusterName); !ok || id != cfg.NodeID {
			return nil, fmt.Errorf("raft: the node certificate does not name node %d of cluster %q (it needs the URI SAN %s)",
				cfg.NodeID, cfg.ClusterName, config.NodeURI(cfg.ClusterName, cfg.NodeID))
		}
		ptls = newPeerTLS(cfg.NodeCert, cfg.ClusterName)
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create raft dir: %w", err)
	}
	if err := s.loadIdentity(dir); err != nil {
		return nil, err
	}
	s.probeTransport = &Transport{deployment: deploymentID(cfg.ClusterName), members: s.members, tls: ptls}
	installLogger(cfg.Logger)
	// Before Pebble opens: it writes at open, and fails on a full disk.
	res := newReserve(cfg.DataDir, s.log)
	res.adjust()
	nhc := dbconfig.NodeHostConfig{
		DeploymentID:        deploymentID(cfg.ClusterName),
		NodeHostDir:         dir,
		WALDir:              dir,
		RTTMillisecond:      uint64(max(cfg.RTT, time.Millisecond) / time.Millisecond),
		RaftAddress:         cfg.RaftAddress,
		ListenAddress:       cfg.ListenAddr,
		RaftEventListener:   (*leaderListener)(s),
		SystemEventListener: (*systemListener)(s),
		Expert: dbconfig.ExpertConfig{
			Engine: dbconfig.EngineConfig{ExecShards: 2, CommitShards: 2, ApplyShards: 2, SnapshotShards: 2, CloseShards: 2},
			LogDB:  smallLogDB(),
			// reeve's own transport: it notices a restarted peer before the
			// next send instead of tripping Dragonboat's circuit breaker.
			TransportFactory: &transportFactory{log: s.log, members: s.members, limits: defaultTransportLimits, tls: ptls,
				dropped: s.mets.dropped, source: cfg.SourceIP},
		},
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		return nil, fmt.Errorf("start raft node host on %s: %w", cfg.RaftAddress, err)
	}
	s.nh = nh
	machine, err := s.startGroup(ClusterGroup, func() sm.IStateMachine { return newClusterSM(s.feed) })
	if err != nil {
		nh.Close()
		return nil, err
	}
	s.cluster = machine.(*clusterSM)
	if k := s.identity().PartitionGroups; k > 0 {
		// A restart: the group count is known, start every group now so the
		// node can catch up even before a quorum is back.
		if err := s.startPartitionGroups(k); err != nil {
			nh.Close()
			return nil, err
		}
	}
	s.done.Add(4)
	go func() {
		defer s.done.Done()
		res.run(s.stop)
	}()
	go s.watchMembers()
	go s.joinLoop()
	go s.reconcileLoop()
	return s, nil
}

// smallLogDB sizes Pebble for a metadata store on a small host: one LogDB
// shard and small memtables instead of Dragonboat's multi-GiB default.
func smallLogDB() dbconfig.LogDBConfig {
	c := dbconfig.GetTinyMemLogDBConfig()
	c.Shards = 1
	c.KVWriteBufferSize = 2 << 20
	c.KVMaxWriteBufferNumber = 2
	c.KVLRUCacheSize = 4 << 20
	c.MaxSaveBufferSize = 4 << 20
	return c
}

func deploymentID(cluster string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("reeve/" + cluster))
	return h.Sum64()
}

func (s *Store) groupConfig(group uint64) dbconfig.Config {
	return dbconfig.Config{
		ReplicaID:          s.cfg.NodeID,
		ShardID:            group,
		ElectionRTT:        s.cfg.ElectionRTT,
		HeartbeatRTT:       s.cfg.HeartbeatRTT,
		CheckQuorum:        true,
		PreVote:            true,
		SnapshotEntries:    s.cfg.SnapshotEntries,
		CompactionOverhead: s.cfg.CompactionOverhead,
	}
}

// startGroup starts the local replica of a group with a state machine from
// newSM, and returns the state machine in use: from disk on a restart, as a
// joiner when the operator added this node, else as a founding member.
// A joiner starts as a non-voter (AddNode adds it as one) and stays one,
// across restarts, until it has promoted itself (promote).
func (s *Store) startGroup(group uint64, newSM func() sm.IStateMachine) (sm.IStateMachine, error) {
	var members map[uint64]string
	join := false
	switch {
	case s.nh.HasNodeInfo(group, s.cfg.NodeID):
	case s.cfg.Join:
		join = true
		if !slices.Contains(s.identity().NonVoting, group) {
			if err := s.updateIdentity(func(id *identity) { id.NonVoting = append(id.NonVoting, group) }); err != nil {
				return nil, fmt.Errorf("start raft group %d: %w", group, err)
			}
		}
	default:
		members = s.cfg.InitialMembers
	}
	nonVoting := slices.Contains(s.identity().NonVoting, group)
	machine, err := s.startReplica(group, members, join, nonVoting, newSM)
	if err != nil || !nonVoting || !s.promotedInSnapshot(group) {
		return machine, err
	}
	// The node stopped between its promotion's snapshot and forgetting
	// that it joined as a non-voter (promote): the snapshot it started
	// from lists it as a voter, so it must run as one. Nothing has read
	// the state machine yet; the restart gets a fresh one.
	s.log.Info("raft: promoted to a voter before the last stop; restarting the replica as one", "group", group)
	if err := s.nh.StopReplica(group, s.cfg.NodeID); err != nil {
		return nil, fmt.Errorf("restart raft group %d as a voter: %w", group, err)
	}
	if err := s.forgetNonVoting(group); err != nil {
		return nil, fmt.Errorf("restart raft group %d as a voter: %w", group, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		machine, err = s.startReplica(group, nil, false, false, newSM)
		if !errors.Is(err, dragonboat.ErrShardAlreadyExist) || time.Now().After(deadline) {
			return machine, err
		}
		time.Sleep(10 * time.Millisecond) // the stopped replica is still unloading
	}
}

// startReplica is one Dragonboat StartReplica of the group.
func (s *Store) startReplica(group uint64, members map[uint64]string, join, nonVoting bool,
	newSM func() sm.IStateMachine) (sm.IStateMachine, error) {
	var machine sm.IStateMachine
	cfg := s.groupConfig(group)
	cfg.IsNonVoting = nonVoting
	err := s.nh.StartReplica(members, join, func(uint64, uint64) sm.IStateMachine {
		machine = newSM()
		return machine
	}, cfg)
	if errors.Is(err, dragonboat.ErrReplicaRemoved) {
		return nil, fmt.Errorf("start raft group %d: %w: node %d was removed from the cluster; move %s aside and add the host back with `reeve node add` under a new node id",
			group, ErrNodeRemoved, s.cfg.NodeID, s.cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("start raft group %d: %w", group, err)
	}
	return machine, nil
}

func (s *Store) startPartitionGroups(k int) error {
	if s.cfg.Join { // record every joiner at once rather than one write each
		var joining []uint64
		for g := ClusterGroup + 1; g <= ClusterGroup+uint64(k); g++ {
			if !s.nh.HasNodeInfo(g, s.cfg.NodeID) && !slices.Contains(s.identity().NonVoting, g) {
				joining = append(joining, g)
			}
		}
		if len(joining) > 0 {
			if err := s.updateIdentity(func(id *identity) { id.NonVoting = append(id.NonVoting, joining...) }); err != nil {
				return fmt.Errorf("start raft groups: %w", err)
			}
		}
	}
	for g := ClusterGroup + 1; g <= ClusterGroup+uint64(k); g++ {
		machine, err := s.startGroup(g, func() sm.IStateMachine { return newPartitionSM(g, s.feed) })
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.groups[g] = machine.(*partitionSM)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.k = k
	s.mu.Unlock()
	return nil
}

// joinLoop brings the node into the cluster: it bootstraps the cluster group
// if this is a new cluster, learns the partition-group count, starts those
// groups, and registers this node's addresses. It retries until done, since
// a quorum may take a while to form.
func (s *Store) joinLoop() {
	defer s.done.Done()
	ctx, cancel := s.stopContext()
	defer cancel()
	step := func(what string, f func(context.Context) error) bool {
		for attempt := 0; ; attempt++ {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			err := f(cctx)
			ccancel()
			if err == nil {
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			if attempt > 0 && attempt%10 == 0 {
				s.log.Warn("raft: still waiting to join the cluster", "step", what, "err", err)
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-ctx.Done():
				return false
			}
		}
	}
	id := s.identity()
	if !s.cfg.Join && len(s.cfg.InitialMembers) > 0 && id.PartitionGroups == 0 {
		var mismatch error
		ok := step("bootstrap", func(ctx context.Context) error {
			_, err := s.propose(ctx, ClusterGroup, kindBootstrap, bootstrapCmd{Name: s.cfg.ClusterName, PartitionGroups: s.cfg.PartitionGroups})
			if errors.Is(err, ErrBootstrapMismatch) {
				mismatch = err // no retry will change the answer
				return nil
			}
			return err
		})
		if mismatch != nil {
			s.log.Error("raft: this node cannot join: the cluster was bootstrapped with other settings", "err", mismatch)
			s.fatal <- fmt.Errorf("raft: bootstrap: %w", mismatch)
			return
		}
		if !ok {
			return
		}
	}
	if id.PartitionGroups == 0 {
		var k int
		ok := step("learn partition groups", func(ctx context.Context) error {
			if err := s.Barrier(ctx, ClusterGroup); err != nil {
				return err
			}
			s.cluster.mu.RLock()
			k = s.cluster.st.PartitionGroups
			s.cluster.mu.RUnlock()
			if k == 0 {
				return ErrNotBootstrapped
			}
			return nil
		})
		if !ok {
			return
		}
		if err := s.startPartitionGroups(k); err != nil {
			s.log.Error("raft: cannot start partition groups; the node stays out of the cluster", "err", err)
			return
		}
		if err := s.updateIdentity(func(id *identity) { id.PartitionGroups = k }); err != nil {
			s.log.Error("raft: cannot record the partition-group count; a restart will relearn it", "err", err)
		}
	}
	ok := step("register", func(ctx context.Context) error {
		_, err := s.propose(ctx, ClusterGroup, kindRegisterNode, registerNodeCmd{Node: Node{
			ID: s.cfg.NodeID, RaftAddress: s.cfg.RaftAddress, KafkaAddress: s.cfg.KafkaAddress, Labels: s.cfg.Labels,
		}})
		return err
	})
	if !ok {
		return
	}
	s.registered.Store(true)
	close(s.ready)
	s.log.Info("raft: node joined the cluster", "cluster", s.cfg.ClusterName, "partition_groups", s.PartitionGroups())
	for _, g := range s.identity().NonVoting {
		if !step(fmt.Sprintf("promote to voter in raft group %d", g), func(ctx context.Context) error { return s.promote(ctx, g) }) {
			return
		}
	}
}

// WaitReady blocks until every group runs on this node and the node has
// registered itself, or ctx ends.
func (s *Store) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("raft: node %d not joined yet: %w", s.cfg.NodeID, ctx.Err())
	}
}

// Fatal receives, at most once, why this node can never join its cluster
// as configured (ErrBootstrapMismatch: the cluster was bootstrapped with
// another partition_groups); the node should stop and say so.
func (s *Store) Fatal() <-chan error { return s.fatal }

// Ready reports whether WaitReady would return at once.
func (s *Store) Ready() bool { return s.registered.Load() }

// stopContext returns a context cancelled when the Store closes.
func (s *Store) stopContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Close stops every group and the NodeHost. State stays on disk.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.done.Wait()
		s.nh.Close()
	})
}

// attemptTimeout bounds one try of a Raft request. A request sent to a leader
// that just died is dropped without an answer, so waiting out the caller's
// whole deadline would stall for nothing; a short try and a retry recovers as
// soon as a new leader is elected.
const attemptTimeout = time.Second

// retry runs f with a short deadline per try until it succeeds, fails for a
// reason retrying cannot fix, or ctx ends. timeoutsToo also retries requests
// that timed out, which is right only when repeating them is harmless.
func (s *Store) retry(ctx context.Context, what string, timeoutsToo bool, f func(context.Context) error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := f(actx)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, dragonboat.ErrShardNotReady), errors.Is(err, dragonboat.ErrSystemBusy),
			errors.Is(err, dragonboat.ErrRejected) && what == "membership change":
		case errors.Is(err, dragonboat.ErrTimeout) && timeoutsToo && ctx.Err() == nil:
		case errors.Is(err, dragonboat.ErrClosed), errors.Is(err, dragonboat.ErrShardClosed):
			return ErrClosed
		default:
			return fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%s: no answer from a leader: %w (last error: %v)", what, ctx.Err(), err)
		case <-s.stop:
			return ErrClosed
		}
	}
}

// propose commits one command and returns the state machine's result.
// Commands are conditional or idempotent, so a try that timed out (it may or
// may not have applied) is repeated, except for partition updates and topic
// deletes, whose repeat would report a misleading rejection, and event
// appends, whose repeat would append the events twice: those return the
// timeout and the caller re-reads the state.
func (s *Store) propose(ctx context.Context, group uint64, k kind, body any) (result, error) {
	cmd, err := encode(k, body)
	if err != nil {
		return result{}, err
	}
	var res result
	repeatable := k != kindUpdatePartitions && k != kindDeleteTopic && k != kindAppendEvents
	start := time.Now()
	err = s.retry(ctx, fmt.Sprintf("raft group %d: propose", group), repeatable, func(ctx context.Context) error {
		r, err := s.nh.SyncPropose(ctx, s.nh.GetNoOPSession(group), cmd)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(r.Data, &res); err != nil {
			return fmt.Errorf("decode result: %w", err)
		}
		return nil
	})
	s.mets.proposed(start, err)
	if err != nil {
		return result{}, err
	}
	return res, res.err()
}

// Barrier waits until the local replica of group has applied everything
// committed before the call (a Raft ReadIndex), so reads of the local view
// that follow are linearizable.
func (s *Store) Barrier(ctx context.Context, group uint64) error {
	return s.retry(ctx, fmt.Sprintf("raft group %d: read index", group), true, func(ctx context.Context) error {
		_, err := s.nh.SyncRead(ctx, group, nil)
		return err
	})
}

// leaderListener receives Dragonboat's leader events.
type leaderListener Store

func (l *leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	prev, _ := l.leaders.Swap(info.ShardID, info.LeaderID)
	if prev != info.LeaderID {
		l.log.Info("raft: group leader changed", "group", info.ShardID, "leader", info.LeaderID, "term", info.Term)
	}
	select {
	case l.leaderChanged <- struct{}{}:
	default:
	}
	l.feed.outbox.fire() // a new leader may have events to publish
}

// LeaderChanged is signalled when some Raft group's leader changes, e.g.
// when this node becomes a group's leader and so its partitions'
// controller. Signals coalesce; it has one reader.
func (s *Store) LeaderChanged() <-chan struct{} { return s.leaderChanged }

var _ raftio.IRaftEventListener = (*leaderListener)(nil)
