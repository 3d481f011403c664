package sdk

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// This file decodes batches in the format of package abi straight into
// the engine's reused slices. abi.DecodeBatch would do, but it allocates a
// new Batch, a slice per partition and a string per topic on every call,
// and in a Go module that garbage is costly: the collector can only finish
// a cycle when the module yields, so a few large batches grew the heap
// past a 16 MiB cap before it did. The tests check that this decoder
// accepts exactly what abi.DecodeBatch accepts and reads the same values.

// The sizes of the smallest node (no labels), of a partition's fields
// after its topic (partition, reason, flags, leader, leader epoch, replica
// count), of the smallest partition (an empty topic and no replicas), and
// of a replica.
const (
	minNodeSize        = 8 + 4 + 2
	partitionFixedSize = 4 + 1 + 1 + 8 + 4 + 2
	minPartitionSize   = 2 + partitionFixedSize
	minReplicaSize     = 4 + 1 + 8
)

// maxTopics bounds the engine's interned topic names. A cluster with more
// topics than this still works; its batches just allocate their names.
const maxTopics = 4096

// nodeLabels caches one node table entry's label map by its encoding, so a
// node whose labels did not change since the last batch reuses its map.
type nodeLabels struct {
	raw    []byte // the encoded labels: the u16 count and the strings
	labels map[string]string
}

// decodeBatch decodes a batch into the engine's inputs. The slices it
// returns are the engine's and are overwritten by the next call.
func (e *engine) decodeBatch(data []byte) ([]Input, error) {
	r := newReader(data)
	if v := r.u16(); r.err == nil && v != abi.Version {
		return nil, fmt.Errorf("%w: batch version %d, want %d", abi.ErrMalformed, v, abi.Version)
	}
	nn := r.count(abi.MaxNodes, minNodeSize)
	e.nodes = grow(e.nodes, nn)
	if len(e.labelCache) < nn {
		e.labelCache = append(e.labelCache, make([]nodeLabels, nn-len(e.labelCache))...)
	} else {
		clear(e.labelCache[nn:])
		e.labelCache = e.labelCache[:nn]
	}
	for i := range nn {
		id, ageMs := r.u64(), r.u32()
		start := r.off()
		for range r.count16(abi.MaxLabels, 4) {
			r.take(int(r.u16()))
			r.take(int(r.u16()))
		}
		if r.err != nil {
			return nil, r.err
		}
		heard, age := ageMs != abi.NeverHeard, time.Duration(math.MaxInt64)
		if heard {
			age = time.Duration(ageMs) * time.Millisecond
		}
		e.nodes[i] = Replica{ID: id, Heard: heard, HeartbeatAge: age, Labels: e.labels(i, data[start:r.off()])}
	}
	np := r.count(abi.MaxPartitions, 24) // 24 as abi.DecodeBatch checks it, to accept what it accepts
	if r.err != nil {
		return nil, r.err
	}
	ins := grow(e.inputs, np)
	e.inputs = ins
	// Size the replicas once for the most the rest of the batch can hold
	// (each partition takes at least minPartitionSize bytes and each
	// replica minReplicaSize more). They then never move, so a partition's
	// Replicas are final as soon as they are filled, and a batch never
	// leaves a grown array's predecessors as garbage.
	if most := (len(r.rest) - np*minPartitionSize) / minReplicaSize; len(e.replicas) < most {
		e.replicas = make([]Replica, most)
	}
	all, nodes, rest := e.replicas, e.nodes, r.rest
	for i := range ins {
		// Bounds are checked once per partition and nothing is called on
		// the way: in Go's WebAssembly code every call and taken jump
		// costs a check when the host bounds calls with a deadline, and
		// this loop runs for every partition of every batch.
		if len(rest) < minPartitionSize {
			return nil, partitionError(rest, data)
		}
		fixed := 2 + int(binary.LittleEndian.Uint16(rest))
		if len(rest) < fixed+partitionFixedSize {
			return nil, partitionError(rest, data)
		}
		f := rest[fixed : fixed+partitionFixedSize : fixed+partitionFixedSize]
		nr := int(binary.LittleEndian.Uint16(f[18:]))
		end := fixed + partitionFixedSize + nr*minReplicaSize
		if nr > abi.MaxReplicas || end > len(rest) {
			return nil, partitionError(rest, data)
		}
		if nr > len(all) {
			// More replicas than the bound above allows leave too few bytes
			// for the partitions still to come, which abi.DecodeBatch
			// would find truncated.
			return nil, fmt.Errorf("%w: partition at byte %d: %d replicas leave too few bytes for the %d partitions after it",
				abi.ErrMalformed, len(data)-len(rest), nr, len(ins)-i-1)
		}
		if f[5]&^1 != 0 {
			return nil, fmt.Errorf("%w: partition at byte %d: unknown partition flags %#x", abi.ErrMalformed, len(data)-len(rest), f[5])
		}
		in := Input{
			Topic:       e.lastTopic,
			Partition:   int32(binary.LittleEndian.Uint32(f)),
			Reason:      reasonOf(abi.Reason(f[4])),
			Unclean:     f[5]&1 != 0,
			Leader:      binary.LittleEndian.Uint64(f[6:]),
			LeaderEpoch: int32(binary.LittleEndian.Uint32(f[14:])),
		}
		if name := rest[2:fixed]; string(name) != in.Topic {
			in.Topic = e.topic(name)
		}
		reps, src := all[:nr:nr], rest[fixed+partitionFixedSize:end]
		for j := range reps {
			b := src[j*minReplicaSize : (j+1)*minReplicaSize]
			node := binary.LittleEndian.Uint32(b)
			if int(node) >= len(nodes) {
				return nil, fmt.Errorf("%w: %s-%d: replica node index %d of %d nodes", abi.ErrMalformed, in.Topic, in.Partition, node, len(nodes))
			}
			if b[4]&^3 != 0 {
				return nil, fmt.Errorf("%w: %s-%d: unknown replica flags %#x", abi.ErrMalformed, in.Topic, in.Partition, b[4])
			}
			rep := nodes[node]
			rep.Alive, rep.InISR, rep.LogEndOffset = b[4]&1 != 0, b[4]&2 != 0, int64(binary.LittleEndian.Uint64(b[5:]))
			reps[j] = rep
		}
		// Capped by the slice expression above, so that a handler that
		// appends to its Replicas cannot overwrite the next partition's.
		in.Replicas = reps
		ins[i] = in
		all, rest = all[nr:], rest[end:]
	}
	r.rest = rest
	if err := r.done(); err != nil {
		return nil, err
	}
	return ins, nil
}

// partitionError reads the malformed partition at the start of rest with
// the general reader, for the error abi.DecodeBatch would give.
func partitionError(rest, data []byte) error {
	r := reader{rest: rest, size: len(data)}
	r.take(int(r.u16()))
	r.take(partitionFixedSize - 2)
	r.take(r.count16(abi.MaxReplicas, minReplicaSize) * minReplicaSize)
	if r.err == nil {
		return fmt.Errorf("%w: partition at byte %d", abi.ErrMalformed, len(data)-len(rest))
	}
	return r.err
}

// labels returns the label map of node table entry i, whose encoding is
// raw, building it only when the entry's labels changed.
func (e *engine) labels(i int, raw []byte) map[string]string {
	c := &e.labelCache[i]
	if c.raw != nil && string(c.raw) == string(raw) {
		return c.labels
	}
	c.raw = append(c.raw[:0], raw...)
	c.labels = nil
	r := newReader(raw)
	if n := int(r.u16()); n > 0 {
		c.labels = make(map[string]string, n)
		for range n {
			k := string(r.take(int(r.u16())))
			c.labels[k] = string(r.take(int(r.u16())))
		}
	}
	return c.labels
}

// topic returns name as a string, the same string every time while it is
// interned, so that a steady stream of batches allocates no topic names.
// A batch lists a topic's partitions together, so decodeBatch tries the
// last topic before it calls this.
func (e *engine) topic(name []byte) string {
	if s, ok := e.topics[string(name)]; ok {
		e.lastTopic = s
		return s
	}
	if e.topics == nil || len(e.topics) >= maxTopics {
		e.topics = make(map[string]string)
	}
	s := string(name)
	e.topics[s] = s
	e.lastTopic = s
	return s
}

// reasons are the known reasons by their encoding.
var reasons = [...]Reason{
	abi.ReasonLeaderTimeout:      LeaderTimeout,
	abi.ReasonControlledShutdown: ControlledShutdown,
	abi.ReasonRebalance:          Rebalance,
	abi.ReasonManual:             Manual,
}

// reasonOf converts an encoded reason, allocating only for an unknown one.
func reasonOf(r abi.Reason) Reason {
	if int(r) < len(reasons) {
		return reasons[r]
	}
	return Reason(r.String())
}

// reader decodes with sticky errors, like abi's: after the first short read
// every later read returns zero and done reports the error. Its reads are
// written to be inlined, with the failure out of line, because a call is
// dear in Go's WebAssembly code and a batch is tens of thousands of reads.
type reader struct {
	rest []byte // what is left to read
	size int    // the size of the whole message, for error offsets
	err  error
}

func newReader(buf []byte) reader { return reader{rest: buf, size: len(buf)} }

// off returns the offset of the next byte to read.
func (r *reader) off() int { return r.size - len(r.rest) }

// fail records a short read of n bytes and drops the rest, so that every
// later read fails too without checking err.
//
//go:noinline
func (r *reader) fail(n int) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated at byte %d (need %d more, have %d)", abi.ErrMalformed, r.off(), n, len(r.rest))
	}
	r.rest = r.rest[len(r.rest):]
}

func (r *reader) take(n int) []byte {
	if n > len(r.rest) {
		r.fail(n)
		return nil
	}
	b := r.rest[:n:n]
	r.rest = r.rest[n:]
	return b
}

func (r *reader) u8() uint8 {
	if len(r.rest) < 1 {
		r.fail(1)
		return 0
	}
	v := r.rest[0]
	r.rest = r.rest[1:]
	return v
}

func (r *reader) u16() uint16 {
	if len(r.rest) < 2 {
		r.fail(2)
		return 0
	}
	v := binary.LittleEndian.Uint16(r.rest)
	r.rest = r.rest[2:]
	return v
}

func (r *reader) u32() uint32 {
	if len(r.rest) < 4 {
		r.fail(4)
		return 0
	}
	v := binary.LittleEndian.Uint32(r.rest)
	r.rest = r.rest[4:]
	return v
}

func (r *reader) u64() uint64 {
	if len(r.rest) < 8 {
		r.fail(8)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.rest)
	r.rest = r.rest[8:]
	return v
}

// count reads a u32 count and checks it against max and against the bytes
// left, at least minSize each, as abi does, so that a lying count cannot
// make the decoder allocate.
func (r *reader) count(max, minSize int) int { return r.checkCount(int(r.u32()), max, minSize) }

func (r *reader) count16(max, minSize int) int { return r.checkCount(int(r.u16()), max, minSize) }

func (r *reader) checkCount(n, max, minSize int) int {
	if r.err != nil {
		return 0
	}
	if n > max || n*minSize > len(r.rest) {
		r.err = fmt.Errorf("%w: count %d at byte %d exceeds the limit (%d) or the message", abi.ErrMalformed, n, r.off(), max)
		r.rest = r.rest[len(r.rest):]
		return 0
	}
	return n
}

func (r *reader) done() error {
	if r.err == nil && len(r.rest) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", abi.ErrMalformed, len(r.rest))
	}
	return r.err
}
