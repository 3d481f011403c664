package sdk

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// This file decodes batches in the format of package abi straight into
// the engine's reused slices. abi.DecodeBatch would do, but it allocates a
// new Batch, a slice per partition and a string per topic on every call,
// and in a Go module that garbage is costly: the collector can only finish
// a cycle when the module yields, so a few large batches grew the heap
// past a 16 MiB cap before it did. The tests check that this decoder
// accepts exactly what abi.DecodeBatch accepts and reads the same values.
//
// It is also written for what code costs in a module. Go's runtime
// compares and hashes strings a byte at a time in WebAssembly, and each of
// those bytes is a loop iteration, which reeve's deadline check makes
// dearer still (see wasm/instrument.go): a string comparison or a map
// lookup cost more than deciding the partition. So the decoder checks
// bounds once per node and partition, calls nothing on the way, and
// compares names a word at a time. When a check fails it stops and asks
// abi.DecodeBatch for the error, so that both report the same one.

// The sizes of a batch's records at minor 0, with their lengths, as
// abi.DecodeBatch requires them (see package abi on versions): the
// versions and the header; the smallest node (no labels); a partition's
// fields after its topic (partition, reason, flags, leader, leader epoch,
// replica count); the smallest partition (an empty topic and no
// replicas); and a replica. A record may be longer, with the fields of a
// later minor after these: the decoder skips them.
const (
	headerSize         = 2 + 2 + 2 + 4 + 4
	minNodeSize        = 4 + 8 + 4 + 2
	partitionFixedSize = 4 + 1 + 1 + 8 + 4 + 2
	minPartitionSize   = 4 + 2 + partitionFixedSize
	replicaSize        = 2 + 4 + 1 + 8
)

// nodeLabels caches one node table entry's label map by its encoding, so a
// node whose labels did not change since the last batch reuses its map.
type nodeLabels struct {
	raw    []byte // the encoded labels: the u16 count and the strings
	labels map[string]string
}

// errDisagree is reported if this decoder refuses a batch that
// abi.DecodeBatch accepts, which the fuzz tests exist to rule out.
var errDisagree = errors.New("the SDK's decoder refused a batch that package abi accepts (an SDK bug)")

// decodeBatch decodes a batch into the engine's inputs. The slices it
// returns are the engine's and are overwritten by the next call.
//
// It reads the fields of minor 0 whatever the batch's minor: at abi.Minor
// 0 no field depends on it.
func (e *engine) decodeBatch(data []byte) ([]Input, error) {
	if len(data) < 6 || binary.LittleEndian.Uint16(data) != abi.Major {
		return nil, batchError(data)
	}
	hl := int(binary.LittleEndian.Uint16(data[4:]))
	if hl < headerSize-6 || hl > len(data)-6 {
		return nil, batchError(data)
	}
	nn, np := binary.LittleEndian.Uint32(data[6:]), binary.LittleEndian.Uint32(data[10:])
	rest := data[6+hl:]
	if nn > abi.MaxNodes || np > abi.MaxPartitions || int(nn)*minNodeSize+int(np)*minPartitionSize > len(rest) {
		return nil, batchError(data)
	}
	e.nodes = grow(e.nodes, int(nn))
	if len(e.labelCache) < int(nn) {
		e.labelCache = append(e.labelCache, make([]nodeLabels, int(nn)-len(e.labelCache))...)
	} else {
		clear(e.labelCache[nn:])
		e.labelCache = e.labelCache[:nn]
	}
	nodes := e.nodes
	for i := range nodes {
		if len(rest) < 4 {
			return nil, batchError(data)
		}
		size := uint64(binary.LittleEndian.Uint32(rest))
		if size < minNodeSize-4 || size > uint64(len(rest)-4) {
			return nil, batchError(data)
		}
		rec := rest[4 : 4+size : 4+size]
		rest = rest[4+size:]
		n := &nodes[i]
		n.ID = binary.LittleEndian.Uint64(rec)
		ageMs := binary.LittleEndian.Uint32(rec[8:])
		n.Heard = ageMs != abi.NeverHeard
		n.HeartbeatAge = time.Duration(math.MaxInt64)
		if n.Heard {
			n.HeartbeatAge = time.Duration(ageMs) * time.Millisecond
		}
		// The labels, then any later minor's fields. An encoding is self-
		// delimiting, so labels whose bytes start as the cached ones did
		// are those labels: the fields after them may change from batch
		// to batch without costing a new map.
		tail := rec[12:]
		if c := &e.labelCache[i]; c.raw != nil && len(tail) >= len(c.raw) && equalBytes(tail[:len(c.raw)], c.raw) {
			n.Labels = c.labels
			continue
		}
		ls, ok := labelsSize(tail)
		if !ok {
			return nil, batchError(data)
		}
		n.Labels = e.newLabels(i, tail[:ls])
	}
	ins := grow(e.inputs, int(np))
	e.inputs = ins
	// Size the replicas once for the most the rest of the batch can hold
	// (each partition takes at least minPartitionSize bytes and each
	// replica replicaSize more). They then never move, so a partition's
	// Replicas are final as soon as they are filled, and a batch never
	// leaves a grown array's predecessors as garbage.
	if most := (len(rest) - int(np)*minPartitionSize) / replicaSize; len(e.replicas) < most {
		e.replicas = make([]Replica, most)
	}
	if len(e.topics.slots) == 0 {
		e.topics.grow()
	}
	all, slots, mask := e.replicas, e.topics.slots, len(e.topics.slots)-1
	var prev topicName // the last partition's topic
	for i := range ins {
		if len(rest) < 4 {
			return nil, batchError(data)
		}
		size := uint64(binary.LittleEndian.Uint32(rest))
		if size < minPartitionSize-4 || size > uint64(len(rest)-4) {
			return nil, batchError(data)
		}
		rec := rest[4 : 4+size : 4+size]
		rest = rest[4+size:]
		nameLen := int(binary.LittleEndian.Uint16(rec))
		fixed := 2 + nameLen
		if len(rec) < fixed+partitionFixedSize {
			return nil, batchError(data)
		}
		f := rec[fixed : fixed+partitionFixedSize : fixed+partitionFixedSize]
		nr := int(binary.LittleEndian.Uint16(f[18:]))
		src := rec[fixed+partitionFixedSize:]
		// More replicas than all holds leave too few bytes for the
		// partitions still to come (see above). Flag bits past those
		// minor 0 defines are ignored, as abi.DecodeBatch ignores them.
		if nr > abi.MaxReplicas || nr*replicaSize > len(src) || nr > len(all) {
			return nil, batchError(data)
		}
		in := &ins[i]
		in.Partition = int32(binary.LittleEndian.Uint32(f))
		in.Reason = reasonOf(abi.Reason(f[4]))
		in.Unclean = f[5]&1 != 0
		in.Leader = binary.LittleEndian.Uint64(f[6:])
		in.LeaderEpoch = int32(binary.LittleEndian.Uint32(f[14:]))
		// The name's words: 8 bytes after its length are in the record
		// whatever its length, since the fixed fields follow it; the last
		// word is 0 up to 8 bytes, computed without a jump.
		first := binary.LittleEndian.Uint64(rec[2:]) & firstMask(nameLen)
		long := uint64(int64(8-nameLen) >> 63) // all ones past 8 bytes
		last := binary.LittleEndian.Uint64(rec[2+(nameLen-8)&int(long):]) & long
		// A batch lists a topic's partitions together, so the name is
		// most often the last one; else it is looked up in the table.
		if p := &prev; uint64(nameLen^len(p.name))|first^p.first|last^p.last != 0 ||
			nameLen > 16 && !equalBytes(rec[10:fixed-8], bytesOf(p.name[8:nameLen-8])) {
			h := hashWords(nameLen, first, last)
			if nameLen > 16 {
				h = hashMiddle(h, rec[10:fixed-8])
			}
			s := &slots[int(h)&mask]
			p.name, p.first, p.last = s.name, first, last
			if (s.hash^h)|(s.first^first)|(s.last^last)|uint64(len(s.name)^nameLen) != 0 ||
				nameLen > 16 && !equalBytes(rec[10:fixed-8], bytesOf(s.name[8:nameLen-8])) {
				p.name = e.topics.find(rec[2:fixed], first, last, h)
				slots, mask = e.topics.slots, len(e.topics.slots)-1
			}
		}
		in.Topic = prev.name
		reps := all[:nr:nr]
		for j := range reps {
			// Each replica is a u16 length and at least 13 bytes: node
			// index, flags, log-end offset.
			if len(src) < 2 {
				return nil, batchError(data)
			}
			rl := int(binary.LittleEndian.Uint16(src))
			if rl < replicaSize-2 || rl > len(src)-2 {
				return nil, batchError(data)
			}
			b := src[2 : 2+replicaSize-2 : 2+replicaSize-2]
			src = src[2+rl:]
			node := binary.LittleEndian.Uint32(b)
			if int(node) >= len(nodes) {
				return nil, batchError(data)
			}
			rep := nodes[node]
			rep.Alive, rep.InISR, rep.LogEndOffset = b[4]&1 != 0, b[4]&2 != 0, int64(binary.LittleEndian.Uint64(b[5:]))
			reps[j] = rep
		}
		// Capped by the slice expression above, so that a handler that
		// appends to its Replicas cannot overwrite the next partition's.
		in.Replicas = reps
		all = all[nr:]
	}
	// Bytes after the last partition are a later minor's, as are those
	// after the fields each record holds at minor 0.
	return ins, nil
}

// batchError returns abi.DecodeBatch's error for a batch the decoder
// refused.
func batchError(data []byte) error {
	if _, err := abi.DecodeBatch(data); err != nil {
		return err
	}
	return errDisagree
}

// labelsSize returns the size of the labels encoded at the start of b (the
// u16 count and the strings), checking them as abi.DecodeBatch does.
func labelsSize(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	n, off := int(binary.LittleEndian.Uint16(b)), 2
	if n > abi.MaxLabels || n*4 > len(b)-off {
		return 0, false
	}
	for range 2 * n {
		if len(b)-off < 2 {
			return 0, false
		}
		off += 2 + int(binary.LittleEndian.Uint16(b[off:]))
		if off > len(b) {
			return 0, false
		}
	}
	return off, true
}

// newLabels builds and caches the label map of node table entry i from
// its encoding, which labelsSize checked.
func (e *engine) newLabels(i int, raw []byte) map[string]string {
	c := &e.labelCache[i]
	c.raw = append(c.raw[:0], raw...)
	c.labels = nil
	n := int(binary.LittleEndian.Uint16(raw))
	if n == 0 {
		return nil
	}
	c.labels = make(map[string]string, n)
	rest := raw[2:]
	str := func() string {
		l := int(binary.LittleEndian.Uint16(rest))
		s := string(rest[2 : 2+l])
		rest = rest[2+l:]
		return s
	}
	for range n {
		k := str()
		c.labels[k] = str()
	}
	return c.labels
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
	return unknownReason(r)
}

func unknownReason(r abi.Reason) Reason { return Reason(r.String()) }

// firstMask masks the first n bytes of a little-endian word, all of them
// from n = 8 on (Go defines a shift past the width as 0).
func firstMask(n int) uint64 { return uint64(1)<<(8*uint(n)) - 1 }

// bytesOf returns the bytes of s, which must not be modified.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// equalBytes reports whether a and b are equal, comparing a word at a
// time: the loop runs once per 8 bytes, not once per byte as Go's string
// comparison does in WebAssembly, and not at all up to 16 bytes.
func equalBytes(a, b []byte) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	if n < 8 {
		if n < 4 {
			// Bytes 0, n/2 and n-1 cover every byte of up to 3.
			return n == 0 || a[0] == b[0] && a[n/2] == b[n/2] && a[n-1] == b[n-1]
		}
		return binary.LittleEndian.Uint32(a) == binary.LittleEndian.Uint32(b) &&
			binary.LittleEndian.Uint32(a[n-4:]) == binary.LittleEndian.Uint32(b[n-4:])
	}
	for i := 8; i < n; i += 8 {
		if binary.LittleEndian.Uint64(a[i-8:]) != binary.LittleEndian.Uint64(b[i-8:]) {
			return false
		}
	}
	return binary.LittleEndian.Uint64(a[n-8:]) == binary.LittleEndian.Uint64(b[n-8:])
}
