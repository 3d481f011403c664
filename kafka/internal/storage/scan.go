package storage

import "fmt"

// Limits of one step of ScanHeaders: it holds the read lock for at most
// this many headers, or this much log, at a time.
const (
	scanStepHeaders = 1024
	scanStepBytes   = 8 << 20
)

// ScanHeaders calls fn with the header of every batch from the one that
// holds offset from (or the first batch at or above LogStartOffset, when
// from is below it) up to the log end offset as it was when ScanHeaders
// was called, in offset order, until fn returns false. It reads headers
// only, never record data, one segment after another. It returns ErrClosed
// if the log is closed part way.
//
// # Notes
//
// The scan holds the log's read lock only a step at a time (at most 1024
// headers or 8 MiB of log) and calls fn without it, so appends go on
// meanwhile and fn may call the Log. Batches appended after the call began
// are not visited. If retention deletes segments ahead of the scan, it
// resumes at the new LogStartOffset; if the log is truncated below the
// scan, it ends at the new end.
func (l *Log) ScanHeaders(from int64, fn func(BatchHeader) bool) error {
	end := l.leo.Load()
	next := from
	var (
		seg *segment // where the last step ended, to go on without a lookup
		pos int64
		hs  []BatchHeader
	)
	for {
		var err error
		hs, seg, pos, err = l.scanStep(next, end, seg, pos, hs[:0])
		if err != nil {
			return err
		}
		if len(hs) == 0 {
			return nil
		}
		for _, h := range hs {
			if !fn(h) {
				return nil
			}
		}
		next = hs[len(hs)-1].LastOffset() + 1
	}
}

// scanStep collects up to one step of headers starting with the batch that
// holds next, below end. seg and pos are where the previous step stopped;
// they are used when they still lead to the batch at next.
func (l *Log) scanStep(next, end int64, seg *segment, pos int64, hs []BatchHeader) ([]BatchHeader, *segment, int64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed.Load() {
		return nil, nil, 0, ErrClosed
	}
	end = min(end, l.leo.Load())
	next = max(next, l.logStart)
	if next >= end {
		return hs, nil, 0, nil
	}
	s := l.segmentFor(next)
	resumed := s == seg && pos < s.size
	if !resumed {
		p, _, err := s.locate(next)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("storage: scan headers: %w", err)
		}
		pos = p
	}
	start := pos
	for {
		var stale bool
		err := walkHeaders(s.log, pos, s.size, func(h BatchHeader, at int64) bool {
			if len(hs) == 0 && resumed && h.BaseOffset != next {
				stale = true // the segment changed under the saved position
				return false
			}
			if h.BaseOffset >= end || len(hs) >= scanStepHeaders || at-start >= scanStepBytes {
				return false
			}
			hs = append(hs, h)
			pos = at + int64(h.Length)
			return true
		})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("storage: scan headers of %s: %w", s.name(), err)
		}
		if !stale {
			return hs, s, pos, nil
		}
		p, _, err := s.locate(next)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("storage: scan headers: %w", err)
		}
		pos, start, resumed = p, p, false
	}
}
