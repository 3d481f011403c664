package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
)

// The two sparse indexes of a segment. Both are plain arrays of fixed-size
// big-endian entries, appended as the segment grows and rewritten whole by
// recovery, so they are always exactly as long as their entries.
//
// The offset index maps a relative offset to the file position of the batch
// that starts there. An entry is written for the first batch after every
// IndexIntervalBytes of log; the segment's first batch never needs one
// (position 0 is implied).
//
// The time index holds (maxTimestamp, relativeOffset) pairs where
// maxTimestamp is the largest batch MaxTimestamp seen in the segment up to
// and including the batch at relativeOffset. An entry is written only
// together with an offset index entry, and only when that running maximum has
// risen since the last time entry. Two properties follow that lookups and
// recovery rely on:
//
//   - every batch at or before an entry's offset has MaxTimestamp <= the
//     entry's timestamp, so a search for ts can skip everything up to the last
//     entry below ts;
//   - at every offset index entry, the last time entry at or before it holds
//     the exact running maximum, so recovery can restart from any offset index
//     entry and rebuild both indexes from there.
const (
	indexEntrySize     = 8  // relativeOffset uint32, position uint32
	timeIndexEntrySize = 12 // maxTimestamp int64, relativeOffset uint32
)

// indexEntry is one offset index entry.
type indexEntry struct {
	rel uint32 // offset - segment base
	pos uint32 // byte position of the batch in the .log file
}

// timeEntry is one time index entry.
type timeEntry struct {
	ts  int64
	rel uint32
}

// floorIndex returns the position of the last entry whose relative offset is
// <= rel, or position 0 when there is none.
func floorIndex(entries []indexEntry, rel uint32) (pos int64, entryRel uint32) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].rel > rel })
	if i == 0 {
		return 0, 0
	}
	return int64(entries[i-1].pos), entries[i-1].rel
}

// lastTimeBelow returns the relative offset of the last time entry with a
// timestamp below ts, and whether there is one.
func lastTimeBelow(entries []timeEntry, ts int64) (uint32, bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].ts >= ts })
	if i == 0 {
		return 0, false
	}
	return entries[i-1].rel, true
}

func encodeIndex(dst []byte, entries []indexEntry) []byte {
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
		dst = binary.BigEndian.AppendUint32(dst, e.pos)
	}
	return dst
}

func encodeTimeIndex(dst []byte, entries []timeEntry) []byte {
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, e.rel)
	}
	return dst
}

// readIndex loads an offset index file and keeps its longest sane prefix:
// relative offsets and positions strictly increasing, positions inside a log
// of logSize bytes. It reports whether the file was missing or had to be cut
// (the caller then rewrites it).
func readIndex(path string, logSize int64) (entries []indexEntry, damaged bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read index: %w", err)
	}
	n := len(b) / indexEntrySize
	damaged = len(b)%indexEntrySize != 0
	entries = make([]indexEntry, 0, n)
	for i := range n {
		e := indexEntry{
			rel: binary.BigEndian.Uint32(b[i*indexEntrySize:]),
			pos: binary.BigEndian.Uint32(b[i*indexEntrySize+4:]),
		}
		if int64(e.pos) >= logSize || e.pos == 0 || e.rel == 0 {
			return entries, true, nil
		}
		if k := len(entries); k > 0 && (e.rel <= entries[k-1].rel || e.pos <= entries[k-1].pos) {
			return entries, true, nil
		}
		entries = append(entries, e)
	}
	return entries, damaged, nil
}

// readTimeIndex loads a time index file. Unlike the offset index it is all
// or nothing: a lost entry in the middle would make later lookups skip
// batches, so any damage (or a missing file) reports ok=false and the caller
// rebuilds the segment's indexes from the start.
func readTimeIndex(path string) (entries []timeEntry, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read time index: %w", err)
	}
	if len(b)%timeIndexEntrySize != 0 {
		return nil, false, nil
	}
	n := len(b) / timeIndexEntrySize
	entries = make([]timeEntry, 0, n)
	for i := range n {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeIndexEntrySize:])),
			rel: binary.BigEndian.Uint32(b[i*timeIndexEntrySize+8:]),
		}
		if k := len(entries); k > 0 && (e.ts <= entries[k-1].ts || e.rel <= entries[k-1].rel) {
			return nil, false, nil
		}
		entries = append(entries, e)
	}
	return entries, true, nil
}

// indexer decides where index entries go. The same code runs on append and
// on recovery, so a rebuilt index is identical to the one first written.
type indexer struct {
	interval   int64 // IndexIntervalBytes
	sinceIndex int64 // log bytes since the last offset index entry
	maxTs      int64 // running maximum of batch MaxTimestamp; -1 when none
	lastTimeTs int64 // timestamp of the last time index entry; -1 when none
}

func newIndexer(interval int64) indexer {
	return indexer{interval: interval, maxTs: -1, lastTimeTs: -1}
}

// observe accounts for one batch at pos of a segment based at base and
// returns the entries to add, if any.
func (x *indexer) observe(base int64, h BatchHeader, pos int64) (ie *indexEntry, te *timeEntry) {
	if h.MaxTimestamp > x.maxTs {
		x.maxTs = h.MaxTimestamp
	}
	if x.sinceIndex >= x.interval && pos > 0 {
		rel := uint32(h.BaseOffset - base)
		ie = &indexEntry{rel: rel, pos: uint32(pos)}
		x.sinceIndex = 0
		if x.maxTs > x.lastTimeTs {
			te = &timeEntry{ts: x.maxTs, rel: rel}
			x.lastTimeTs = x.maxTs
		}
	}
	x.sinceIndex += int64(h.Length)
	return ie, te
}
