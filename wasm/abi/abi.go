// Package abi is the binary format between reeve and an election policy
// module: the batch of partitions a module decides (Batch) and its answers
// (Decision), and the settings its init receives. Both sides use it: the
// host in package wasm, the guest through package wasm/sdk. The format is
// described for authors in other languages in docs/policy-abi.md.
//
// Every integer is little-endian. A string is a u16 byte length and that
// many bytes of UTF-8. The package has no dependencies, so it builds for
// GOOS=wasip1 GOARCH=wasm too.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Version is the ABI version: the value a module's reeve_abi_version export
// returns and the first field of every encoded batch and answer.
const Version = 1

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

// AppendBatch appends b's encoding to dst.
func AppendBatch(dst []byte, b *Batch) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, Version)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Nodes)))
	for _, n := range b.Nodes {
		dst = binary.LittleEndian.AppendUint64(dst, n.ID)
		dst = binary.LittleEndian.AppendUint32(dst, n.HeartbeatAgeMs)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(n.Labels)))
		for _, l := range n.Labels {
			dst = appendString(dst, l.Key)
			dst = appendString(dst, l.Value)
		}
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Partitions)))
	for _, p := range b.Partitions {
		dst = appendString(dst, p.Topic)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(p.Partition))
		dst = append(dst, byte(p.Reason), boolBit(p.Unclean, 0))
		dst = binary.LittleEndian.AppendUint64(dst, p.Leader)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(p.LeaderEpoch))
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(p.Replicas)))
		for _, r := range p.Replicas {
			dst = binary.LittleEndian.AppendUint32(dst, r.Node)
			dst = append(dst, boolBit(r.Alive, 0)|boolBit(r.InISR, 1))
			dst = binary.LittleEndian.AppendUint64(dst, uint64(r.LogEndOffset))
		}
	}
	return dst
}

// DecodeBatch decodes a batch, checking every count against its limit and
// every replica's node index.
func DecodeBatch(data []byte) (*Batch, error) {
	r := reader{buf: data}
	if v := r.u16(); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: batch version %d, want %d", ErrMalformed, v, Version)
	}
	b := &Batch{}
	n := r.count(MaxNodes, 14)
	b.Nodes = make([]Node, 0, n)
	for range n {
		nd := Node{ID: r.u64(), HeartbeatAgeMs: r.u32()}
		nl := r.count16(MaxLabels, 4)
		for range nl {
			nd.Labels = append(nd.Labels, Label{Key: r.str(), Value: r.str()})
		}
		b.Nodes = append(b.Nodes, nd)
	}
	np := r.count(MaxPartitions, 24)
	b.Partitions = make([]Partition, 0, np)
	for range np {
		p := Partition{Topic: r.str(), Partition: int32(r.u32())}
		reason, flags := r.u8(), r.u8()
		// Reasons past ReasonManual are kept (a later host may add some;
		// a module may refuse them); unknown flag bits are not.
		if r.err == nil && flags&^1 != 0 {
			return nil, fmt.Errorf("%w: %s-%d: unknown partition flags %#x", ErrMalformed, p.Topic, p.Partition, flags)
		}
		p.Reason, p.Unclean = Reason(reason), flags&1 != 0
		p.Leader, p.LeaderEpoch = r.u64(), int32(r.u32())
		nr := r.count16(MaxReplicas, 13)
		p.Replicas = make([]Replica, 0, nr)
		for range nr {
			rep := Replica{Node: r.u32()}
			f := r.u8()
			if r.err == nil && f&^3 != 0 {
				return nil, fmt.Errorf("%w: %s-%d: unknown replica flags %#x", ErrMalformed, p.Topic, p.Partition, f)
			}
			rep.Alive, rep.InISR = f&1 != 0, f&2 != 0
			rep.LogEndOffset = int64(r.u64())
			if r.err == nil && int(rep.Node) >= len(b.Nodes) {
				return nil, fmt.Errorf("%w: %s-%d: replica node index %d of %d nodes", ErrMalformed, p.Topic, p.Partition, rep.Node, len(b.Nodes))
			}
			p.Replicas = append(p.Replicas, rep)
		}
		b.Partitions = append(b.Partitions, p)
	}
	return b, r.done()
}

// AppendDecisions appends the encoding of a module's answers to dst.
func AppendDecisions(dst []byte, ds []Decision) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, Version)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(ds)))
	for _, d := range ds {
		dst = append(dst, byte(d.Kind))
		dst = binary.LittleEndian.AppendUint64(dst, d.Leader)
		dst = appendString(dst, d.Reason)
	}
	return dst
}

// DecodeDecisions decodes a module's answers; want is the number of
// partitions asked about, and any other count is an error.
func DecodeDecisions(data []byte, want int) ([]Decision, error) {
	r := reader{buf: data}
	if v := r.u16(); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: answer version %d, want %d", ErrMalformed, v, Version)
	}
	n := r.count(MaxPartitions, 11)
	if r.err == nil && n != want {
		return nil, fmt.Errorf("%w: %d decisions for %d partitions", ErrMalformed, n, want)
	}
	out := make([]Decision, 0, n)
	// Policies repeat a few reason texts across a batch: one string each.
	reasons := map[string]string{}
	for range n {
		d := Decision{Kind: DecisionKind(r.u8()), Leader: r.u64()}
		rb := r.take(int(r.u16()))
		if s, ok := reasons[string(rb)]; ok {
			d.Reason = s
		} else if r.err == nil {
			d.Reason = string(rb)
			reasons[d.Reason] = d.Reason
		}
		if r.err == nil && d.Kind > DecideLeader {
			return nil, fmt.Errorf("%w: decision %d: unknown kind %d", ErrMalformed, len(out), d.Kind)
		}
		out = append(out, d)
	}
	return out, r.done()
}

// AppendSettings appends the encoding of a policy's settings (its TOML
// settings table, every value as a string), sorted by key by the caller
// if it wants a stable encoding.
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
	r := reader{buf: data}
	n := r.count(MaxLabels, 4)
	out := make([]Label, 0, n)
	for range n {
		out = append(out, Label{Key: r.str(), Value: r.str()})
	}
	return out, r.done()
}

func boolBit(b bool, bit uint) byte {
	if b {
		return 1 << bit
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
// later read returns zero and done reports the error.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.err = fmt.Errorf("%w: truncated at byte %d (need %d more, have %d)", ErrMalformed, r.off, n, len(r.buf)-r.off)
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

// count reads a u32 count and checks it against max and against the bytes
// left, at least minSize each, so a lying count cannot make the caller
// allocate.
func (r *reader) count(max, minSize int) int {
	return r.checkCount(int(r.u32()), max, minSize)
}

func (r *reader) count16(max, minSize int) int {
	return r.checkCount(int(r.u16()), max, minSize)
}

func (r *reader) checkCount(n, max, minSize int) int {
	if r.err != nil {
		return 0
	}
	if n > max || n*minSize > len(r.buf)-r.off {
		r.err = fmt.Errorf("%w: count %d at byte %d exceeds the limit (%d) or the message", ErrMalformed, n, r.off, max)
		return 0
	}
	return n
}

func (r *reader) done() error {
	if r.err == nil && r.off != len(r.buf) {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.buf)-r.off)
	}
	return r.err
}
