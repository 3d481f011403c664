package raft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// MaxPartitions bounds one topic's partition count.
const MaxPartitions = 100_000

// clusterState is the content of the cluster group. Everything in it is
// derived from the log alone: no clock, no randomness, no I/O.
type clusterState struct {
	Bootstrapped    bool               `json:"bootstrapped"`
	Name            string             `json:"name"`
	PartitionGroups int                `json:"partition_groups"`
	Nodes           map[uint64]*Node   `json:"nodes"`
	Topics          map[string]*Topic  `json:"topics"`
	Tombstones      map[TopicID]*Topic `json:"tombstones"` // deleted topics whose partitions may still exist
	// Rotation moves the first replica of each new topic along the node
	// list, so the leaders of many small topics spread over the nodes.
	Rotation uint64 `json:"rotation"`
	// NextProducerID is the first producer id not yet handed out.
	NextProducerID int64 `json:"next_producer_id"`
	// Outbox holds the events that are not partition changes: node up and
	// down, policy loaded, rejected and fell back.
	Outbox outbox `json:"outbox,omitzero"`
}

func newClusterState() clusterState {
	return clusterState{
		Nodes:      make(map[uint64]*Node),
		Topics:     make(map[string]*Topic),
		Tombstones: make(map[TopicID]*Topic),
	}
}

// clusterSM is the state machine of the cluster group.
type clusterSM struct {
	feed *feed

	mu    sync.RWMutex // guards st and index for the local view
	st    clusterState
	index uint64
}

var _ sm.IStateMachine = (*clusterSM)(nil)

func newClusterSM(f *feed) *clusterSM { return &clusterSM{feed: f, st: newClusterState()} }

// Update applies one committed entry.
func (c *clusterSM) Update(e sm.Entry) (sm.Result, error) {
	c.mu.Lock()
	last := c.st.Outbox.LastSeq
	res, changes := c.apply(e)
	c.index = e.Index
	appended := c.st.Outbox.LastSeq != last
	c.mu.Unlock()
	for i := range changes {
		changes[i].Group, changes[i].Index = ClusterGroup, e.Index
	}
	c.feed.publish(changes...)
	if appended {
		c.feed.outbox.fire()
	}
	data, err := json.Marshal(res)
	if err != nil {
		return sm.Result{}, fmt.Errorf("encode result: %w", err)
	}
	return sm.Result{Value: e.Index, Data: data}, nil
}

func (c *clusterSM) apply(e sm.Entry) (result, []Change) {
	k, body, err := decode(e.Cmd)
	if err != nil {
		return failed(err, "%v", err), nil
	}
	st := &c.st
	switch k {
	case kindBootstrap:
		var cmd bootstrapCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "bootstrap: %v", err), nil
		}
		if st.Bootstrapped {
			if cmd.Name != st.Name || cmd.PartitionGroups != st.PartitionGroups {
				return failed(ErrBootstrapMismatch, "cluster %q was bootstrapped with partition_groups = %d; this node's configuration says cluster %q with partition_groups = %d; give every founding node the same cluster.partition_groups",
					st.Name, st.PartitionGroups, cmd.Name, cmd.PartitionGroups), nil
			}
			return result{}, nil
		}
		if cmd.PartitionGroups < 1 {
			return failed(ErrBootstrapMismatch, "partition_groups %d: want 1 or more", cmd.PartitionGroups), nil
		}
		st.Bootstrapped, st.Name, st.PartitionGroups = true, cmd.Name, cmd.PartitionGroups
		return result{}, []Change{{Kind: ChangeReset}}
	}
	if !st.Bootstrapped {
		return failed(ErrNotBootstrapped, "command %d before bootstrap", k), nil
	}
	switch k {
	case kindRegisterNode:
		var cmd registerNodeCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "register node: %v", err), nil
		}
		return c.registerNode(cmd)
	case kindAddNode:
		var cmd addNodeCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "add node: %v", err), nil
		}
		return c.addNode(cmd)
	case kindRemoveNode:
		var cmd removeNodeCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "remove node: %v", err), nil
		}
		n, ok := st.Nodes[cmd.ID]
		if !ok {
			return failed(ErrUnknownNode, "node %d is not in the registry", cmd.ID), nil
		}
		n.State = NodeRemoved
		return result{}, []Change{{Kind: ChangeNode, Node: cmd.ID}}
	case kindCreateTopic:
		var cmd createTopicCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "create topic: %v", err), nil
		}
		return c.createTopic(cmd)
	case kindAddPartitions:
		var cmd addPartitionsCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "add partitions: %v", err), nil
		}
		return c.addPartitions(cmd)
	case kindDeleteTopic:
		var cmd deleteTopicCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "delete topic: %v", err), nil
		}
		t, ok := st.Topics[cmd.Name]
		if !ok {
			return failed(ErrUnknownTopic, "topic %q does not exist", cmd.Name), nil
		}
		delete(st.Topics, cmd.Name)
		st.Tombstones[t.ID] = t
		return result{Topic: t.clone()}, []Change{{Kind: ChangeTopicDeleted, Topic: t.Name, TopicID: t.ID}}
	case kindAllocateProducerIDs:
		return c.allocateProducerIDs(body)
	case kindAppendEvents, kindAckEvents:
		return applyOutbox(&st.Outbox, k, body, true), nil
	case kindForgetTopic:
		var cmd forgetTopicCmd
		if err := json.Unmarshal(body, &cmd); err != nil {
			return failed(ErrUnsupportedCommand, "forget topic: %v", err), nil
		}
		delete(st.Tombstones, cmd.ID)
		return result{}, nil
	}
	return failed(ErrUnsupportedCommand, "command kind %d is not a cluster-group command; upgrade reeve on this node", k), nil
}

func (c *clusterSM) registerNode(cmd registerNodeCmd) (result, []Change) {
	n := cmd.Node
	if n.ID == 0 {
		return failed(ErrUnknownNode, "node id 0"), nil
	}
	if old, ok := c.st.Nodes[n.ID]; ok && old.State == NodeRemoved {
		return failed(ErrNodeRemoved, "node %d was removed from the cluster; start it with a new node id and a fresh data_dir", n.ID), nil
	}
	for _, other := range c.sortedNodes() {
		if other.ID != n.ID && other.State != NodeRemoved && other.RaftAddress == n.RaftAddress {
			return failed(ErrNodeExists, "node %d registers raft address %s, which node %d uses; give each node its own raft.address",
				n.ID, n.RaftAddress, other.ID), nil
		}
	}
	n.State = NodeActive
	c.st.Nodes[n.ID] = n.clone()
	return result{}, []Change{{Kind: ChangeNode, Node: n.ID}}
}

func (c *clusterSM) addNode(cmd addNodeCmd) (result, []Change) {
	if cmd.ID == 0 {
		return failed(ErrUnknownNode, "node id 0; use 1 or higher"), nil
	}
	if old, ok := c.st.Nodes[cmd.ID]; ok {
		switch {
		case old.State == NodeRemoved:
			return failed(ErrNodeRemoved, "node %d was removed and its id cannot be reused; pick a new id", cmd.ID), nil
		case old.RaftAddress != cmd.RaftAddress:
			return failed(ErrNodeExists, "node %d is already registered at %s", cmd.ID, old.RaftAddress), nil
		}
		return result{}, nil // a retried add of the same node
	}
	for _, n := range c.sortedNodes() {
		if n.State != NodeRemoved && n.RaftAddress == cmd.RaftAddress {
			return failed(ErrNodeExists, "raft address %s is already used by node %d", cmd.RaftAddress, n.ID), nil
		}
	}
	c.st.Nodes[cmd.ID] = &Node{ID: cmd.ID, RaftAddress: cmd.RaftAddress, State: NodeJoining}
	return result{}, []Change{{Kind: ChangeNode, Node: cmd.ID}}
}

func (c *clusterSM) createTopic(cmd createTopicCmd) (result, []Change) {
	st := &c.st
	if err := validTopicName(cmd.Name); err != nil {
		return failed(ErrInvalidTopic, "%v", err), nil
	}
	if t, ok := st.Topics[cmd.Name]; ok {
		if t.ID == cmd.ID { // our own proposal, retried after a lost answer
			return result{Topic: t.clone()}, nil
		}
		return failed(ErrTopicExists, "topic %q exists (id %s)", cmd.Name, t.ID), nil
	}
	if cmd.ID.IsZero() {
		return failed(ErrInvalidTopic, "topic %q: zero topic id", cmd.Name), nil
	}
	if c.idInUse(cmd.ID) {
		return failed(ErrInvalidTopic, "topic %q: topic id %s is or was used by another topic; retry to get a new one", cmd.Name, cmd.ID), nil
	}
	if cmd.Partitions < 1 || cmd.Partitions > MaxPartitions {
		return failed(ErrInvalidTopic, "topic %q: %d partitions; use 1 to %d", cmd.Name, cmd.Partitions, MaxPartitions), nil
	}
	if cmd.ReplicationFactor < 1 {
		return failed(ErrInvalidTopic, "topic %q: replication factor %d; use 1 or more", cmd.Name, cmd.ReplicationFactor), nil
	}
	nodes := c.liveCandidates(cmd.Candidates)
	if int(cmd.ReplicationFactor) > len(nodes) {
		return failed(ErrReplicationFactor, "topic %q: replication factor %d but only %d live registered node(s) %v; lower the replication factor or start more nodes",
			cmd.Name, cmd.ReplicationFactor, len(nodes), nodes), nil
	}
	t := &Topic{
		Name:              cmd.Name,
		ID:                cmd.ID,
		Partitions:        cmd.Partitions,
		ReplicationFactor: cmd.ReplicationFactor,
		Config:            cloneMap(cmd.Config),
		Assignment:        assign(nodes, cmd.Partitions, int(cmd.ReplicationFactor), st.Rotation),
	}
	st.Rotation++
	st.Topics[t.Name] = t
	return result{Topic: t.clone()}, []Change{{Kind: ChangeTopicCreated, Topic: t.Name, TopicID: t.ID}}
}

func (c *clusterSM) addPartitions(cmd addPartitionsCmd) (result, []Change) {
	t, ok := c.st.Topics[cmd.Name]
	if !ok || t.ID != cmd.ID {
		return failed(ErrUnknownTopic, "topic %q (id %s) does not exist", cmd.Name, cmd.ID), nil
	}
	if cmd.Count == t.Partitions { // our own proposal, retried after a lost answer
		return result{Topic: t.clone()}, nil
	}
	if cmd.Count > MaxPartitions {
		return failed(ErrInvalidTopic, "topic %q: %d partitions; the limit is %d", cmd.Name, cmd.Count, MaxPartitions), nil
	}
	if cmd.Count < t.Partitions {
		return failed(ErrInvalidTopic, "topic %q has %d partitions; a topic's partition count can only grow", cmd.Name, t.Partitions), nil
	}
	nodes := c.liveCandidates(cmd.Candidates)
	if int(t.ReplicationFactor) > len(nodes) {
		return failed(ErrReplicationFactor, "topic %q: replication factor %d but only %d live registered node(s) %v",
			cmd.Name, t.ReplicationFactor, len(nodes), nodes), nil
	}
	// Continue the topic's own rotation: start where partition 0 started.
	start := 0
	if len(t.Assignment) > 0 {
		if i := slices.Index(nodes, t.Assignment[0][0]); i >= 0 {
			start = i
		}
	}
	all := assign(nodes, cmd.Count, int(t.ReplicationFactor), uint64(start))
	t.Assignment = append(t.Assignment, all[t.Partitions:]...)
	t.Partitions = cmd.Count
	return result{Topic: t.clone()}, []Change{{Kind: ChangeTopicCreated, Topic: t.Name, TopicID: t.ID}}
}

// idInUse reports whether a topic id belongs to a topic or a tombstone:
// partition state is keyed by id, so an id is never given out twice.
func (c *clusterSM) idInUse(id TopicID) bool {
	if _, ok := c.st.Tombstones[id]; ok {
		return true
	}
	for _, t := range c.st.Topics {
		if t.ID == id {
			return true
		}
	}
	return false
}

// sortedNodes returns the registry in id order, so that anything derived
// from iterating it (an error message, a choice) is the same on every
// replica.
func (c *clusterSM) sortedNodes() []*Node {
	out := make([]*Node, 0, len(c.st.Nodes))
	for _, n := range c.st.Nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// liveCandidates keeps the candidates that are active registered nodes,
// sorted and without duplicates.
func (c *clusterSM) liveCandidates(candidates []uint64) []uint64 {
	var nodes []uint64
	for _, id := range candidates {
		if n, ok := c.st.Nodes[id]; ok && n.State == NodeActive && !slices.Contains(nodes, id) {
			nodes = append(nodes, id)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// assign places replicas round-robin over nodes: partition p starts at node
// (start+p) and takes the next rf nodes, so preferred leaders (the first
// replica) spread evenly, and start rotates from topic to topic.
func assign(nodes []uint64, partitions int32, rf int, rotation uint64) [][]uint64 {
	n := len(nodes)
	start := int(rotation % uint64(n))
	out := make([][]uint64, partitions)
	for p := range out {
		r := make([]uint64, rf)
		for i := range r {
			r[i] = nodes[(start+p+i)%n]
		}
		out[p] = r
	}
	return out
}

// maxTopicName leaves room in a 255-byte file name for the partition number
// and topic id that reeve adds to a partition's directory name; Kafka's own
// limit is 249.
const maxTopicName = 200

// validTopicName applies Kafka's rules, so every Kafka client accepts the name.
func validTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > maxTopicName:
		return fmt.Errorf("topic name of %d characters; the limit is %d (each partition's directory is named after its topic, within the file system's 255)", len(name), maxTopicName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has %q; use letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// Lookup serves linearizable reads (through SyncRead); the query is ignored
// and a copy of the whole state is returned.
func (c *clusterSM) Lookup(any) (any, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.snapshotLocked(), nil
}

func (c *clusterSM) snapshotLocked() clusterView {
	v := clusterView{
		Index:           c.index,
		Bootstrapped:    c.st.Bootstrapped,
		Name:            c.st.Name,
		PartitionGroups: c.st.PartitionGroups,
	}
	for _, n := range c.st.Nodes {
		v.Nodes = append(v.Nodes, *n.clone())
	}
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].ID < v.Nodes[j].ID })
	for _, t := range c.st.Topics {
		v.Topics = append(v.Topics, *t.clone())
	}
	sort.Slice(v.Topics, func(i, j int) bool { return v.Topics[i].Name < v.Topics[j].Name })
	for _, t := range c.st.Tombstones {
		v.Tombstones = append(v.Tombstones, *t.clone())
	}
	sort.Slice(v.Tombstones, func(i, j int) bool {
		if v.Tombstones[i].Name != v.Tombstones[j].Name {
			return v.Tombstones[i].Name < v.Tombstones[j].Name
		}
		return bytes.Compare(v.Tombstones[i].ID[:], v.Tombstones[j].ID[:]) < 0
	})
	return v
}

// clusterView is a consistent copy of the cluster group's state.
type clusterView struct {
	Index           uint64
	Bootstrapped    bool
	Name            string
	PartitionGroups int
	Nodes           []Node
	Topics          []Topic
	Tombstones      []Topic
}

// SaveSnapshot writes the state as versioned JSON; encoding/json sorts map
// keys, so every replica writes the same bytes for the same state.
func (c *clusterSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return writeSnapshot(w, &clusterSnapshot{Index: c.index, State: &c.st})
}

// clusterSnapshot is the snapshot form: the state and the index it was
// taken at.
type clusterSnapshot struct {
	Index uint64        `json:"index"`
	State *clusterState `json:"state"`
}

// RecoverFromSnapshot replaces the state with a snapshot's.
func (c *clusterSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	st := newClusterState()
	snap := clusterSnapshot{State: &st}
	if err := readSnapshot(r, &snap); err != nil {
		return fmt.Errorf("cluster group: %w", err)
	}
	c.mu.Lock()
	c.st, c.index = st, snap.Index
	c.mu.Unlock()
	c.feed.publish(Change{Group: ClusterGroup, Kind: ChangeReset})
	c.feed.outbox.fire()
	return nil
}

// Close implements sm.IStateMachine.
func (c *clusterSM) Close() error { return nil }

// snapshotVersion is the first line of every snapshot; bump it when the
// state's shape changes incompatibly.
const snapshotVersion = "reeve-snapshot-v1\n"

func writeSnapshot(w io.Writer, st any) error {
	if _, err := io.WriteString(w, snapshotVersion); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(st)
}

func readSnapshot(r io.Reader, st any) error {
	head := make([]byte, len(snapshotVersion))
	if _, err := io.ReadFull(r, head); err != nil {
		return fmt.Errorf("read snapshot header: %w", err)
	}
	if string(head) != snapshotVersion {
		return fmt.Errorf("snapshot format %q, this binary reads %q; upgrade reeve on this node", head, snapshotVersion[:len(snapshotVersion)-1])
	}
	if err := json.NewDecoder(r).Decode(st); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	return nil
}
