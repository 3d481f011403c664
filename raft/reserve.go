package raft

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// The reserve is a file of ReserveBytes in the data directory that holds
// space back for the Raft store, as databases keep a ballast file. Pebble,
// Dragonboat's log store, writes at open (it flushes its write-ahead log to
// a table and starts a new log and manifest), so on a disk with no byte
// free a node cannot start, and while it runs a metadata write that fails
// stops it. The Kafka logs keep twice ReserveBytes free (they refuse
// appends below that), so records alone never reach the reserve; the
// reserve is for a disk something else filled.
//
// The rule, applied by Open before the log store starts and every
// reserveInterval after:
//
//   - less than ReserveBytes free and the file there: delete it, so the
//     Raft store has room to open and write (a Warn says so);
//   - at least 3 × ReserveBytes free and no file: create it, leaving the
//     Kafka logs their 2 × ReserveBytes.
//
// An operator who needs room at once may delete the file by hand; it comes
// back once there is room for it.
const (
	ReserveBytes    = 64 << 20
	reserveFile     = "reserve"
	reserveInterval = 10 * time.Second
)

// reserve keeps the reserve file of one data directory.
type reserve struct {
	path string
	log  *slog.Logger
	free func(dir string) (int64, error)
}

func newReserve(dataDir string, log *slog.Logger) *reserve {
	return &reserve{path: filepath.Join(dataDir, reserveFile), log: log, free: freeBytes}
}

// adjust applies the rule above once. Failures are logged, never returned:
// the reserve is a precaution, and a node without one still runs.
func (r *reserve) adjust() {
	free, err := r.free(filepath.Dir(r.path))
	if err != nil {
		return
	}
	_, err = os.Stat(r.path)
	exists := err == nil
	switch {
	case exists && free < ReserveBytes:
		if err := os.Remove(r.path); err != nil {
			r.log.Error("raft: data disk full; could not delete the reserve file; free space on the data disk",
				"path", r.path, "free_bytes", free, "err", err)
			return
		}
		r.log.Warn("raft: data disk full; deleted the reserve file so the Raft store can write; "+
			"Kafka writes are refused until space is freed, and the reserve comes back once there is room for it",
			"path", r.path, "free_bytes", free, "reserve_bytes", ReserveBytes)
	case !exists && errors.Is(err, fs.ErrNotExist) && free >= 3*ReserveBytes:
		if err := createReserve(r.path); err != nil {
			r.log.Warn("raft: create the reserve file", "path", r.path, "err", err)
			return
		}
		r.log.Info("raft: created the reserve file", "path", r.path, "reserve_bytes", ReserveBytes)
	}
}

// run applies the rule every reserveInterval until stop is closed.
func (r *reserve) run(stop <-chan struct{}) {
	t := time.NewTicker(reserveInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			r.adjust()
		}
	}
}

// createReserve writes the reserve file under a temporary name and renames
// it, so a crash half way leaves no short reserve that would be taken for a
// whole one.
func createReserve(path string) error {
	return fsutil.WriteAtomic(filepath.Dir(path), filepath.Base(path), 0o600, func(f *os.File) error {
		return allocate(f, ReserveBytes)
	})
}

// writeZeros allocates n bytes of f by writing them, where fallocate is
// not available.
func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		w, err := f.Write(buf[:min(n, int64(len(buf)))])
		if err != nil {
			return err
		}
		n -= int64(w)
	}
	return nil
}
