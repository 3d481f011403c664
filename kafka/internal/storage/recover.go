package storage

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// load opens the segments of l.dir and recovers them; see the package
// documentation. It runs before the syncer starts, alone.
func (l *Log) load() error {
	dirEntries, err := os.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range dirEntries {
		name := e.Name()
		if strings.HasSuffix(name, fsutil.TmpSuffix) {
			// A checkpoint write that did not finish; the old file stands.
			os.Remove(filepath.Join(l.dir, name))
			continue
		}
		if base, ok := parseSegmentName(name); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	dirty := l.removeOrphanIndexes(dirEntries, bases)

	logStart, lsOK, err := readLogStart(l.dir)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return err
		}
		l.log.Warn("ignoring a damaged log start checkpoint; records below the real log start offset may be readable again", "err", err)
	}
	rp, rpOK, err := readRecoveryPoint(l.dir)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return err
		}
		l.log.Warn("ignoring a damaged recovery point; every segment is scanned", "err", err)
	}
	if rpOK {
		l.rp = rp
	}
	l.epochs, err = readEpochs(l.dir)
	rebuildEpochs := false
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return err
		}
		l.log.Warn("rebuilding a damaged leader epoch checkpoint from the log", "err", err)
		rebuildEpochs = true
	}

	for _, base := range bases {
		s, err := openSegmentFile(l.dir, base, false)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, s)
	}
	// Segments wholly below the log start offset were being deleted when
	// the process stopped.
	for lsOK && len(l.segs) > 1 && l.segs[1].base <= logStart {
		if err := l.segs[0].remove(); err != nil {
			return err
		}
		l.segs = l.segs[1:]
		dirty = true
	}

	// Epoch changes seen by the scans, applied once the log end is known.
	type epochStart struct {
		epoch int32
		start int64
	}
	var seen []epochStart
	onBatch := func(h BatchHeader) {
		if n := len(seen); n == 0 || seen[n-1].epoch != h.PartitionLeaderEpoch {
			seen = append(seen, epochStart{h.PartitionLeaderEpoch, h.BaseOffset})
		}
	}

	for i := 0; i < len(l.segs); i++ {
		s := l.segs[i]
		if i > 0 && s.base != l.segs[i-1].next {
			l.dropFrom(i, fmt.Sprintf("segment %s starts at offset %d but the segment before it ends at %d",
				s.name(), s.base, l.segs[i-1].next))
			dirty = true
			break
		}
		fi, err := s.log.Stat()
		if err != nil {
			return err
		}
		size := fi.Size()
		var trust int64
		if rpOK {
			switch {
			case s.base < rp.base && i < len(l.segs)-1:
				trust = size
			case s.base == rp.base:
				trust = min(rp.pos, size)
				if size < rp.pos {
					l.log.Error("segment is shorter than its recovery point: fsynced data was lost, check the disk",
						"segment", s.name(), "size", size, "recovery_point", rp.pos)
				}
			}
		}
		s.needSync = !rpOK || s.base >= rp.base
		cut, err := l.recoverSegment(s, size, trust, onBatch)
		if err != nil {
			return err
		}
		if cut && i < len(l.segs)-1 {
			l.dropFrom(i+1, fmt.Sprintf("segment %s is damaged at offset %d", s.name(), s.next))
			dirty = true
			break
		}
	}

	if len(l.segs) == 0 {
		base := int64(0)
		if lsOK {
			base = logStart
		}
		if err := l.startEmpty(base); err != nil {
			return err
		}
		dirty = true
	}
	if end := l.active().next; lsOK && logStart > end {
		l.log.Warn("the log ends below its log start offset (its tail was lost); starting empty at the log start offset",
			"offset", end, "log_start_offset", logStart)
		for _, s := range l.segs {
			if err := s.remove(); err != nil {
				return err
			}
		}
		l.segs = nil
		if err := l.startEmpty(logStart); err != nil {
			return err
		}
		dirty = true
	}
	last := l.active()
	l.logStart = max(logStart, l.segs[0].base)
	l.leo.Store(last.next)

	oldEpochs := slices.Clone(l.epochs.entries)
	if rebuildEpochs {
		l.epochs = epochCache{}
		for _, s := range l.segs {
			err := walkHeaders(s.log, 0, s.size, func(h BatchHeader, _ int64) bool {
				l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset)
				return true
			})
			if err != nil {
				return fmt.Errorf("rebuild leader epochs from %s: %w", s.name(), err)
			}
		}
	} else {
		l.epochs.truncateFromEnd(last.next)
		for _, e := range seen {
			l.epochs.assign(e.epoch, e.start)
		}
	}
	l.epochs.truncateFromEnd(last.next)
	l.epochs.truncateFromStart(l.logStart)
	if rebuildEpochs || !slices.Equal(oldEpochs, l.epochs.entries) {
		if err := l.epochs.save(l.dir); err != nil {
			return err
		}
	}

	// Whatever recovery read past the recovery point may sit only in the
	// page cache (a killed process, not a lost machine): fsync it before the
	// recovery point moves past it.
	for _, s := range l.segs {
		if s.needSync {
			if err := s.openIndexes(); err != nil {
				return err
			}
			if err := s.sync(); err != nil {
				return err
			}
			s.needSync = false
		}
		if s != last {
			if err := s.closeIndexes(); err != nil {
				return err
			}
		}
	}
	if err := last.openIndexes(); err != nil {
		return err
	}
	if dirty {
		if err := fsutil.SyncDir(l.dir); err != nil {
			return err
		}
	}
	end := recoveryPoint{base: last.base, pos: last.size, next: last.next}
	if err := l.setRecoveryPoint(end, true); err != nil {
		// On a full disk the old recovery point may stand if it does not
		// reach past what recovery kept: the next Open then scans more,
		// which is all an old recovery point costs. A log that opens serves
		// reads, and appends wait for space.
		if !errors.Is(noSpace(err), ErrNoSpace) || (rpOK && rp.next > end.next) {
			return err
		}
		l.log.Warn("disk full: kept the old recovery point; the next open after a crash scans more of the log", "err", err)
	}
	l.syncer.durable = last.next
	last.created = l.firstAppendTime(last)
	return nil
}

// startEmpty makes an empty log whose next offset is base.
func (l *Log) startEmpty(base int64) error {
	s, err := openSegmentFile(l.dir, base, true)
	if err != nil {
		return err
	}
	s.ix = newIndexer(int64(l.opts.IndexIntervalBytes))
	l.segs = []*segment{s}
	return s.writeIndexes()
}

// removeOrphanIndexes deletes index files whose .log is gone (a deletion
// interrupted half way). It reports whether it removed any.
func (l *Log) removeOrphanIndexes(dirEntries []os.DirEntry, bases []int64) bool {
	removed := false
	for _, e := range dirEntries {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			stem, ok := strings.CutSuffix(e.Name(), suf)
			if !ok {
				continue
			}
			if base, ok := parseSegmentName(stem + logSuffix); ok {
				if _, found := slices.BinarySearch(bases, base); !found {
					os.Remove(filepath.Join(l.dir, e.Name()))
					removed = true
				}
			}
		}
	}
	return removed
}

// firstAppendTime estimates, after a restart, when the first batch of a
// segment was appended, so SegmentAge keeps counting across restarts: the
// first batch's MaxTimestamp when it is plausible, else now.
func (l *Log) firstAppendTime(s *segment) time.Time {
	now := l.opts.Now()
	if s.size == 0 {
		return time.Time{}
	}
	var hdr [batchHeaderSize]byte
	if _, err := s.log.ReadAt(hdr[:], 0); err != nil {
		return now
	}
	ts := parseHeader(hdr[:]).MaxTimestamp
	if ts < 0 {
		return now
	}
	if t := time.UnixMilli(ts); t.Before(now) {
		return t
	}
	return now
}

// dropFrom deletes segments i and later, found after damage in the middle
// of the log.
func (l *Log) dropFrom(i int, reason string) {
	var names []string
	var bytes int64
	for _, s := range l.segs[i:] {
		if fi, err := s.log.Stat(); err == nil {
			bytes += fi.Size()
		}
		names = append(names, s.name())
		if err := s.remove(); err != nil {
			l.log.Warn("remove segment", "segment", s.name(), "err", err)
		}
	}
	l.segs = l.segs[:i]
	l.log.Error("log damaged in the middle: truncated it at the damage and deleted every later segment, as Kafka does; "+
		"a follower fetches them again from its leader, a single replica has lost them",
		"reason", reason, "offset", l.segs[i-1].next, "dropped_segments", names, "dropped_bytes", bytes)
}

// recoverSegment checks s, of which size bytes are on disk and the first
// trust bytes are known durable, sets its in-memory state and rewrites its
// indexes if they were wrong. It scans batch by batch, with CRCs, from the
// last offset index entry before trust (or from the start), and truncates
// the file at the first batch that fails. It reports whether it truncated.
func (l *Log) recoverSegment(s *segment, size, trust int64, onBatch func(BatchHeader)) (bool, error) {
	interval := int64(l.opts.IndexIntervalBytes)
	var (
		fileIdx   []indexEntry
		fileTidx  []timeEntry
		damaged   = true
		start     int64
		startNext = s.base
	)
	s.entries, s.tentries, s.ix = nil, nil, newIndexer(interval)
	if trust > 0 {
		ents, idxDamaged, err := readIndex(s.stem+indexSuffix, size)
		if err != nil {
			return false, err
		}
		tents, ok, err := readTimeIndex(s.stem + timeIndexSuffix)
		if err != nil {
			return false, err
		}
		if ok {
			fileIdx, fileTidx, damaged = ents, tents, idxDamaged
			// Restart at the last offset index entry inside the trusted
			// part; the time entries up to it hold the running maximum
			// there (see index.go).
			k := 0
			for k < len(ents) && int64(ents[k].pos) < trust {
				k++
			}
			j := 0
			if k > 0 {
				e := ents[k-1]
				start, startNext = int64(e.pos), s.base+int64(e.rel)
				for j < len(tents) && tents[j].rel <= e.rel {
					j++
				}
			}
			s.entries = slices.Clone(ents[:k])
			s.tentries = slices.Clone(tents[:j])
			if j > 0 {
				s.ix.maxTs, s.ix.lastTimeTs = tents[j-1].ts, tents[j-1].ts
			}
		}
	}
	observe := func(h BatchHeader, pos int64) {
		ie, te := s.ix.observe(s.base, h, pos)
		if ie != nil {
			s.entries = append(s.entries, *ie)
		}
		if te != nil {
			s.tentries = append(s.tentries, *te)
		}
		onBatch(h)
	}
	res := scanBatches(s.log, start, size, startNext, observe)
	if res.err == nil && res.first && res.reason != "" && start > 0 {
		// The batch the index names is not there, or is damaged: either
		// way the index cannot be told from the log. Rebuild from the start.
		l.log.Warn("the batch at the segment's last index entry is bad; scanning the whole segment and rebuilding its indexes",
			"segment", s.name(), "position", start, "reason", res.reason)
		s.entries, s.tentries, s.ix = nil, nil, newIndexer(interval)
		damaged = true
		res = scanBatches(s.log, 0, size, s.base, observe)
	}
	if res.err != nil {
		return false, fmt.Errorf("recover %s: %w", s.name(), res.err)
	}
	cut := res.pos < size
	if cut {
		attrs := []any{"segment", s.name(), "offset", res.next, "position", res.pos,
			"dropped_bytes", size - res.pos, "reason", res.reason}
		if res.pos < trust {
			l.log.Error("log damaged below its recovery point (data that had been fsynced); truncated there, check the disk", attrs...)
		} else {
			l.log.Warn("truncated the torn tail of the log", attrs...)
		}
		if err := s.log.Truncate(res.pos); err != nil {
			return false, fmt.Errorf("truncate %s: %w", s.name(), err)
		}
		s.needSync = true
	}
	s.size, s.next, s.maxTs = res.pos, res.next, s.ix.maxTs
	s.idxLen, s.tidxLen = len(fileIdx), len(fileTidx)
	if damaged || !slices.Equal(s.entries, fileIdx) || !slices.Equal(s.tentries, fileTidx) {
		if trust > 0 && !cut {
			l.log.Info("rebuilt segment indexes", "segment", s.name())
		}
		if err := s.writeIndexes(); err != nil {
			return false, err
		}
		s.needSync = true
	}
	return cut, nil
}

// scanResult is where a scan stopped and why.
type scanResult struct {
	pos    int64  // end of the last good batch
	next   int64  // offset after the last good batch
	reason string // why it stopped before the end of the file; "" when it did not
	first  bool   // it stopped at the first batch it looked at
	err    error  // an I/O error: nothing was judged
}

// scanBufSize is the read-ahead of a recovery scan.
const scanBufSize = 256 << 10

// scanBatches reads f from pos to size, batch by batch, and stops at the
// first one that does not parse, does not fit, has the wrong base offset or
// fails its CRC. It calls fn for every good batch.
func scanBatches(f io.ReaderAt, pos, size, next int64, fn func(h BatchHeader, pos int64)) scanResult {
	res := scanResult{pos: pos, next: next, first: true}
	if pos >= size {
		res.first = false
		return res
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, pos, size-pos), scanBufSize)
	crc := crc32.New(castagnoli)
	copyBuf := make([]byte, 32<<10)
	var hdr [batchHeaderSize]byte
	stop := func(format string, args ...any) scanResult {
		res.reason = fmt.Sprintf(format, args...)
		return res
	}
	for res.pos < size {
		rest := size - res.pos
		n := min(rest, batchHeaderSize)
		if _, err := io.ReadFull(r, hdr[:n]); err != nil {
			res.err = err
			return res
		}
		if allZero(hdr[:min(n, batchPrefixSize)]) {
			return stop("zero-filled tail")
		}
		if n < batchHeaderSize {
			return stop("partial batch header (%d bytes)", n)
		}
		h := parseHeader(hdr[:])
		switch {
		case h.Length < batchHeaderSize:
			return stop("batch length %d is below the minimum", h.Length-batchPrefixSize)
		case int64(h.Length) > rest:
			return stop("batch of %d bytes runs past the end of the file (%d bytes left)", h.Length, rest)
		case h.Magic != 2:
			return stop("magic %d", h.Magic)
		case h.BaseOffset != res.next:
			return stop("base offset %d, expected %d", h.BaseOffset, res.next)
		case h.LastOffsetDelta < 0:
			return stop("last offset delta %d", h.LastOffsetDelta)
		}
		crc.Reset()
		crc.Write(hdr[offAttributes:])
		body := int64(h.Length) - batchHeaderSize
		if n, err := io.CopyBuffer(crc, io.LimitReader(r, body), copyBuf); err != nil || n != body {
			res.err = cmp.Or(err, io.ErrUnexpectedEOF)
			return res
		}
		if got := crc.Sum32(); got != h.CRC {
			return stop("crc %#08x, header says %#08x", got, h.CRC)
		}
		fn(h, res.pos)
		res.pos += int64(h.Length)
		res.next = h.LastOffset() + 1
		res.first = false
	}
	return res
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
