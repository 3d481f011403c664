package storage

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestLog_Append_refusedBelowMinFreeThenAccepted pins that a Space below
// its minimum refuses appends with ErrNoSpace, leaves the log as it was and
// writable, and lets the same append through once space returns.
func TestLog_Append_refusedBelowMinFreeThenAccepted(t *testing.T) {
	clock := newClock()
	var free atomic.Int64
	sp := NewSpace(t.TempDir(), 1<<20, nil)
	sp.now = clock.Now
	sp.statfs = func(string) (int64, error) { return free.Load(), nil }
	l := openLog(t, Options{Space: sp, Fsync: FsyncAlways})

	free.Store(1 << 20) // at the minimum: no room for a batch on top
	b := makeBatch(t, batchSpec{records: 3})
	if _, _, err := l.Append(b, 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append(full) = %v, want ErrNoSpace", err)
	}
	if _, err := l.AppendVerbatim(b); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("AppendVerbatim(full) = %v, want ErrNoSpace", err)
	}
	if leo, size := l.LogEndOffset(), l.Size(); leo != 0 || size != 0 {
		t.Fatalf("after refused appends: LogEndOffset() = %d, Size() = %d, want 0, 0", leo, size)
	}

	free.Store(64 << 20)
	if _, _, err := l.Append(b, 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append within the recheck interval = %v, want ErrNoSpace (statfs is cached)", err)
	}
	clock.Advance(spaceRecheck)
	if base, last, err := l.Append(b, 0); err != nil || base != 0 || last != 2 {
		t.Fatalf("Append(space again) = %d, %d, %v, want 0, 2, nil", base, last, err)
	}
}

// TestLog_Append_ENOSPCUndoneNotFailed fills a real file system (a tmpfs)
// under a log with no Space: the write that meets ENOSPC is taken back, the
// log serves what it had and takes the append once space is freed, and
// reopens whole.
func TestLog_Append_ENOSPCUndoneNotFailed(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	o := Options{Dir: filepath.Join(dir, "p-0"), Fsync: FsyncAlways}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 3, batchSpec{records: 2}, 0)
	before := readAll(t, l, 0, 1<<20)

	filler := fillFS(t, dir)
	big := makeBatch(t, batchSpec{records: 4, valueSize: 8 << 10})
	if _, _, err := l.Append(big, 0); !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append(full disk) = %v, want ErrNoSpace wrapping ENOSPC", err)
	}
	if got := readAll(t, l, 0, 1<<20); string(got) != string(before) {
		t.Fatalf("Read after the refused append: %d bytes, want the %d from before", len(got), len(before))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	base, last, err := l.Append(big, 0)
	if err != nil || base != 6 {
		t.Fatalf("Append(space again) = %d, %d, %v, want base 6", base, last, err)
	}
	if err := l.WaitDurable(t.Context(), last); err != nil {
		t.Fatalf("WaitDurable(%d) = %v", last, err)
	}
	l = reopen(t, l, o)
	if leo := l.LogEndOffset(); leo != last+1 {
		t.Fatalf("LogEndOffset() after reopen = %d, want %d", leo, last+1)
	}
}

// TestOpen_fullDiskAfterCrash opens, on a file system with no byte free, a
// log left by a crash (no Close, so its recovery point is behind its end):
// Open keeps the old recovery point, with a Warn, and serves every batch.
func TestOpen_fullDiskAfterCrash(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	o := Options{Dir: filepath.Join(dir, "p-0"), Fsync: FsyncAlways}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 5, batchSpec{records: 2}, 0)
	before := readAll(t, l, 0, 1<<20)
	// A crash: the files stay as they are, nothing more is written.
	l.syncer.stop()
	for _, s := range l.segs {
		s.close()
	}
	l.unlock()
	l.closed.Store(true)

	filler := fillFS(t, dir)
	logger, tl := newLogger(t)
	o.Logger = logger
	l = openLog(t, o)
	if !tl.has("WARN", "kept the old recovery point") {
		t.Errorf("Open on a full disk after a crash logged no Warn about the recovery point")
	}
	if got := readAll(t, l, 0, 1<<20); string(got) != string(before) {
		t.Fatalf("Read after Open on a full disk: %d bytes, want %d", len(got), len(before))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if base, _, err := l.Append(makeBatch(t, batchSpec{}), 0); err != nil || base != 10 {
		t.Fatalf("Append(space again) = %d, %v, want base 10", base, err)
	}
}

// mountTmpfs mounts a tmpfs of size on a new directory, unmounted at the
// end of the test; it skips the test where that is not possible.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: run as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillFS writes a file in dir until its file system has no byte free and
// returns the file's path.
func fillFS(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{64 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", path, err)
				}
				break
			}
		}
	}
	return path
}
