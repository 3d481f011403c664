package storage

import (
	"fmt"
	"slices"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// EnforceRetention rolls an active segment that holds batches and is
// SegmentAge old or more, as an append would (roll.go), then deletes the
// oldest whole segments: those wholly below LogStartOffset, those whose
// records are older than Now()-RetentionAge (see segmentTime), and as many
// more as it takes to bring the log to RetentionBytes or below. It returns how many it deleted. LogStartOffset
// moves to the first remaining segment and is checkpointed before any file
// is removed.
//
// # Notes
//
// Segments are deleted from the oldest and only while each one qualifies, as
// Kafka does: an expired segment behind a younger one waits for it. When
// every segment has expired by age, the active one too, and the active one
// has not been written for RetentionAge either, it is rolled and deleted
// with the rest (Kafka rolls it the same way), so the records of a
// partition nobody writes to expire on time; the log is then empty, its
// start at its end. The size rule never deletes the active segment and
// keeps the log at or under RetentionBytes (Kafka keeps it at or over); on
// an edge host the limit is a disk budget.
func (l *Log) EnforceRetention() (deletedSegments int, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return 0, err
	}
	if _, err := l.rollAged(); err != nil {
		return 0, fmt.Errorf("storage: enforce retention: %w", err)
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
		if i == last {
			rolled, err := l.rollExpired(cutoff)
			if err != nil {
				return 0, fmt.Errorf("storage: enforce retention: %w", err)
			}
			if rolled {
				last++
				i++
			}
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
// judges a segment by: its largest batch timestamp (MaxTimestamp, the
// broker's clock under LogAppendTime), or, for a segment whose batches
// carry none, its file's modification time. A largest timestamp still in
// the future (a producer whose clock runs ahead) counts only up to the
// file's modification time, so such a segment expires RetentionAge after
// its last write instead of being kept until its producer's clock comes
// true. The caller holds wmu.
func (l *Log) segmentTime(s *segment) int64 {
	now := l.opts.Now().UnixMilli()
	if s.maxTs >= 0 && s.maxTs <= now {
		return s.maxTs
	}
	w, ok := lastWrite(s)
	if !ok {
		return now // unknown: keep it
	}
	if s.maxTs >= 0 {
		return min(s.maxTs, w.UnixMilli())
	}
	return w.UnixMilli()
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
