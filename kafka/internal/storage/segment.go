package storage

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File name suffixes of a segment; the stem is the base offset in 20 digits.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
)

// segment is one .log file and its two indexes. Its reader-visible fields
// are guarded by Log.mu; the writer-only fields by Log.wmu.
type segment struct {
	base int64
	stem string // directory + 20-digit base offset, without suffix

	log  *os.File // open for the segment's life
	idx  *os.File // open while the segment is active (or waits for its background fsync)
	tidx *os.File

	// Guarded by Log.mu.
	size     int64 // bytes of whole batches; appends go here
	next     int64 // offset after the last batch; base when empty
	entries  []indexEntry
	tentries []timeEntry
	maxTs    int64 // largest batch MaxTimestamp; -1 when none

	// Writer-only, under Log.wmu.
	ix       indexer
	created  time.Time // wall clock of the first append (SegmentAge); zero when empty
	idxLen   int       // offset index entries in the file
	tidxLen  int       // time index entries in the file
	needSync bool      // recovery read or changed it: fsync before the recovery point moves past it
}

func segmentStem(dir string, base int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d", base))
}

// parseSegmentName returns the base offset of a file named like a segment's
// .log file.
func parseSegmentName(name string) (int64, bool) {
	stem, ok := strings.CutSuffix(name, logSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// openSegmentFile opens (or creates) the .log of a segment based at base.
func openSegmentFile(dir string, base int64, create bool) (*segment, error) {
	s := &segment{base: base, stem: segmentStem(dir, base), next: base, maxTs: -1}
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(s.stem+logSuffix, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open segment %s: %w", filepath.Base(s.stem+logSuffix), err)
	}
	s.log = f
	return s, nil
}

// name is the .log file's base name, for messages.
func (s *segment) name() string { return filepath.Base(s.stem + logSuffix) }

// openIndexes opens both index files for writing, creating them if missing.
func (s *segment) openIndexes() error {
	if s.idx == nil {
		f, err := os.OpenFile(s.stem+indexSuffix, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open index of %s: %w", s.name(), err)
		}
		s.idx = f
	}
	if s.tidx == nil {
		f, err := os.OpenFile(s.stem+timeIndexSuffix, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open time index of %s: %w", s.name(), err)
		}
		s.tidx = f
	}
	return nil
}

// closeIndexes closes the index files; the in-memory entries stay.
func (s *segment) closeIndexes() error {
	var errs []error
	if s.idx != nil {
		errs = append(errs, s.idx.Close())
		s.idx = nil
	}
	if s.tidx != nil {
		errs = append(errs, s.tidx.Close())
		s.tidx = nil
	}
	return errors.Join(errs...)
}

// writeIndexes rewrites both index files from the in-memory entries.
func (s *segment) writeIndexes() error {
	if err := s.openIndexes(); err != nil {
		return err
	}
	if err := rewriteFile(s.idx, encodeIndex(nil, s.entries)); err != nil {
		return fmt.Errorf("rewrite index of %s: %w", s.name(), err)
	}
	if err := rewriteFile(s.tidx, encodeTimeIndex(nil, s.tentries)); err != nil {
		return fmt.Errorf("rewrite time index of %s: %w", s.name(), err)
	}
	s.idxLen, s.tidxLen = len(s.entries), len(s.tentries)
	return nil
}

func rewriteFile(f *os.File, b []byte) error {
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// appendIndexes writes new entries at the end of the index files. The
// caller appends them to the in-memory slices once they are written.
func (s *segment) appendIndexes(ie []indexEntry, te []timeEntry) error {
	if len(ie) > 0 {
		if _, err := s.idx.WriteAt(encodeIndex(nil, ie), int64(s.idxLen)*indexEntrySize); err != nil {
			return fmt.Errorf("write index of %s: %w", s.name(), err)
		}
		s.idxLen += len(ie)
	}
	if len(te) > 0 {
		if _, err := s.tidx.WriteAt(encodeTimeIndex(nil, te), int64(s.tidxLen)*timeIndexEntrySize); err != nil {
			return fmt.Errorf("write time index of %s: %w", s.name(), err)
		}
		s.tidxLen += len(te)
	}
	return nil
}

// sync flushes the log and whichever index files are open.
func (s *segment) sync() error {
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.name(), err)
	}
	for _, f := range []*os.File{s.idx, s.tidx} {
		if f != nil {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("fsync %s: %w", filepath.Base(f.Name()), err)
			}
		}
	}
	return nil
}

// close closes every open file of the segment.
func (s *segment) close() error {
	return errors.Join(s.closeIndexes(), s.log.Close())
}

// remove closes the segment and deletes its files, indexes first so that a
// crash half way leaves a log without indexes (rebuilt on open) rather than
// indexes without a log.
func (s *segment) remove() error {
	errs := []error{s.close()}
	for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
		if err := os.Remove(s.stem + suf); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// walkBlock is how much of a segment a header walk reads at a time.
const walkBlock = 16 << 10

// walkBufs recycles header walk buffers: every Read walks.
var walkBufs = sync.Pool{New: func() any { b := make([]byte, walkBlock); return &b }}

// walkHeaders calls fn with the header and position of every batch from pos
// up to end, reading headers only, until fn returns false. It trusts the
// bytes (they were checked on the way in or by recovery) except for what it
// needs to move on safely: a header that does not parse or runs past end is
// reported as ErrCorrupt.
func walkHeaders(r io.ReaderAt, pos, end int64, fn func(h BatchHeader, pos int64) bool) error {
	bp := walkBufs.Get().(*[]byte)
	defer walkBufs.Put(bp)
	buf := *bp
	var bstart, bend int64
	for pos < end {
		if pos < bstart || pos+batchHeaderSize > bend {
			n := min(int64(len(buf)), end-pos)
			if n < batchHeaderSize {
				return fmt.Errorf("%w: %d bytes at position %d are not a batch", ErrCorrupt, n, pos)
			}
			if _, err := r.ReadAt(buf[:n], pos); err != nil {
				return err
			}
			bstart, bend = pos, pos+n
		}
		h := parseHeader(buf[pos-bstart:])
		if h.Length < batchHeaderSize || pos+int64(h.Length) > end || h.Magic != 2 || h.LastOffsetDelta < 0 {
			return fmt.Errorf("%w: bad batch header at position %d", ErrCorrupt, pos)
		}
		if !fn(h, pos) {
			return nil
		}
		pos += int64(h.Length)
	}
	return nil
}

// locate returns the position and header of the batch that contains offset.
// The caller holds Log.mu (read) and has checked base <= offset < next.
func (s *segment) locate(offset int64) (int64, BatchHeader, error) {
	start, _ := floorIndex(s.entries, uint32(offset-s.base))
	for {
		var (
			found bool
			at    int64
			hdr   BatchHeader
			first = true
			bad   bool
		)
		err := walkHeaders(s.log, start, s.size, func(h BatchHeader, pos int64) bool {
			if first && h.BaseOffset > offset {
				bad = true
				return false
			}
			first = false
			if h.LastOffset() >= offset {
				found, at, hdr = true, pos, h
				return false
			}
			return true
		})
		if err == nil && found {
			return at, hdr, nil
		}
		if start > 0 && (bad || err != nil || !found) {
			// The index entry led somewhere wrong. Indexes are only hints:
			// walk from the start of the segment instead.
			start = 0
			continue
		}
		if err != nil {
			return 0, BatchHeader{}, fmt.Errorf("read %s: %w", s.name(), err)
		}
		return 0, BatchHeader{}, fmt.Errorf("read %s: %w: offset %d not found", s.name(), ErrCorrupt, offset)
	}
}
