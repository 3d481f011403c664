package storage

import (
	"fmt"
	"slices"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// EnforceRetention deletes the oldest whole segments, never the active one:
// those wholly below LogStartOffset, those whose largest batch timestamp is
// older than Now()-RetentionAge, and as many more as it takes to bring the
// log to RetentionBytes or below. It returns how many it deleted.
// LogStartOffset moves to the first remaining segment and is checkpointed
// before any file is removed.
//
// # Notes
//
// Segments are deleted from the oldest and only while each one qualifies, as
// Kafka does: an expired segment behind a younger one waits for it. A
// segment whose batches carry no timestamps (MaxTimestamp -1) is aged by its
// file's modification time. The size rule keeps the log at or under
// RetentionBytes (Kafka keeps it at or over); on an edge host the limit is
// a disk budget.
func (l *Log) EnforceRetention() (deletedSegments int, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return 0, err
	}
	last := len(l.segs) - 1
	n := 0
	reason := "below the log start offset"
	for n < last && l.segs[n].next <= l.logStart {
		n++
	}
	if age := l.opts.RetentionAge; age > 0 {
		cutoff := l.opts.Now().Add(-age).UnixMilli()
		i := 0
		for i < last && l.segmentTime(l.segs[i]) < cutoff {
			i++
		}
		if i > n {
			n, reason = i, fmt.Sprintf("older than retention age %s", age)
		}
	}
	if limit := l.opts.RetentionBytes; limit > 0 {
		var total int64
		for _, s := range l.segs {
			total += s.size
		}
		i := 0
		for i < last && total > limit {
			total -= l.segs[i].size
			i++
		}
		if i > n {
			n, reason = i, fmt.Sprintf("over retention bytes %d", limit)
		}
	}
	if err := l.deleteOldest(n, reason); err != nil {
		return 0, fmt.Errorf("storage: enforce retention: %w", err)
	}
	return n, nil
}

// segmentTime is the timestamp, in Unix milliseconds, that age retention
// judges a segment by. The caller holds wmu.
func (l *Log) segmentTime(s *segment) int64 {
	if s.maxTs >= 0 {
		return s.maxTs
	}
	fi, err := s.log.Stat()
	if err != nil {
		return l.opts.Now().UnixMilli() // unknown: keep it
	}
	return fi.ModTime().UnixMilli()
}

// deleteOldest deletes the first n segments (never the active one) and moves
// the log start offset to the first one left. The caller holds wmu.
func (l *Log) deleteOldest(n int, reason string) error {
	n = min(n, len(l.segs)-1)
	if n <= 0 {
		return nil
	}
	gone := slices.Clone(l.segs[:n])
	start := max(l.logStart, l.segs[n].base)
	if start > l.logStart {
		if err := writeLogStart(l.dir, start); err != nil {
			return err
		}
	}
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	l.syncer.forget(gone)
	l.mu.Lock()
	l.segs = slices.Clone(l.segs[n:])
	l.logStart = start
	l.mu.Unlock()
	var bytes int64
	for _, s := range gone {
		bytes += s.size
		if err := s.remove(); err != nil {
			l.log.Warn("remove segment", "segment", s.name(), "err", err)
		}
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		l.log.Warn("fsync directory after deleting segments", "err", err)
	}
	l.log.Info("deleted old segments", "reason", reason, "segments", n, "bytes", bytes, "log_start_offset", start)
	return l.updateEpochs(func(c *epochCache) bool { return c.truncateFromStart(start) })
}
