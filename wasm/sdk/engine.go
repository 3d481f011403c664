package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// rt is the module's one engine: reeve never overlaps calls into an
// instance, so it needs no locking.
var rt engine

// engine does the work behind the module's exports. It holds every buffer
// a call needs and reuses them, so that a steady stream of batches
// allocates nothing but what the handler itself allocates.
type engine struct {
	handler  Handler
	initFunc InitFunc

	in         []byte       // the reeve_alloc buffer
	out        []byte       // the encoded answer, valid until the next call
	nodes      []Replica    // per batch: each node's ID, heartbeat and labels, copied into its replicas
	labelCache []nodeLabels // each node table entry's labels, kept while they do not change
	topics     topicTable   // interned topic names
	unyielded  int          // partitions and calls since the last yield
	inputs     []Input      // per batch, one per partition
	replicas   []Replica    // per batch: every partition's Replicas, back to back
}

// maxAlloc bounds reeve_alloc: more than fits in a 32-bit memory is a host
// bug, not a batch.
const maxAlloc = math.MaxInt32

// The engine yields to the Go scheduler after deciding yieldEvery
// partitions, counted across calls, each call counting as callWeight
// partitions more; see decide.
const (
	yieldEvery = 1024
	callWeight = 16
)

// alloc returns a buffer of at least size bytes for reeve to write the next
// input into, reusing the previous one when it is large enough. Growing it
// by a quarter more than asked saves a reallocation per call when batches
// grow slowly.
func (e *engine) alloc(size int) []byte {
	if size < 0 || size > maxAlloc {
		return nil
	}
	if cap(e.in) < max(size, 1) {
		e.in = nil // let the collector have the old buffer before the new one is made
		e.in = make([]byte, min(size+size/4+64, maxAlloc))
	}
	return e.in[:cap(e.in)]
}

// inputAt returns the n bytes at address ptr, which must lie within the
// buffer alloc returned: the engine reads nothing else of the module's
// memory. Zero bytes need no buffer, so a host may pass empty settings
// without calling reeve_alloc.
func (e *engine) inputAt(ptr uintptr, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if cap(e.in) == 0 {
		return nil, errors.New("input not in the reeve_alloc buffer: nothing was allocated")
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(e.in)))
	if ptr < base || n < 0 || uint64(ptr-base)+uint64(n) > uint64(cap(e.in)) {
		return nil, fmt.Errorf("input at %#x+%d is not in the reeve_alloc buffer at %#x+%d", ptr, n, base, cap(e.in))
	}
	off := int(ptr - base)
	return e.in[off : off+n : off+n], nil
}

// decide decodes a batch, runs the handler on every partition and returns
// the encoded answer, which stays valid until the next call.
//
// A handler that panics fails the whole call rather than one partition:
// no decision the engine could put in its place is safe for every reason
// (keeping a leader that timed out leaves the partition without one),
// whereas a failed call makes reeve decide the round with its built-in
// policy. The panic is recovered rather than left to kill the instance
// because the engine's state is intact and the next round may succeed.
//
// decide yields to the Go scheduler every yieldEvery partitions, counted
// across calls (so about every 60 calls of one partition each). A module
// is single-threaded and the collector's workers are goroutines, so a
// collection started while the module allocates can only finish when it
// yields; without yields the heap of a module whose handler allocates
// grows call after call until it hits the memory cap. Yielding on every
// call instead would add the scheduler's work to every small batch.
func (e *engine) decide(data []byte) (out []byte, err error) {
	if e.handler == nil {
		return nil, errors.New("no handler: call sdk.Handle from an init function")
	}
	ins, err := e.decodeBatch(data)
	if err != nil {
		return nil, fmt.Errorf("decode batch of %d bytes: %w", len(data), err)
	}
	i := 0
	defer func() {
		if v := recover(); v != nil {
			out, err = nil, fmt.Errorf("handler panicked deciding %s-%d: %v", ins[i].Topic, ins[i].Partition, v)
		}
	}()
	// The answer is encoded here rather than by a function per decision:
	// see decodeBatch on what calls cost.
	// It is abi.AppendDecisions's encoding at abi.Minor: the versions, a
	// header of 4 bytes with the count, then each decision with its
	// length.
	out = e.out[:0]
	if need := 10 + len(ins)*64; cap(out) < need {
		out = make([]byte, 0, need)
	}
	out = binary.LittleEndian.AppendUint16(out, abi.Major)
	out = binary.LittleEndian.AppendUint16(out, abi.Minor)
	out = binary.LittleEndian.AppendUint16(out, 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(ins)))
	h := e.handler
	for i = range ins {
		d := h(ins[i])
		if d.Kind > KindElect {
			return nil, fmt.Errorf("handler returned unknown decision kind %d for %s-%d", d.Kind, ins[i].Topic, ins[i].Partition)
		}
		reason := d.Reason
		if len(reason) > abi.MaxString {
			reason = reason[:abi.MaxString] // as abi.AppendDecisions cuts it
		}
		out = binary.LittleEndian.AppendUint32(out, uint32(1+8+2+len(reason)))
		out = append(out, byte(d.Kind))
		out = binary.LittleEndian.AppendUint64(out, d.Leader)
		out = binary.LittleEndian.AppendUint16(out, uint16(len(reason)))
		out = append(out, reason...)
		if e.unyielded++; e.unyielded >= yieldEvery {
			runtime.Gosched()
			e.unyielded = 0
		}
	}
	e.unyielded += callWeight
	e.out = out
	return out, nil
}

// init decodes the policy's settings and hands them to the registered
// InitFunc. No bytes at all are taken for no settings. A panic in the
// InitFunc is an error like any other.
func (e *engine) init(data []byte) (err error) {
	var settings []abi.Label
	if len(data) > 0 {
		if settings, err = abi.DecodeSettings(data); err != nil {
			return fmt.Errorf("decode settings of %d bytes: %w", len(data), err)
		}
	}
	if e.initFunc == nil {
		return nil
	}
	m := make(map[string]string, len(settings))
	for _, s := range settings {
		m[s.Key] = s.Value
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("init panicked: %v", v)
		}
	}()
	if err := e.initFunc(m); err != nil {
		return fmt.Errorf("settings refused: %w", err)
	}
	return nil
}

// grow returns s resliced to n elements, reallocating only when its
// capacity is short; the contents are not kept.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n, n+n/4)
	}
	return s[:n]
}
