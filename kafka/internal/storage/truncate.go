package storage

import (
	"fmt"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// TruncateTo drops every batch at or after offset: a follower's divergent
// tail. offset must be the base offset of a batch or LogEndOffset, and not
// below LogStartOffset; otherwise the error wraps ErrOffsetOutOfRange. It
// also drops the leader epochs that start at or after offset.
//
// # Notes
//
// Before it touches a file it moves the recovery point back to offset, so a
// crash part way through, or later appends that were never fsynced, are
// scanned on the next Open instead of trusted. The truncation itself is
// fsynced before TruncateTo returns. WaitDurable callers waiting for a
// dropped offset get an error.
func (l *Log) TruncateTo(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	leo := l.leo.Load()
	if offset == leo {
		return nil
	}
	if offset < l.logStart || offset > leo {
		return fmt.Errorf("storage: truncate to %d: the log holds [%d, %d): %w", offset, l.logStart, leo, ErrOffsetOutOfRange)
	}
	k := len(l.segs) - 1
	for l.segs[k].base > offset {
		k--
	}
	s := l.segs[k]
	var pos int64
	if offset != s.base {
		p, h, err := s.locate(offset)
		if err != nil {
			return fmt.Errorf("storage: truncate to %d: %w", offset, err)
		}
		if h.BaseOffset != offset {
			return fmt.Errorf("storage: truncate to %d: inside the batch [%d, %d]; truncate to a batch boundary: %w",
				offset, h.BaseOffset, h.LastOffset(), ErrOffsetOutOfRange)
		}
		pos = p
	}

	// The syncer (which moves the recovery point forward after fsyncing
	// rolled segments) must not run from here on.
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	l.rpMu.Lock()
	rp := l.rp
	l.rpMu.Unlock()
	if rp.next > offset {
		if err := l.setRecoveryPoint(recoveryPoint{base: s.base, pos: pos, next: offset}, true); err != nil {
			return fmt.Errorf("storage: truncate to %d: %w", offset, err)
		}
	}

	wasActive := k == len(l.segs)-1
	gone := slices.Clone(l.segs[k+1:])
	// s takes appends again: it must not be fsynced and closed behind our back.
	l.syncer.forget(l.segs[k:])

	l.mu.Lock()
	l.segs = slices.Clone(l.segs[:k+1])
	if err := s.log.Truncate(pos); err != nil {
		l.mu.Unlock()
		return l.fail(fmt.Errorf("storage: truncate %s: %w", s.name(), err))
	}
	// Rebuild s's in-memory state and indexes for its new end; this reads
	// at most an index interval of log.
	_, err := l.recoverSegment(s, pos, pos, func(BatchHeader) {})
	if err == nil {
		l.leo.Store(s.next)
	}
	l.mu.Unlock()
	if err != nil {
		return l.fail(fmt.Errorf("storage: truncate to %d: %w", offset, err))
	}

	for _, g := range gone {
		if err := g.remove(); err != nil {
			l.log.Warn("remove truncated segment", "segment", g.name(), "err", err)
		}
	}
	if err := s.openIndexes(); err != nil {
		return l.fail(fmt.Errorf("storage: truncate to %d: %w", offset, err))
	}
	if err := s.sync(); err != nil {
		return l.fail(fmt.Errorf("storage: truncate to %d: %w", offset, err))
	}
	s.needSync = false
	if len(gone) > 0 {
		if err := fsutil.SyncDir(l.dir); err != nil {
			return l.fail(fmt.Errorf("storage: truncate to %d: %w", offset, err))
		}
	}
	switch {
	case s.size == 0:
		s.created = time.Time{}
	case !wasActive:
		s.created = l.firstAppendTime(s)
	}
	l.syncer.lower(s.next)
	l.syncer.wakeAll()
	l.log.Info("truncated log", "offset", s.next, "dropped_segments", len(gone))
	if err := l.updateEpochs(func(c *epochCache) bool { return c.truncateFromEnd(s.next) }); err != nil {
		return fmt.Errorf("storage: truncate to %d: %w", offset, err)
	}
	return nil
}

// DeleteRecordsBefore advances LogStartOffset to offset (DeleteRecords).
// The new start is checkpointed before anything is deleted, so it survives a
// restart; whole segments below it are deleted, never the active one.
// offset above LogEndOffset is an error wrapping ErrOffsetOutOfRange; at or
// below LogStartOffset it does nothing.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	if leo := l.leo.Load(); offset > leo {
		return fmt.Errorf("storage: delete records before %d: the log ends at %d: %w", offset, leo, ErrOffsetOutOfRange)
	}
	if offset <= l.logStart {
		return nil
	}
	if err := writeLogStart(l.dir, offset); err != nil {
		return fmt.Errorf("storage: delete records before %d: %w", offset, err)
	}
	l.mu.Lock()
	l.logStart = offset
	l.mu.Unlock()
	n := 0
	for n < len(l.segs)-1 && l.segs[n].next <= offset {
		n++
	}
	if err := l.deleteOldest(n, "below the log start offset"); err != nil {
		return fmt.Errorf("storage: delete records before %d: %w", offset, err)
	}
	return nil
}
