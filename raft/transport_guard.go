package raft

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync/atomic"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// What the transport checks before it hands a peer's message or snapshot
// chunk to Dragonboat.
//
// Dragonboat trusts its transport: a message it receives reaches code that
// panics (and so ends the process) on input a correct peer never sends,
// and a message that names a group and a sender is believed. So every
// message is checked here first, and one that fails is dropped, never
// passed on, with a warning naming the remote address (at most once a
// minute per remote host and reason, see Transport.warnDrop):
//
//   - the group: it must be one this node runs, and To must be this node's
//     replica (To = 0 panics in NodeHost's message handler);
//   - the sender: From must be a member (voter, non-voter or witness) of
//     that group or, so that a node that missed a join can catch up, of the
//     cluster, and not this node (memberTable); a Heartbeat or vote from a
//     stranger would otherwise make the group follow a leader that does
//     not exist; and with TLS (transport_tls.go), the node the
//     connection's certificate names, so a member cannot speak for another;
//   - the batch's SourceAddress: Dragonboat records it as the address of
//     every sender in the batch, and panics when it is not a valid target
//     or differs from the address it already knows, so it must be the
//     member's address;
//   - the type: only the types Dragonboat sends between nodes; the local
//     types (ticks, elections, config change events, snapshot status, log
//     queries) panic or act as if the node itself had raised them, an
//     InstallSnapshot in a batch would install whatever files it names, and
//     an unknown type indexes past Dragonboat's handler table;
//   - the term: requests a follower forwards (Propose, ReadIndex,
//     LeaderTransfer) carry none, votes and everything else carry one;
//   - entries: only on Replicate and Propose, contiguous after LogIndex on a
//     Replicate, of a known type, a config change one decodable with a
//     valid target, an encoded one uncompressed (reeve compresses nothing);
//   - the snapshot field: empty, since snapshots come as chunks;
//   - chunks: for this node from a member (with TLS, the certificate's
//     node), in order on their stream, with a plain file name, and the
//     first with a membership Dragonboat can restore.
//
// # Notes
//
// These checks are stateless, or keep only a stream's previous chunk: they
// keep out messages no correct peer sends and senders that are not members.
// Without TLS they cannot tell a member from someone who forges its id and
// address; with it, the sender is the node its certificate names. Neither
// way do they check a message against the receiver's log (a Heartbeat
// whose Commit is past the log end, a Replicate that conflicts with
// committed entries still reach Dragonboat's invariant panics): that needs
// a node the cluster CA certified to misbehave.
//
// A sender is checked against the group's applied membership and every
// other node the cluster knows (memberTable.publish says why). A replica
// that has not yet applied a membership (a group just bootstrapped, before
// its first commit, or a node that joins, before its first snapshot) is
// checked against cfg.InitialMembers and the nodes other groups know. A
// joining node knows none until its first membership arrives, and until
// then accepts any sender with a valid address: without TLS the first
// leader to reach it is believed, whoever it is; with TLS only a node the
// cluster CA certified, as the node its certificate names. The other way round, a node that was down while another
// joined and finds every group it runs led by nodes it never heard of
// cannot catch up until some group's leadership moves to a node it knows
// (rare: all its groups must have moved to newcomers meanwhile; an
// operator can move one, e.g. by a controlled shutdown of its leader).

// memberTable is the transport's view of the groups this node runs and
// who may send to them. The Store replaces the whole map when a membership
// may have changed (watchMembers); the receive path only loads the pointer.
type memberTable struct {
	self      uint64            // this node's replica id, the same in every group
	bootstrap map[uint64]string // InitialMembers, for groups with no membership yet; nil when joining
	groups    atomic.Pointer[map[uint64]groupMembers]
}

// groupMembers is who may send to one group.
type groupMembers struct {
	// members maps replica ids to raft addresses: the group's members
	// (voters, non-voters and witnesses) as this replica last applied
	// them, and every other member of the cluster (see publish); nil when
	// there is no one to check against.
	members map[uint64]string
}

// lookup returns the members to check group's senders against: running is
// false for a group this node does not run; members is nil when nothing is
// known to check against (see the notes above).
func (mt *memberTable) lookup(group uint64) (members map[uint64]string, running bool) {
	p := mt.groups.Load()
	if p == nil {
		return nil, false
	}
	g, ok := (*p)[group]
	return g.members, ok
}

// nodeAt reports whether the table knows node id at raft address addr: in
// some group's members (which hold the cluster's registry too, see
// publish) or, before the first publish, in the initial members. anyKnown
// is false when the table knows no node at all: a joining node before its
// first membership.
func (mt *memberTable) nodeAt(id uint64, addr string) (at, anyKnown bool) {
	views := []map[uint64]string{mt.bootstrap}
	if p := mt.groups.Load(); p != nil {
		views = views[:0]
		for _, g := range *p {
			views = append(views, g.members)
		}
	}
	for _, m := range views {
		if len(m) > 0 {
			anyKnown = true
		}
		if a, ok := m[id]; ok && a == addr {
			return true, true
		}
	}
	return false, anyKnown
}

// publish replaces the table. groups holds each running group's applied
// membership, nil for a group that has none yet; registry the raft
// addresses of the cluster's nodes that are not removed.
//
// A sender that is a member of any group here, or registered, may send to
// every group: a node that was down while another joined learns of the
// newcomer only from the newcomer's own messages once it leads a group,
// and Raft accepts a leader it does not know yet for exactly that reason.
// Only ids the cluster never knew are refused. (reeve adds a node to every
// group, so in a settled cluster the two sets are the same.)
func (mt *memberTable) publish(groups map[uint64]map[uint64]string, registry map[uint64]string, removed map[uint64]bool) {
	wide := make(map[uint64]string)
	for _, m := range groups {
		maps.Copy(wide, m)
	}
	maps.Copy(wide, registry)
	for id := range removed {
		delete(wide, id)
	}
	out := make(map[uint64]groupMembers, len(groups))
	for g, m := range groups {
		switch {
		case m != nil:
			out[g] = groupMembers{members: cloneMembers(wide, m)}
		case len(mt.bootstrap) > 0 || len(wide) > 0:
			out[g] = groupMembers{members: cloneMembers(wide, mt.bootstrap)}
		default:
			out[g] = groupMembers{}
		}
	}
	mt.groups.Store(&out)
}

// wireTypes are the message types one Dragonboat node sends another in a
// batch, with what each carries: a term, or none (requests a follower
// forwards to its leader), or either (a rejected pre-vote from a node at
// term 0; SnapshotReceived, which NodeHost sends without one).
var wireTypes = map[pb.MessageType]termRule{
	pb.NoOP:               termSet,
	pb.Propose:            termNone,
	pb.Replicate:          termSet,
	pb.ReplicateResp:      termSet,
	pb.RequestVote:        termSet,
	pb.RequestVoteResp:    termSet,
	pb.RequestPreVote:     termSet,
	pb.RequestPreVoteResp: termAny,
	pb.Heartbeat:          termSet,
	pb.HeartbeatResp:      termSet,
	pb.ReadIndex:          termNone,
	pb.ReadIndexResp:      termSet,
	pb.LeaderTransfer:     termNone,
	pb.TimeoutNow:         termSet,
	pb.RateLimit:          termSet,
	pb.SnapshotReceived:   termAny,
}

type termRule uint8

const (
	termSet termRule = iota
	termNone
	termAny
)

// checkSource checks a batch's SourceAddress, which Dragonboat records as
// the address of the sender of each of its messages.
func checkSource(source string, from uint64, members map[uint64]string) string {
	if source == "" {
		return ""
	}
	if members == nil {
		if !validTarget(source) {
			return "source address is not a host:port"
		}
		return ""
	}
	if members[from] != source {
		return "source address is not the sender's raft address"
	}
	return ""
}

// checkMessage returns why m may not be passed to Dragonboat, or "" when
// it may. members are m's group's members (nil: not checked, see
// memberTable.lookup); self is this node's replica id.
func checkMessage(m *pb.Message, self uint64, members map[uint64]string, source string) string {
	switch {
	case m.To == 0:
		return "message has no target replica"
	case m.To != self:
		return "message is for another replica"
	case m.From == 0:
		return "message has no sender"
	case m.From == self:
		return "message claims to come from this node"
	}
	if members != nil {
		if _, ok := members[m.From]; !ok {
			return "sender is not a member of the group"
		}
	}
	if why := checkSource(source, m.From, members); why != "" {
		return why
	}
	rule, ok := wireTypes[m.Type]
	if !ok {
		return "message type is not sent between nodes"
	}
	switch {
	case rule == termSet && m.Term == 0:
		return "message has no term"
	case rule == termNone && m.Term != 0:
		return "forwarded request carries a term"
	case m.Type == pb.LeaderTransfer && (m.Hint == 0 || (members != nil && members[m.Hint] == "")):
		return "leader transfer target is not a member"
	case len(m.Entries) > 0 && m.Type != pb.Replicate && m.Type != pb.Propose:
		return "entries on a message that carries none"
	case !emptySnapshot(&m.Snapshot):
		return "snapshot in a message batch"
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if why := checkEntry(e, members); why != "" {
			return why
		}
		if m.Type != pb.Replicate {
			continue
		}
		// Dragonboat appends these after LogIndex as they come, and its log
		// and state machine panic on a gap, a zero or a term going backwards.
		switch {
		case e.Index == 0 || e.Index != m.LogIndex+1+uint64(i):
			return "replicated entries are not contiguous after the log index"
		case e.Term == 0 || e.Term > m.Term || e.Term < m.LogTerm:
			return "replicated entry term out of range"
		case i > 0 && e.Term < m.Entries[i-1].Term:
			return "replicated entry terms go backwards"
		}
	}
	return ""
}

// checkEntry checks what the state machine layer decodes from an entry.
func checkEntry(e *pb.Entry, members map[uint64]string) string {
	switch e.Type {
	case pb.ApplicationEntry, pb.MetadataEntry:
		return ""
	case pb.EncodedEntry:
		// The header byte: version 0, no compression, no session, as
		// Dragonboat writes it for reeve, which configures no compression.
		if len(e.Cmd) == 0 || e.Cmd[0] != 0 {
			return "encoded entry with an unsupported header"
		}
		return ""
	case pb.ConfigChangeEntry:
		var cc pb.ConfigChange
		if err := cc.Unmarshal(e.Cmd); err != nil {
			return "undecodable config change entry"
		}
		switch cc.Type {
		case pb.RemoveNode:
		case pb.AddWitness:
			// reeve never adds one, and Dragonboat panics when a witness
			// is later promoted: refuse the whole path.
			return "config change adds a witness"
		case pb.AddNode, pb.AddNonVoting:
			if !validTarget(cc.Address) {
				return "config change adds a replica without a valid address"
			}
			if known, ok := members[cc.ReplicaID]; ok && known != cc.Address {
				return "config change gives a member another address"
			}
		default:
			return "config change of an unknown type"
		}
		if cc.ReplicaID == 0 {
			return "config change without a replica"
		}
		return ""
	default:
		return "entry of an unknown type"
	}
}

func emptySnapshot(s *pb.Snapshot) bool {
	return s.Index == 0 && s.Term == 0 && s.Filepath == "" && s.FileSize == 0 && len(s.Files) == 0 &&
		s.Membership.ConfigChangeId == 0 && len(s.Membership.Addresses) == 0 &&
		len(s.Membership.NonVotings) == 0 && len(s.Membership.Witnesses) == 0 && len(s.Membership.Removed) == 0 &&
		!s.Dummy && !s.Witness && !s.Imported && s.OnDiskIndex == 0
}

// chunkStream is what a snapshot connection remembers of its previous chunk.
type chunkStream struct {
	started bool
	last    pb.Chunk // Data cleared
}

// checkChunk returns why c may not be passed to Dragonboat's chunk handler,
// or "" when it may, and records it as the stream's latest chunk.
func (st *chunkStream) checkChunk(c *pb.Chunk, self uint64, members map[uint64]string) string {
	switch {
	case c.ReplicaID != self || self == 0:
		return "chunk is for another replica"
	case c.From == 0 || c.From == self:
		return "chunk has no valid sender"
	case members != nil && members[c.From] == "":
		return "chunk sender is not a member of the group"
	case c.Index == 0 || c.Term == 0:
		return "chunk of a snapshot without index or term"
	case c.ChunkCount == 0 || c.ChunkCount == pb.PoisonChunkCount ||
		(c.ChunkCount != pb.LastChunkCount && c.ChunkId >= c.ChunkCount):
		return "chunk id out of range"
	case c.FileChunkCount == 0 || c.FileChunkId >= c.FileChunkCount:
		return "file chunk id out of range"
	case !plainFileName(c.Filepath):
		return "chunk names no plain file"
	}
	if st.started {
		p := &st.last
		switch {
		case p.IsLastChunk():
			return "chunk after the last chunk of the stream"
		case c.ChunkId != p.ChunkId+1 || c.ShardID != p.ShardID || c.From != p.From ||
			c.Index != p.Index || c.Term != p.Term:
			return "chunk out of order or from another snapshot"
		case c.FileChunkId != 0 && (c.FileChunkId != p.FileChunkId+1 || c.Filepath != p.Filepath):
			return "file chunk out of order"
		}
	} else if c.ChunkId != 0 || c.FileChunkId != 0 {
		return "stream does not start with the first chunk"
	}
	if c.ChunkId == 0 {
		// Dragonboat restores the group's remotes from this membership.
		m := &c.Membership
		if m.ConfigChangeId == 0 || len(m.Addresses) == 0 {
			return "snapshot without a membership"
		}
		for _, set := range []map[uint64]string{m.Addresses, m.NonVotings, m.Witnesses} {
			for id, addr := range set {
				if id == 0 || !validTarget(addr) {
					return "snapshot membership with an invalid member"
				}
				if known, ok := members[id]; ok && known != addr {
					return "snapshot membership gives a member another address"
				}
			}
		}
	}
	st.started = true
	st.last = *c
	st.last.Data = nil
	return ""
}

// plainFileName reports whether name's last element, which is all
// Dragonboat keeps of it, can name a file in a directory: a file it cannot
// create or open is a panic there.
func plainFileName(name string) bool {
	base := filepath.Base(name)
	return name != "" && base != "." && base != ".." && base != string(filepath.Separator) &&
		len(base) <= 255 && !strings.ContainsRune(name, 0)
}

// validTarget is transportFactory.Validate, which Dragonboat's node
// registry applies (with a panic) to every address it records.
func validTarget(addr string) bool { return (*transportFactory)(nil).Validate(addr) }

// decodeBatch decodes a message batch. The decoder is Dragonboat's,
// written for peers it trusts, so a panic in it counts as a decoding error
// instead of ending the process.
func decodeBatch(payload []byte) (b pb.MessageBatch, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	err = b.Unmarshal(payload)
	return b, err
}

// decodeChunk decodes a snapshot chunk, as decodeBatch does a batch.
func decodeChunk(payload []byte) (c pb.Chunk, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	err = c.Unmarshal(payload)
	return c, err
}

// whyNotPeer is the refusal of a message or chunk whose sender is not the
// node the connection's certificate names.
const whyNotPeer = "sender is not the node its certificate names"

// dropReason names why a message batch or chunk was refused, for the log.
type dropReason struct {
	why    string
	group  uint64
	from   uint64
	to     uint64
	mtype  string
	source string
}

func (d dropReason) String() string {
	return fmt.Sprintf("%s (group %d, from %d, to %d, %s)", d.why, d.group, d.from, d.to, d.mtype)
}

// filterBatch removes from b every message that fails checkMessage, or
// that does not come from peer, the node the connection's certificate
// names (0: not authenticated), in place, and returns the first refusal's
// reason, if any. Messages for a group this node does not run are dropped
// without a reason: that happens to correct peers, e.g. before this node
// has started its partition groups.
func filterBatch(b *pb.MessageBatch, mt *memberTable, peer uint64) (refused int, first dropReason) {
	kept := b.Requests[:0]
	for i := range b.Requests {
		m := &b.Requests[i]
		var why string
		if peer != 0 && m.From != peer {
			why = whyNotPeer
		} else if mt != nil {
			members, running := mt.lookup(m.ShardID)
			if !running {
				continue
			}
			why = checkMessage(m, mt.self, members, b.SourceAddress)
		} else {
			why = checkMessage(m, m.To, nil, b.SourceAddress)
		}
		if why != "" {
			if refused == 0 {
				first = dropReason{why: why, group: m.ShardID, from: m.From, to: m.To, mtype: m.Type.String(), source: b.SourceAddress}
			}
			refused++
			continue
		}
		kept = append(kept, *m)
	}
	clear(b.Requests[len(kept):])
	b.Requests = kept
	return refused, first
}

// cloneMembers copies a membership map so the table never shares one with
// Dragonboat.
func cloneMembers(sets ...map[uint64]string) map[uint64]string {
	out := make(map[uint64]string)
	for _, s := range sets {
		maps.Copy(out, s)
	}
	return out
}
