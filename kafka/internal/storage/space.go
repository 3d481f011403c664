package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// spaceRecheck is how long a Space trusts its last statfs. Appends in
// between count their bytes off the figure, so it errs towards full.
const spaceRecheck = 250 * time.Millisecond

// Space watches the free space of the file system the logs of one node
// live on, so that appends stop while less than a minimum is free instead
// of running the disk to its last byte: what is left is for the Raft
// metadata store and the operating system, and stopping early means a
// write fails before it starts rather than half way. One Space serves
// every Log of a data directory (Options.Space); it calls statfs at most
// every 250 ms, not once an append.
//
// # Notes
//
// A refused append leaves the log as it was and the log stays writable:
// the next append after space returns succeeds. Only an fsync failure
// makes a log refuse writes until it is reopened.
type Space struct {
	dir     string
	minFree int64
	log     *slog.Logger
	now     func() time.Time
	statfs  func(dir string) (free int64, err error)

	mu      sync.Mutex
	checked time.Time
	free    int64
	full    bool // the last check found less than minFree: logged once per episode
}

// NewSpace returns a Space for the file system holding dir that refuses
// appends while fewer than minFree bytes are free. logger (nil = discard)
// gets a Warn when appends start being refused and an Info when they stop.
func NewSpace(dir string, minFree int64, logger *slog.Logger) *Space {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Space{dir: dir, minFree: minFree, log: logger, now: time.Now, statfs: freeBytes}
}

// Check reports whether n more bytes may be written: nil, or an error
// wrapping ErrNoSpace. A nil Space allows everything.
func (sp *Space) Check(n int64) error {
	if sp == nil {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := sp.now()
	if sp.checked.IsZero() || now.Sub(sp.checked) >= spaceRecheck {
		free, err := sp.statfs(sp.dir)
		if err != nil {
			// Not knowing is no reason to refuse: the write itself
			// reports a full disk.
			return nil
		}
		sp.free, sp.checked = free, now
	}
	if sp.free-n < sp.minFree {
		if !sp.full {
			sp.full = true
			sp.log.Warn("data disk nearly full; refusing appends until space is freed",
				"dir", sp.dir, "free_bytes", sp.free, "min_free_bytes", sp.minFree)
		}
		return fmt.Errorf("%w: %d bytes free on the file system of %s, %d needed besides the %d kept free",
			ErrNoSpace, sp.free, sp.dir, n, sp.minFree)
	}
	if sp.full {
		sp.full = false
		sp.log.Info("data disk has space again; accepting appends", "dir", sp.dir, "free_bytes", sp.free)
	}
	sp.free -= n
	return nil
}

// Recheck makes the next Check call statfs: a write just failed for want
// of space.
func (sp *Space) Recheck() {
	if sp == nil {
		return
	}
	sp.mu.Lock()
	sp.checked = time.Time{}
	sp.mu.Unlock()
}

// noSpace wraps err with ErrNoSpace when it is ENOSPC or EDQUOT, so that
// callers can tell a full disk (which passes) from a failing one.
func noSpace(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}
