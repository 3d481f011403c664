// Package abi is the binary format between reeve and an election policy
// module: the batch of partitions a module decides (Batch) and its answers
// (Decision), and the settings its init receives. Both sides use it: the
// host in package wasm, the guest through package wasm/sdk. The format is
// described for authors in other languages in docs/policy-abi.md.
//
// Every integer is little-endian. A string is a u16 byte length and that
// many bytes of UTF-8. The package has no dependencies, so it builds for
// GOOS=wasip1 GOARCH=wasm too.
//
// # Versions
//
// The format has a major and a minor version, Major.Minor. A module
// exports both (reeve_abi_version and, optionally, reeve_abi_minor), and
// every batch and answer starts with those of its writer. A host serves a
// module of its own major and of any minor up to its own; it writes
// batches at its own minor, and reads answers at the module's.
//
// A minor only ever adds: a new field is appended at the end of a record
// (the batch header, a node, a partition, a replica, the answer header, a
// decision), and a new flag takes a bit no earlier minor used. Every
// record starts with its length, so a reader takes the fields it knows and
// skips the rest, and ignores flag bits it does not know; the bytes after
// the last record of a message are skipped the same way. A reader refuses
// a record too short for the fields of the writer's minor that it knows
// (of min(writer's minor, Minor)). Anything else, such as removing or
// moving a field, needs a new major.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Major and Minor are the ABI version this package reads and writes. A
// module's reeve_abi_version export returns its major and its optional
// reeve_abi_minor export its minor (0 when absent).
const (
	Major = 2
	Minor = 0
)

// Version is Major.
//
// Deprecated: ABI 2 has a minor version too; use Major and Minor.
const Version = Major

// Reason says why an election runs.
type Reason uint8

// Reasons, as encoded.
const (
	ReasonLeaderTimeout      Reason = 0
	ReasonControlledShutdown Reason = 1
	ReasonRebalance          Reason = 2
	ReasonManual             Reason = 3
)

func (r Reason) String() string {
	switch r {
	case ReasonLeaderTimeout:
		return "leader_timeout"
	case ReasonControlledShutdown:
		return "controlled_shutdown"
	case ReasonRebalance:
		return "rebalance"
	case ReasonManual:
		return "manual"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// NeverHeard is the heartbeat age of a node the deciding node has not
// heard from since it started.
const NeverHeard = math.MaxUint32

// Node is one node that appears as a replica in the batch.
type Node struct {
	ID             uint64
	HeartbeatAgeMs uint32 // since the deciding node last heard it; 0 for itself; NeverHeard
	Labels         []Label
}

// Label is one key = value from a node's [node] labels.
type Label struct{ Key, Value string }

// Replica is one replica of a partition.
type Replica struct {
	Node  uint32 // index into Batch.Nodes
	Alive bool   // heartbeats are fresh; false for the leader that timed out or is shutting down
	InISR bool
	// LogEndOffset is the replica's log-end offset if the deciding node
	// knows it, else -1.
	LogEndOffset int64
}

// Partition is one partition to decide.
type Partition struct {
	Topic       string
	Partition   int32
	Reason      Reason
	Unclean     bool   // the topic allows a live out-of-sync replica to lead
	Leader      uint64 // the current leader, 0 for none
	LeaderEpoch int32
	Replicas    []Replica // preference order: the first is the preferred leader
}

// Batch is the input of one decide call.
type Batch struct {
	Nodes      []Node
	Partitions []Partition
}

// DecisionKind is what a decision does.
type DecisionKind uint8

// Decision kinds, as encoded.
const (
	DecideNone   DecisionKind = 0 // no eligible leader: the partition goes offline
	DecideKeep   DecisionKind = 1 // leave the current leader
	DecideLeader DecisionKind = 2 // make Leader the leader
)

// Decision is a module's answer for one partition.
type Decision struct {
	Kind   DecisionKind
	Leader uint64 // the node id, for DecideLeader
	Reason string // a short explanation for the decision log
}

// Limits that keep a malformed message from making a decoder allocate
// without bound.
const (
	MaxNodes      = 1 << 16
	MaxPartitions = 1 << 20
	MaxReplicas   = 1 << 10
	MaxLabels     = 1 << 10
	MaxString     = math.MaxUint16
)

// ErrMalformed is wrapped by every decode error.
var ErrMalformed = errors.New("malformed policy message")

// Flag bits, as encoded. A reader ignores the bits it does not know: a
// later minor may define them.
const (
	flagUnclean = 1 << 0 // a partition's
	flagAlive   = 1 << 0 // a replica's
	flagInISR   = 1 << 1 // a replica's
)

// The widths of the lengths that start each record, in bytes. A node and a
// partition hold strings of up to 64 KiB each, so their lengths are u32.
const (
	headerLenSize    = 2
	nodeLenSize      = 4
	partitionLenSize = 4
	replicaLenSize   = 2
	decisionLenSize  = 4
)

// batchSizes are the bytes of each record's fields at each minor this
// package knows, after the record's length, with every string and list
// empty: at minor 0 the header holds the two counts; a node its id,
// heartbeat age and label count; a partition its topic's length,
// partition, reason, flags, leader, leader epoch and replica count; a
// replica its node index, flags and log-end offset. A later minor adds an
// entry with its own fields counted in; a reader uses the entry of
// min(the batch's minor, Minor).
var batchSizes = [Minor + 1]struct{ header, node, partition, replica int }{
	0: {header: 4 + 4, node: 8 + 4 + 2, partition: 2 + 4 + 1 + 1 + 8 + 4 + 2, replica: 4 + 1 + 8},
}

// answerSizes are the same for an answer: at minor 0 the header holds the
// decision count, and a decision its kind, leader and reason's length.
var answerSizes = [Minor + 1]struct{ header, decision int }{
	0: {header: 4, decision: 1 + 8 + 2},
}

// AppendBatch appends b's encoding, at Major.Minor, to dst.
func AppendBatch(dst []byte, b *Batch) []byte {
	return appendBatch(dst, b, &Extension{Minor: Minor})
}

// Extension is what a host of a later minor adds to a batch, for
// compatibility tests: it writes Minor in the batch header and appends
// Header to the header's fields, Node to every node's, Partition to every
// partition's and Replica to every replica's, and Trailer after the last
// partition.
type Extension struct {
	Minor                            uint16
	Header, Node, Partition, Replica []byte
	Trailer                          []byte
}

// AppendBatchExtended appends b's encoding to dst as a host of minor
// e.Minor that adds e's fields would write it. It exists for tests that
// check that a reader of an earlier minor reads such a batch as b; reeve
// writes batches with AppendBatch.
func AppendBatchExtended(dst []byte, b *Batch, e Extension) []byte {
	return appendBatch(dst, b, &e)
}

func appendBatch(dst []byte, b *Batch, e *Extension) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, Major)
	dst = le.AppendUint16(dst, e.Minor)
	dst = le.AppendUint16(dst, uint16(4+4+len(e.Header)))
	dst = le.AppendUint32(dst, uint32(len(b.Nodes)))
	dst = le.AppendUint32(dst, uint32(len(b.Partitions)))
	dst = append(dst, e.Header...)
	// A record's length is written once its fields are: zeros first, put
	// in place after. A replica's is known up front.
	extNode, extPartition, extReplica := e.Node, e.Partition, e.Replica
	replicaLen := uint16(batchSizes[0].replica + len(extReplica))
	for _, n := range b.Nodes {
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = le.AppendUint64(dst, n.ID)
		dst = le.AppendUint32(dst, n.HeartbeatAgeMs)
		dst = le.AppendUint16(dst, uint16(len(n.Labels)))
		for _, l := range n.Labels {
			dst = appendString(dst, l.Key)
			dst = appendString(dst, l.Value)
		}
		if len(extNode) > 0 { // a test's; appending nothing still costs a call
			dst = append(dst, extNode...)
		}
		le.PutUint32(dst[at:], uint32(len(dst)-at-nodeLenSize))
	}
	for i := range b.Partitions {
		p := &b.Partitions[i]
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		dst = appendString(dst, p.Topic)
		dst = le.AppendUint32(dst, uint32(p.Partition))
		dst = append(dst, byte(p.Reason), boolBit(p.Unclean, flagUnclean))
		dst = le.AppendUint64(dst, p.Leader)
		dst = le.AppendUint32(dst, uint32(p.LeaderEpoch))
		dst = le.AppendUint16(dst, uint16(len(p.Replicas)))
		for _, r := range p.Replicas {
			dst = le.AppendUint16(dst, replicaLen)
			dst = le.AppendUint32(dst, r.Node)
			dst = append(dst, boolBit(r.Alive, flagAlive)|boolBit(r.InISR, flagInISR))
			dst = le.AppendUint64(dst, uint64(r.LogEndOffset))
			if len(extReplica) > 0 {
				dst = append(dst, extReplica...)
			}
		}
		if len(extPartition) > 0 {
			dst = append(dst, extPartition...)
		}
		le.PutUint32(dst[at:], uint32(len(dst)-at-partitionLenSize))
	}
	return append(dst, e.Trailer...)
}

// DecodeBatch decodes a batch of major Major and any minor, reading the
// fields of minor Minor and skipping any others. It checks every count
// against its limit and the bytes left, every record's length against the
// fields it must hold, and every replica's node index.
func DecodeBatch(data []byte) (*Batch, error) {
	r := reader{buf: data, end: len(data)}
	major, minor := r.u16(), r.u16()
	if r.err == nil && major != Major {
		return nil, fmt.Errorf("%w: batch of policy ABI %d.%d; this reader reads %d.x", ErrMalformed, major, minor, Major)
	}
	size := batchSizes[min(int(minor), Minor)]
	h := r.record(headerLenSize, size.header, "batch header")
	// Counts are compared as read before any arithmetic, so that no count
	// overflows an int, 32 bits wide on some hosts.
	nn32, np32 := h.u32(), h.u32()
	r.merge(&h)
	nn, np := int(min(nn32, MaxNodes+1)), int(min(np32, MaxPartitions+1))
	if r.err == nil && (nn > MaxNodes || np > MaxPartitions ||
		nn*(nodeLenSize+size.node)+np*(partitionLenSize+size.partition) > r.end-r.off) {
		return nil, fmt.Errorf("%w: %d nodes and %d partitions exceed the limits (%d, %d) or the %d bytes after the header",
			ErrMalformed, nn32, np32, MaxNodes, MaxPartitions, r.end-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	b := &Batch{Nodes: make([]Node, 0, nn), Partitions: make([]Partition, 0, np)}
	for i := range nn {
		rec := r.record(nodeLenSize, size.node, "node")
		nd := Node{ID: rec.u64(), HeartbeatAgeMs: rec.u32()}
		if nl := rec.count16(MaxLabels, 4); nl > 0 {
			nd.Labels = make([]Label, 0, nl)
			for range nl {
				nd.Labels = append(nd.Labels, Label{Key: rec.str(), Value: rec.str()})
			}
		}
		if r.merge(&rec); r.err != nil {
			return nil, fmt.Errorf("node %d: %w", i, r.err)
		}
		b.Nodes = append(b.Nodes, nd)
	}
	for i := range np {
		rec := r.record(partitionLenSize, size.partition, "partition")
		p := Partition{Topic: rec.str(), Partition: int32(rec.u32())}
		// Reasons past ReasonManual are kept (a later minor may add some;
		// a module may refuse them), and so are unknown flag bits.
		reason, flags := rec.u8(), rec.u8()
		p.Reason, p.Unclean = Reason(reason), flags&flagUnclean != 0
		p.Leader, p.LeaderEpoch = rec.u64(), int32(rec.u32())
		nr := rec.count16(MaxReplicas, replicaLenSize+size.replica)
		p.Replicas = make([]Replica, 0, nr)
		for range nr {
			rr := rec.record(replicaLenSize, size.replica, "replica")
			rep := Replica{Node: rr.u32()}
			f := rr.u8()
			rep.Alive, rep.InISR = f&flagAlive != 0, f&flagInISR != 0
			rep.LogEndOffset = int64(rr.u64())
			rec.merge(&rr)
			if rec.err == nil && int(rep.Node) >= len(b.Nodes) {
				rec.err = fmt.Errorf("%w: %s-%d: replica node index %d of %d nodes", ErrMalformed, p.Topic, p.Partition, rep.Node, len(b.Nodes))
			}
			p.Replicas = append(p.Replicas, rep)
		}
		if r.merge(&rec); r.err != nil {
			return nil, fmt.Errorf("partition %d: %w", i, r.err)
		}
		b.Partitions = append(b.Partitions, p)
	}
	return b, nil
}

// AppendDecisions appends the encoding of a module's answers, at
// Major.Minor, to dst.
func AppendDecisions(dst []byte, ds []Decision) []byte {
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, Major)
	dst = le.AppendUint16(dst, Minor)
	dst = le.AppendUint16(dst, uint16(answerSizes[Minor].header))
	dst = le.AppendUint32(dst, uint32(len(ds)))
	for _, d := range ds {
		reason := d.Reason[:min(len(d.Reason), MaxString)]
		dst = le.AppendUint32(dst, uint32(answerSizes[Minor].decision+len(reason)))
		dst = append(dst, byte(d.Kind))
		dst = le.AppendUint64(dst, d.Leader)
		dst = appendString(dst, reason)
	}
	return dst
}

// DecodeDecisions decodes a module's answers, of major Major and any
// minor, reading the fields of minor Minor and skipping any others; want
// is the number of partitions asked about, and any other count is an
// error. So is a decision kind it does not know.
func DecodeDecisions(data []byte, want int) ([]Decision, error) {
	r := reader{buf: data, end: len(data)}
	major, minor := r.u16(), r.u16()
	if r.err == nil && major != Major {
		return nil, fmt.Errorf("%w: answer of policy ABI %d.%d; this reader reads %d.x", ErrMalformed, major, minor, Major)
	}
	sizes := answerSizes[min(int(minor), Minor)]
	h := r.record(headerLenSize, sizes.header, "answer header")
	n32 := h.u32()
	r.merge(&h)
	n := int(min(n32, MaxPartitions+1))
	if r.err == nil && (n > MaxPartitions || n*(decisionLenSize+sizes.decision) > r.end-r.off) {
		return nil, fmt.Errorf("%w: %d decisions exceed the limit (%d) or the %d bytes after the header", ErrMalformed, n32, MaxPartitions, r.end-r.off)
	}
	if r.err == nil && n != want {
		return nil, fmt.Errorf("%w: %d decisions for %d partitions", ErrMalformed, n32, want)
	}
	if r.err != nil {
		return nil, r.err
	}
	out := make([]Decision, 0, n)
	// Policies repeat a few reason texts across a batch: one string each.
	reasons := map[string]string{}
	// The host decodes an answer per round: the records are sliced here
	// rather than read through a reader of their own.
	le := binary.LittleEndian
	rest := data[r.off:]
	for i := range n {
		at := len(data) - len(rest)
		if len(rest) < decisionLenSize {
			return nil, fmt.Errorf("decision %d: %w: truncated at byte %d (need %d more, have %d)", i, ErrMalformed, at, decisionLenSize, len(rest))
		}
		size := uint64(le.Uint32(rest))
		if err := checkRecord("decision", at+decisionLenSize, size, uint64(sizes.decision), uint64(len(rest)-decisionLenSize)); err != nil {
			return nil, fmt.Errorf("decision %d: %w", i, err)
		}
		// Kind, leader and the reason's length, then the reason: at every
		// minor, since minors only append.
		rec := rest[decisionLenSize : decisionLenSize+size]
		rest = rest[decisionLenSize+size:]
		d := Decision{Kind: DecisionKind(rec[0]), Leader: le.Uint64(rec[1:])}
		l := int(le.Uint16(rec[9:]))
		if l > len(rec)-11 {
			return nil, fmt.Errorf("decision %d: %w: truncated at byte %d (need %d more, have %d)", i, ErrMalformed, at+decisionLenSize+11, l, len(rec)-11)
		}
		rb := rec[11 : 11+l]
		if d.Kind > DecideLeader {
			return nil, fmt.Errorf("%w: decision %d: unknown kind %d", ErrMalformed, i, d.Kind)
		}
		if s, ok := reasons[string(rb)]; ok {
			d.Reason = s
		} else {
			d.Reason = string(rb)
			reasons[d.Reason] = d.Reason
		}
		out = append(out, d)
	}
	return out, nil
}

// AppendSettings appends the encoding of a policy's settings (its TOML
// settings table, every value as a string), sorted by key by the caller
// if it wants a stable encoding. Settings are not versioned: a list of
// strings needs no new fields.
func AppendSettings(dst []byte, settings []Label) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(settings)))
	for _, s := range settings {
		dst = appendString(dst, s.Key)
		dst = appendString(dst, s.Value)
	}
	return dst
}

// DecodeSettings decodes a policy's settings.
func DecodeSettings(data []byte) ([]Label, error) {
	r := reader{buf: data, end: len(data)}
	n := r.count(MaxLabels, 4)
	out := make([]Label, 0, n)
	for range n {
		out = append(out, Label{Key: r.str(), Value: r.str()})
	}
	if r.err == nil && r.off != r.end {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.end-r.off)
	}
	return out, r.err
}

func boolBit(b bool, bit byte) byte {
	if b {
		return bit
	}
	return 0
}

func appendString(dst []byte, s string) []byte {
	if len(s) > MaxString {
		s = s[:MaxString]
	}
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// reader decodes with sticky errors: after the first short read every
// later read returns zero and err holds the first error. It reads buf up
// to end, which for a record's reader is the record's end.
type reader struct {
	buf      []byte
	off, end int
	err      error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.end-r.off < n {
		r.err = fmt.Errorf("%w: truncated at byte %d (need %d more, have %d)", ErrMalformed, r.off, n, r.end-r.off)
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str() string { return string(r.take(int(r.u16()))) }

// record reads a record's length, lenSize bytes wide, checks that the
// record holds at least size bytes and fits in what is left, and returns
// a reader for it; r moves past the record, whose bytes the returned
// reader does not read are a later minor's. Merge the record's reader
// back into r when done with it.
func (r *reader) record(lenSize, size int, what string) reader {
	var n uint64
	if lenSize == 2 {
		n = uint64(r.u16())
	} else {
		n = uint64(r.u32())
	}
	rec := reader{buf: r.buf, off: r.off, end: r.off, err: r.err}
	if r.err != nil {
		return rec
	}
	if r.err = checkRecord(what, r.off, n, uint64(size), uint64(r.end-r.off)); r.err == nil {
		rec.end = r.off + int(n)
		r.off = rec.end
	}
	rec.err = r.err
	return rec
}

// checkRecord checks the length n of a record at byte at: at least size,
// and at most the left bytes that hold it.
func checkRecord(what string, at int, n, size, left uint64) error {
	switch {
	case n < size:
		return fmt.Errorf("%w: %s at byte %d is %d bytes long, shorter than its fields (%d)", ErrMalformed, what, at, n, size)
	case n > left:
		return fmt.Errorf("%w: %s at byte %d is %d bytes long; %d are left", ErrMalformed, what, at, n, left)
	}
	return nil
}

// merge takes the first error of rec, a reader record returned.
func (r *reader) merge(rec *reader) {
	if r.err == nil {
		r.err = rec.err
	}
}

// count reads a u32 count and checks it against max and against the bytes
// left, at least minSize each, so a lying count cannot make the caller
// allocate.
func (r *reader) count(max, minSize int) int {
	return r.checkCount(r.u32(), max, minSize)
}

func (r *reader) count16(max, minSize int) int {
	return r.checkCount(uint32(r.u16()), max, minSize)
}

// checkCount compares n with max before multiplying, so that the product
// fits an int of 32 bits.
func (r *reader) checkCount(n uint32, max, minSize int) int {
	if r.err != nil {
		return 0
	}
	if n > uint32(max) || int(n)*minSize > r.end-r.off {
		r.err = fmt.Errorf("%w: count %d at byte %d exceeds the limit (%d) or the bytes left (%d)", ErrMalformed, n, r.off, max, r.end-r.off)
		return 0
	}
	return int(n)
}
