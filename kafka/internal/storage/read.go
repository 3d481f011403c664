package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Read returns whole batches starting with the one that contains offset, up
// to maxBytes, but always at least that first batch even if it is larger
// than maxBytes (so consumers make progress). Reading at LogEndOffset returns
// (nil, nil); below LogStartOffset or above LogEndOffset it returns an error
// wrapping ErrOffsetOutOfRange.
//
// # Notes
//
// The returned slice belongs to the caller: it is read into a fresh buffer
// and never ends in a partial batch. One call returns batches of one segment
// only; the next call continues in the next segment. Reads run concurrently
// with appends and with each other.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return nil, ErrClosed
	}
	leo, end := l.leo.Load(), l.readableEnd()
	if offset < l.logStart || offset > leo {
		return nil, fmt.Errorf("storage: read offset %d: the log holds [%d, %d): %w", offset, l.logStart, leo, ErrOffsetOutOfRange)
	}
	if offset >= end { // the end, or past what a failed log trusts
		return nil, nil
	}
	s := l.segmentFor(offset)
	pos, h, err := s.locate(offset)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	n := min(max(int64(maxBytes), int64(h.Length)), s.size-pos)
	buf := make([]byte, n)
	if _, err := s.log.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("storage: read %s: %w", s.name(), err)
	}
	n = 0
	for n+batchPrefixSize <= int64(len(buf)) {
		size := int64(int32(binary.BigEndian.Uint32(buf[n+offBatchLength:]))) + batchPrefixSize
		if size < batchHeaderSize || n+size > int64(len(buf)) || int64(binary.BigEndian.Uint64(buf[n:])) >= end {
			break
		}
		n += size
	}
	if n == 0 {
		return nil, fmt.Errorf("storage: read %s at position %d: %w: batch length does not match its header", s.name(), pos, ErrCorrupt)
	}
	if int64(len(buf))-n > 4096 && int64(len(buf))-n > n/4 {
		// Most of the buffer was a partial batch: hand back a tight copy.
		return bytes.Clone(buf[:n]), nil
	}
	return buf[:n:n], nil
}

// OffsetForTimestamp returns the base offset of the first batch whose
// MaxTimestamp is >= ts, using the time index and then a scan of batch
// headers; found is false when no batch qualifies. The Kafka layer refines
// the answer to the record inside the batch.
//
// # Notes
//
// Batches wholly below LogStartOffset are skipped; the batch that contains
// LogStartOffset may be returned with a base offset below it.
func (l *Log) OffsetForTimestamp(ts int64) (batchBase int64, found bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return -1, false, ErrClosed
	}
	for _, s := range l.segs {
		if s.size == 0 || s.maxTs < ts || s.next <= l.logStart {
			continue
		}
		// Every batch up to the last time entry below ts is older than ts.
		from := s.base
		if rel, ok := lastTimeBelow(s.tentries, ts); ok {
			from = s.base + int64(rel)
		}
		from = max(from, l.logStart)
		pos, _, err := s.locate(from)
		if err != nil {
			return -1, false, fmt.Errorf("storage: %w", err)
		}
		var hit bool
		err = walkHeaders(s.log, pos, s.size, func(h BatchHeader, _ int64) bool {
			if h.MaxTimestamp >= ts && h.LastOffset() >= l.logStart {
				batchBase, hit = h.BaseOffset, true
				return false
			}
			return true
		})
		if err != nil {
			return -1, false, fmt.Errorf("storage: search %s by time: %w", s.name(), err)
		}
		if hit {
			return batchBase, true, nil
		}
	}
	return -1, false, nil
}
