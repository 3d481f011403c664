package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// Producer-state snapshots.
//
// Rebuilding a partition's producer state (producers.go) reads the header
// of every batch, so without help the first idempotent produce after a
// restart, or after this node takes over leadership, waits for a read of
// the whole retained log. A snapshot file in the partition's directory,
// <offset>.snapshot (the offset in 20 digits), holds the state as a scan
// of the log below that offset leaves it; a rebuild starts from the newest
// usable one and reads only the batches after it, so it reads at most what
// was appended since the last snapshot.
//
// A snapshot is written
//
//   - at every segment roll (storage.Options.OnRoll), by a goroutine of
//     the partition: from memory when the partition has its state loaded
//     (a leader that took idempotent produce), else by folding the batches
//     since the previous snapshot into it (a follower keeps no producer
//     state in memory, but may become the leader that needs it);
//   - when the log is closed (storage.Options.BeforeClose), from memory, if
//     the partition has its state loaded.
//
// Each is written durably (fsutil.WriteFileAtomic), and a write leaves the
// newest keepSnapshots that are still inside the log and removes the rest.
//
// # Which snapshot is used
//
// The newest one whose offset lies above the log start offset and at or
// below the log end offset, that decodes (magic, version, CRC-32C, every
// count within the file), and whose anchor (base offset, partition leader
// epoch and CRC of the batch that ends just below its offset) is the
// batch the log holds there. Snapshots above the log's end are removed
// when the partition is opened (recovery cut a torn tail they cover) and
// after a follower truncates (forgetProducers); the anchor makes one that
// escapes that harmless: a follower that truncated a divergent tail and
// copied its leader's batches past the snapshot's offset holds other
// batches there (another leader epoch), so the snapshot is passed over.
// A damaged snapshot is passed over with a Warn log, an older one or
// a scan of the whole log taking its place; nothing stops the partition.
//
// From the snapshot, batches below the log start offset are dropped (and a
// producer left with none is forgotten, as a scan that starts at the log
// start offset would not see it), which makes the result equal a scan of
// the retained log: a producer's remembered batches are the newest of its
// current epoch, and a scan of a suffix of the log sees the same newest
// ones. The one difference is expiry: a producer that expired before the
// snapshot was written (producerExpiry) stays forgotten, and a snapshot
// keeps each producer's last-seen time, so one idle for producerExpiry is
// dropped when loaded; a scan sees every producer as new.
//
// # Last seen
//
// A snapshot from memory has each producer's last-seen time; one folded
// from the log (a follower's) takes a producer first folded in at a roll
// as seen then, at most one segment's lifetime after it really was.

const (
	snapshotSuffix = ".snapshot"
	snapshotMagic  = "RVPS"
	// snapshotVersion is the format written; a file of another version is
	// passed over (a downgrade rebuilds from the log).
	snapshotVersion = 1
	// snapshotHeaderSize: magic 4, version 2, CRC-32C 4, then (covered by
	// the CRC) offset 8, anchor base offset 8, anchor leader epoch 4,
	// anchor batch CRC 4, producer count 4.
	snapshotHeaderSize = 38
	// snapshotEntrySize is one producer without its batches: producer id
	// 8, epoch 2, last seen (Unix ms) 8, batch count 1.
	snapshotEntrySize = 19
	// snapshotBatchSize is one remembered batch: first and last sequence
	// 4+4, base and last offset 8+8.
	snapshotBatchSize = 24
	// maxSnapshotBytes bounds a snapshot file, read or written: some
	// 480,000 producers on one partition.
	maxSnapshotBytes = 64 << 20
	// keepSnapshots is how many snapshots a partition directory keeps: the
	// newest, and older ones for when it is damaged or a truncation left
	// it above the log's end.
	keepSnapshots = 3
)

// errBadSnapshot marks a snapshot file that does not decode.
var errBadSnapshot = errors.New("damaged producer state snapshot")

func snapshotName(offset int64) string { return fmt.Sprintf("%020d%s", offset, snapshotSuffix) }

func parseSnapshotName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, snapshotSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(stem, 10, 64)
	return n, err == nil && n >= 0
}

// snapshotAnchor names the batch a snapshot's offset follows.
type snapshotAnchor struct {
	base  int64
	epoch int32
	crc   uint32
}

func anchorOf(h storage.BatchHeader) snapshotAnchor {
	return snapshotAnchor{base: h.BaseOffset, epoch: h.PartitionLeaderEpoch, crc: h.CRC}
}

// producerSnapshot is a decoded snapshot: the state of the log below
// offset, whose last batch is anchor.
type producerSnapshot struct {
	offset int64
	anchor snapshotAnchor
	byID   map[int64]*producerEntry
}

// encodeSnapshot lays out a snapshot, producers in id order so that equal
// states give equal files.
func encodeSnapshot(s *producerSnapshot) ([]byte, error) {
	ids := make([]int64, 0, len(s.byID))
	size := snapshotHeaderSize
	for id, e := range s.byID {
		ids = append(ids, id)
		size += snapshotEntrySize + e.n*snapshotBatchSize
	}
	if size > maxSnapshotBytes {
		return nil, fmt.Errorf("%d producers take %d bytes, past the %d a snapshot may hold", len(ids), size, maxSnapshotBytes)
	}
	slices.Sort(ids)
	be := binary.BigEndian
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = be.AppendUint16(b, snapshotVersion)
	b = be.AppendUint32(b, 0) // CRC, below
	b = be.AppendUint64(b, uint64(s.offset))
	b = be.AppendUint64(b, uint64(s.anchor.base))
	b = be.AppendUint32(b, uint32(s.anchor.epoch))
	b = be.AppendUint32(b, s.anchor.crc)
	b = be.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		e := s.byID[id]
		b = be.AppendUint64(b, uint64(id))
		b = be.AppendUint16(b, uint16(e.epoch))
		b = be.AppendUint64(b, uint64(e.lastSeen.UnixMilli()))
		b = append(b, byte(e.n))
		for i := range e.n {
			m := e.batches[(e.head+i)%producerBatches]
			b = be.AppendUint32(b, uint32(m.firstSeq))
			b = be.AppendUint32(b, uint32(m.lastSeq))
			b = be.AppendUint64(b, uint64(m.baseOffset))
			b = be.AppendUint64(b, uint64(m.lastOffset))
		}
	}
	be.PutUint32(b[6:], crc32.Checksum(b[10:], castagnoli))
	return b, nil
}

// decodeSnapshot parses a snapshot file's bytes. Every error wraps
// errBadSnapshot; nothing is allocated past what len(b) can hold.
func decodeSnapshot(b []byte) (*producerSnapshot, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errBadSnapshot, fmt.Sprintf(format, args...))
	}
	if len(b) < snapshotHeaderSize || string(b[:4]) != snapshotMagic {
		return nil, bad("not a producer state snapshot (%d bytes)", len(b))
	}
	be := binary.BigEndian
	if v := be.Uint16(b[4:]); v != snapshotVersion {
		return nil, bad("version %d; this reeve reads version %d", v, snapshotVersion)
	}
	if want, got := be.Uint32(b[6:]), crc32.Checksum(b[10:], castagnoli); want != got {
		return nil, bad("CRC-32C %08x, the file says %08x", got, want)
	}
	s := &producerSnapshot{
		offset: int64(be.Uint64(b[10:])),
		anchor: snapshotAnchor{base: int64(be.Uint64(b[18:])), epoch: int32(be.Uint32(b[26:])), crc: be.Uint32(b[30:])},
	}
	count := int64(be.Uint32(b[34:]))
	rest := b[snapshotHeaderSize:]
	if count*(snapshotEntrySize+snapshotBatchSize) > int64(len(rest)) {
		return nil, bad("%d producers cannot fit in %d bytes", count, len(rest))
	}
	s.byID = make(map[int64]*producerEntry, count)
	prev := int64(-1)
	for range count {
		if len(rest) < snapshotEntrySize {
			return nil, bad("truncated producer entry")
		}
		id := int64(be.Uint64(rest))
		e := &producerEntry{epoch: int16(be.Uint16(rest[8:])), lastSeen: time.UnixMilli(int64(be.Uint64(rest[10:])))}
		n := int(rest[18])
		rest = rest[snapshotEntrySize:]
		if n < 1 || n > producerBatches || len(rest) < n*snapshotBatchSize {
			return nil, bad("producer %d: %d batches", id, n)
		}
		if id < 0 || id <= prev {
			return nil, bad("producer id %d after %d; ids ascend from 0", id, prev)
		}
		prev = id
		for range n {
			e.add(batchMeta{
				firstSeq: int32(be.Uint32(rest)), lastSeq: int32(be.Uint32(rest[4:])),
				baseOffset: int64(be.Uint64(rest[8:])), lastOffset: int64(be.Uint64(rest[16:])),
			})
			rest = rest[snapshotBatchSize:]
		}
		s.byID[id] = e
	}
	if len(rest) != 0 {
		return nil, bad("%d bytes after the last producer", len(rest))
	}
	return s, nil
}

// listSnapshots returns the offsets of the snapshots in dir, ascending.
func listSnapshots(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	for _, e := range ents {
		if off, ok := parseSnapshotName(e.Name()); ok && e.Type().IsRegular() {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	return offs, nil
}

// readSnapshot reads and decodes one snapshot, its size checked against
// maxSnapshotBytes before anything is allocated.
func readSnapshot(dir string, offset int64) (*producerSnapshot, error) {
	f, err := os.Open(filepath.Join(dir, snapshotName(offset)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxSnapshotBytes {
		return nil, fmt.Errorf("%w: %d bytes, past the %d a snapshot may hold", errBadSnapshot, fi.Size(), maxSnapshotBytes)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSnapshot, err)
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return nil, err
	}
	if s.offset != offset {
		return nil, fmt.Errorf("%w: holds offset %d, named %d", errBadSnapshot, s.offset, offset)
	}
	return s, nil
}

// batchBelow returns the header of the batch that holds offset-1, if the
// log has it.
func batchBelow(l *storage.Log, offset int64) (storage.BatchHeader, bool, error) {
	var h storage.BatchHeader
	found := false
	if offset <= l.LogStartOffset() || offset > l.LogEndOffset() {
		return h, false, nil
	}
	err := l.ScanHeaders(offset-1, func(x storage.BatchHeader) bool {
		h, found = x, x.BaseOffset <= offset-1
		return false
	})
	return h, found && h.LastOffset() == offset-1, err
}

// rebuilt is the producer state of a log below end.
type rebuilt struct {
	byID     map[int64]*producerEntry
	snapshot int64 // the offset of the snapshot it started from; -1 for none
	batches  int   // batch headers read after it
	// anchor is the batch that ends at end-1, when known (anchored).
	anchor   snapshotAnchor
	anchored bool
}

// rebuildProducers returns the producer state of l below end (at most its
// log end offset): the newest usable snapshot at or below end, with the
// batches after it folded in as observe does, each new producer seen at
// now. See the top of this file for which snapshot is usable; log gets a
// Warn for each damaged one passed over.
func rebuildProducers(l *storage.Log, log *slog.Logger, end int64, now time.Time) (rebuilt, error) {
	r := rebuilt{byID: make(map[int64]*producerEntry), snapshot: -1}
	dir := l.Dir()
	logStart := l.LogStartOffset()
	offs, err := listSnapshots(dir)
	if err != nil {
		log.Warn("kafka: cannot list producer state snapshots; rebuilding the producer state from the whole log",
			"dir", dir, "err", err)
	}
	from := int64(0)
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > end {
			continue
		}
		if off <= logStart {
			break // it and older ones cover only deleted records
		}
		s, err := readSnapshot(dir, off)
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned meanwhile
		}
		if err != nil {
			log.Warn("kafka: ignoring a damaged producer state snapshot; the state is rebuilt from an older snapshot or the log, and the file is removed when newer snapshots replace it",
				"file", filepath.Join(dir, snapshotName(off)), "err", err)
			continue
		}
		h, ok, err := batchBelow(l, off)
		if err != nil {
			return r, err
		}
		if !ok || anchorOf(h) != s.anchor {
			log.Info("kafka: ignoring a producer state snapshot the log no longer matches (it was truncated after the snapshot)",
				"file", filepath.Join(dir, snapshotName(off)))
			continue
		}
		for id, e := range s.byID {
			if kept, ok := e.keptFrom(logStart); ok && !kept.lastSeen.Before(now.Add(-producerExpiry)) {
				r.byID[id] = kept
			}
		}
		from, r.snapshot, r.anchor, r.anchored = off, off, s.anchor, off == end
		break
	}
	scan := &producerState{byID: r.byID}
	err = l.ScanHeaders(from, func(h storage.BatchHeader) bool {
		if h.BaseOffset >= end {
			return false
		}
		r.batches++
		r.anchor, r.anchored = anchorOf(h), h.LastOffset() == end-1
		if h.ProducerID >= 0 && h.Attributes&controlBatch == 0 {
			scan.observe(h, h.BaseOffset, now)
		}
		return true
	})
	return r, err
}

// keptFrom returns the entry with only its batches that end at or after
// logStart, and false when none does.
func (e *producerEntry) keptFrom(logStart int64) (*producerEntry, bool) {
	k := &producerEntry{epoch: e.epoch, lastSeen: e.lastSeen}
	for i := range e.n {
		if b := e.batches[(e.head+i)%producerBatches]; b.lastOffset >= logStart {
			k.add(b)
		}
	}
	return k, k.n > 0
}

// writeSnapshot writes s into l's directory and prunes the snapshots
// there: those at or below the log start offset (they cover deleted
// records only), those above the log end offset (a truncation left them),
// and all but the newest keepSnapshots of the rest.
func writeSnapshot(l *storage.Log, s *producerSnapshot) error {
	b, err := encodeSnapshot(s)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(l.Dir(), snapshotName(s.offset), b, 0o644); err != nil {
		return err
	}
	pruneSnapshots(l, keepSnapshots)
	return nil
}

// pruneSnapshots removes the snapshots a rebuild would never use and all
// but the newest keep of the others. Removal is best effort: a file left
// behind is passed over or removed next time.
func pruneSnapshots(l *storage.Log, keep int) {
	offs, err := listSnapshots(l.Dir())
	if err != nil {
		return
	}
	start, end := l.LogStartOffset(), l.LogEndOffset()
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		if off > start && off <= end && keep > 0 {
			keep--
			continue
		}
		os.Remove(filepath.Join(l.Dir(), snapshotName(off)))
	}
}

// dropStaleSnapshots runs right after the log is opened: it removes the
// snapshots recovery left above the log's end (a crash lost a tail they
// cover) before appends grow the log past them, and those below its
// start. The anchor check would pass over the first kind, but for one
// case: the same batch appended again at the same offset (a producer's
// retry) after other batches than before it.
func (p *partition) dropStaleSnapshots() { pruneSnapshots(p.log, math.MaxInt) }

// snapshotHooks sets the storage hooks that keep a partition's producer
// snapshots: a snapshot at each roll and one from memory at Close.
func (p *partition) snapshotHooks(o *storage.Options) {
	o.OnRoll = p.rolled
	o.BeforeClose = p.beforeLogClose
}

// rolled is the log's OnRoll hook: it asks for a snapshot at base and
// returns at once; one goroutine per partition writes them, each roll's in
// turn, so the snapshots sit at the segment bases however late the
// goroutine runs (a truncation then finds one below it).
func (p *partition) rolled(base int64) {
	ps := &p.producers
	ps.snapMu.Lock()
	defer ps.snapMu.Unlock()
	if ps.snapClosed {
		return
	}
	ps.snapWant = append(ps.snapWant, base)
	if ps.snapDone != nil {
		return
	}
	done := make(chan struct{})
	ps.snapDone = done
	go p.snapshotRolls(done)
}

// snapshotRolls writes roll snapshots until none is wanted. A closing log
// waits for it (beforeLogClose), so every roll has its snapshot.
func (p *partition) snapshotRolls(done chan struct{}) {
	ps := &p.producers
	for {
		ps.snapMu.Lock()
		if len(ps.snapWant) == 0 {
			ps.snapWant, ps.snapDone = nil, nil
			ps.snapMu.Unlock()
			close(done)
			return
		}
		want := ps.snapWant[0]
		ps.snapWant = ps.snapWant[1:]
		ps.snapMu.Unlock()
		p.snapshotAt(want)
	}
}

// snapshotAt writes a roll snapshot at end: the partition's state from
// memory when it has it (a leader that took idempotent produce) and the
// log has not grown past end since, else the state of the log below end,
// folded from the previous snapshot and the batches after it.
func (p *partition) snapshotAt(end int64) {
	l := p.log
	if l.Failed() != nil {
		return
	}
	s := p.memorySnapshot()
	if s != nil && s.offset != end {
		s = nil
	}
	batches := 0
	if s == nil {
		r, err := rebuildProducers(l, p.logger, end, time.Now())
		switch {
		case errors.Is(err, storage.ErrClosed):
			return
		case err != nil:
			p.logger.Warn("kafka: cannot read the log for a producer state snapshot; the next rebuild reads more of the log",
				"topic", p.topic, "partition", p.index, "dir", l.Dir(), "err", err)
			return
		case !r.anchored || r.snapshot == end:
			return // nothing below end, or nothing new
		}
		s, batches = &producerSnapshot{offset: end, anchor: r.anchor, byID: r.byID}, r.batches
	}
	if err := writeSnapshot(l, s); err != nil {
		p.logger.Warn("kafka: cannot write a producer state snapshot; the next rebuild reads more of the log",
			"topic", p.topic, "partition", p.index, "dir", l.Dir(), "err", err)
		return
	}
	p.logger.Debug("kafka: wrote producer state snapshot", "topic", p.topic, "partition", p.index,
		"offset", s.offset, "producers", len(s.byID), "batches_read", batches)
}

// memorySnapshot returns the partition's producer state as a snapshot at
// the log end offset, or nil when the state is not in memory or the log
// is empty.
func (p *partition) memorySnapshot() *producerSnapshot {
	ps := &p.producers
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.loaded {
		return nil
	}
	end := p.log.LogEndOffset()
	h, ok, err := batchBelow(p.log, end)
	if err != nil || !ok {
		return nil
	}
	s := &producerSnapshot{offset: end, anchor: anchorOf(h), byID: make(map[int64]*producerEntry, len(ps.byID))}
	for id, e := range ps.byID {
		c := *e
		s.byID[id] = &c
	}
	return s
}

// beforeLogClose is the log's BeforeClose hook: it waits for the roll
// snapshots and, when the partition has its producer state in memory,
// writes it as a snapshot at the log end offset, so the next start reads
// no batch at all.
func (p *partition) beforeLogClose() {
	ps := &p.producers
	ps.snapMu.Lock()
	ps.snapClosed = true
	done := ps.snapDone
	ps.snapMu.Unlock()
	if done != nil {
		<-done
	}
	if p.log.Failed() != nil {
		return
	}
	s := p.memorySnapshot()
	if s == nil {
		return
	}
	if err := writeSnapshot(p.log, s); err != nil {
		p.logger.Warn("kafka: cannot write the producer state snapshot at close; the next start rebuilds from an older snapshot",
			"topic", p.topic, "partition", p.index, "dir", p.log.Dir(), "err", err)
	}
}
