package storage

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// FsyncMode says when appended bytes are forced to stable storage.
type FsyncMode int

const (
	// FsyncAlways fsyncs before WaitDurable returns, sharing one fsync among
	// every waiter that arrives while the previous one runs (group commit).
	// A crash loses nothing WaitDurable confirmed.
	FsyncAlways FsyncMode = iota
	// FsyncInterval fsyncs in the background every Options.FsyncInterval;
	// WaitDurable returns at once. A power loss may lose that much.
	FsyncInterval
	// FsyncNever leaves writeback to the kernel (rolled segments are still
	// fsynced in the background so recovery stays short); WaitDurable returns
	// at once. A power loss may lose whatever the kernel had not written.
	FsyncNever
)

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) {
	switch s {
	case "always":
		return FsyncAlways, nil
	case "interval":
		return FsyncInterval, nil
	case "never":
		return FsyncNever, nil
	}
	return 0, fmt.Errorf("unknown fsync mode %q; use always, interval or never", s)
}

// String returns the name ParseFsyncMode accepts.
func (m FsyncMode) String() string {
	switch m {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("FsyncMode(%d)", int(m))
}

// syncer is the background goroutine of a Log that fsyncs: on request from
// WaitDurable (FsyncAlways), on a ticker (FsyncInterval), and for segments
// rolled under FsyncNever.
type syncer struct {
	mu      sync.Mutex
	durable int64         // every offset below is on stable storage
	done    chan struct{} // closed and replaced after every round: wakes waiters
	pending []*segment    // rolled segments not yet fsynced (FsyncNever)

	fsyncs atomic.Int64 // fsyncs of the active segment, for tests and metrics

	wake    chan struct{} // capacity 1: a round is wanted
	quit    chan struct{}
	stopped chan struct{}
}

func (l *Log) startSyncer() {
	y := &l.syncer
	y.done = make(chan struct{})
	y.wake = make(chan struct{}, 1)
	y.quit = make(chan struct{})
	y.stopped = make(chan struct{})
	go l.runSyncer()
}

func (l *Log) runSyncer() {
	y := &l.syncer
	defer close(y.stopped)
	var tick <-chan time.Time
	if l.opts.Fsync == FsyncInterval {
		t := time.NewTicker(l.opts.FsyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-y.quit:
			return
		case <-y.wake:
		case <-tick:
		}
		l.flush()
	}
}

// flush runs one round: fsync rolled segments waiting for it, then (unless
// FsyncNever) the active segment up to the current log end offset, then
// wake every waiter so each checks whether its offset is now durable.
func (l *Log) flush() {
	y := &l.syncer
	defer y.wakeAll()
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if l.failed.Load() != nil || l.closed.Load() {
		return
	}
	if err := y.syncRolled(l); err != nil {
		l.fail(err)
		return
	}
	if l.opts.Fsync == FsyncNever {
		return
	}
	// Everything below target is in s or in a segment fsynced by its roll:
	// rolls (under wmu) may run while this fsync does.
	l.mu.RLock()
	s, target := l.active(), l.leo.Load()
	l.mu.RUnlock()
	y.mu.Lock()
	need := target > y.durable
	y.mu.Unlock()
	if !need {
		return
	}
	y.fsyncs.Add(1)
	if err := l.fsyncActive(s); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages:
		// nothing written since the last good fsync can be trusted.
		l.fail(fmt.Errorf("fsync %s: %w", s.name(), err))
		return
	}
	y.advance(target)
	if l.opts.OnDurable != nil {
		l.opts.OnDurable()
	}
}

// fsyncActive fsyncs the active segment's log file, through the
// BeforeFsync hook.
func (l *Log) fsyncActive(s *segment) error {
	if h := l.opts.BeforeFsync; h != nil {
		if err := h(s.log.Name()); err != nil {
			return err
		}
	}
	return s.log.Sync()
}

// request asks for a round without blocking.
func (y *syncer) request() {
	select {
	case y.wake <- struct{}{}:
	default:
	}
}

// stop ends the goroutine and waits for it.
func (y *syncer) stop() {
	close(y.quit)
	<-y.stopped
}

// wakeAll wakes every waiter.
func (y *syncer) wakeAll() {
	y.mu.Lock()
	close(y.done)
	y.done = make(chan struct{})
	y.mu.Unlock()
}

// advance records that every offset below off is durable.
func (y *syncer) advance(off int64) {
	y.mu.Lock()
	if off > y.durable {
		y.durable = off
	}
	y.mu.Unlock()
}

// lower forgets durability at and above off (truncation).
func (y *syncer) lower(off int64) {
	y.mu.Lock()
	y.durable = min(y.durable, off)
	y.mu.Unlock()
}

// addRolled queues a segment rolled under FsyncNever for a background fsync.
func (y *syncer) addRolled(s *segment) {
	y.mu.Lock()
	y.pending = append(y.pending, s)
	y.mu.Unlock()
	y.request()
}

// forget drops segments about to be deleted from the queue. The caller
// holds fileMu.
func (y *syncer) forget(gone []*segment) {
	y.mu.Lock()
	defer y.mu.Unlock()
	y.pending = slices.DeleteFunc(y.pending, func(s *segment) bool { return slices.Contains(gone, s) })
}

// syncRolled fsyncs the queued rolled segments in order and moves the
// recovery point past them. The caller holds fileMu.
func (y *syncer) syncRolled(l *Log) error {
	y.mu.Lock()
	todo := append([]*segment(nil), y.pending...)
	y.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	for _, s := range todo {
		if err := l.fsyncSegment(s); err != nil {
			return err
		}
		if err := s.closeIndexes(); err != nil {
			l.log.Warn("close index files of rolled segment", "segment", s.name(), "err", err)
		}
	}
	y.forget(todo)
	if err := fsutil.SyncDir(l.dir); err != nil {
		return err
	}
	// The recovery point moves to the segment after the last one synced.
	last := todo[len(todo)-1]
	l.mu.RLock()
	var next int64 = -1
	for i, s := range l.segs {
		if s == last && i+1 < len(l.segs) {
			next = l.segs[i+1].base
		}
	}
	l.mu.RUnlock()
	if next >= 0 {
		l.advanceRecoveryPoint(recoveryPoint{base: next, pos: 0, next: next})
	}
	return nil
}

// WaitDurable blocks until every byte up to and including offset is on
// stable storage under the configured mode. Under FsyncAlways concurrent
// waiters share one fsync run by a background goroutine (group commit);
// under FsyncInterval and FsyncNever it returns at once. ctx cancels the
// wait.
//
// # Notes
//
// An offset at or past LogEndOffset has nothing to wait for and returns an
// error wrapping ErrOffsetOutOfRange; so does one whose batch TruncateTo
// removed while the caller waited. After a failed fsync every waiter gets
// that error and the log refuses writes until reopened.
func (l *Log) WaitDurable(ctx context.Context, offset int64) error {
	if l.opts.Fsync != FsyncAlways {
		if l.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	y := &l.syncer
	for {
		y.mu.Lock()
		durable, done := y.durable, y.done
		y.mu.Unlock()
		if offset < durable {
			return nil
		}
		if err := l.writable(); err != nil {
			return err
		}
		if leo := l.leo.Load(); offset >= leo {
			return fmt.Errorf("storage: wait durable: offset %d is not below the log end offset %d: %w", offset, leo, ErrOffsetOutOfRange)
		}
		y.request()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
