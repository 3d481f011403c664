package storage

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestLog_failedFsyncServesOnlyWhatWasDurable: after an fsync error the
// log acknowledges nothing more (the waiter gets the error), refuses
// appends, reads only the batches durable before the failure (not those
// still in the page cache, which the kernel may have dropped), says so
// once through OnFail and at Error with the device, and a reopen recovers
// what the files hold.
func TestLog_failedFsyncServesOnlyWhatWasDurable(t *testing.T) {
	var failing atomic.Bool
	failed := make(chan error, 4)
	logger, lines := newLogger(t)
	o := Options{
		Fsync:  FsyncAlways,
		Logger: logger,
		BeforeFsync: func(string) error {
			if failing.Load() {
				return syscall.EIO
			}
			return nil
		},
		OnFail: func(err error) { failed <- err },
	}
	l := openLog(t, o)
	ctx := context.Background()
	_, durableLast, err := l.Append(makeBatch(t, batchSpec{records: 3, tag: 1}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(ctx, durableLast); err != nil {
		t.Fatalf("WaitDurable before the failure = %v", err)
	}

	failing.Store(true)
	_, lost, err := l.Append(makeBatch(t, batchSpec{records: 2, tag: 2}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(ctx, lost); !errors.Is(err, syscall.EIO) {
		t.Fatalf("WaitDurable of the batch whose fsync failed = %v, want EIO", err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("OnFail(%v), want EIO", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnFail was not called")
	}
	if !errors.Is(l.Failed(), syscall.EIO) {
		t.Errorf("Failed() = %v, want EIO", l.Failed())
	}
	if _, _, err := l.Append(makeBatch(t, batchSpec{tag: 3}), 0); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Errorf("Append after the failure = %v, want ErrFailed wrapping EIO", err)
	}

	b, err := l.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	hs := headers(t, b)
	if len(hs) != 1 || hs[0].LastOffset() != durableLast {
		t.Errorf("read after the failure: %d batches ending at %d, want the one durable batch ending at %d", len(hs), hs[len(hs)-1].LastOffset(), durableLast)
	}
	if b, err := l.Read(durableLast+1, 1<<20); err != nil || b != nil {
		t.Errorf("Read at the first offset not durable = %d bytes, %v; want nothing", len(b), err)
	}
	if !lines.has("ERROR", "partition log failed", "device=", "durable_offset=3") {
		t.Error("no Error log naming the device and the durable offset")
	}
	select {
	case err := <-failed:
		t.Errorf("OnFail called again (%v); it must be called once", err)
	default:
	}

	// A restart recovers from what the files hold: here the page cache
	// kept the batch, so it is back; on a failing disk it might not be.
	failing.Store(false)
	l = reopen(t, l, Options{Fsync: FsyncAlways})
	if l.Failed() != nil || l.LogEndOffset() != lost+1 {
		t.Errorf("after reopen: Failed() = %v, LogEndOffset() = %d, want healthy at %d", l.Failed(), l.LogEndOffset(), lost+1)
	}
}

// TestLog_failedRollFailsTheLog: an fsync error while a full segment is
// rolled fails the log the same way.
func TestLog_failedRollFailsTheLog(t *testing.T) {
	var failing atomic.Bool
	l := openLog(t, Options{Fsync: FsyncAlways, SegmentBytes: 1024, BeforeFsync: func(string) error {
		if failing.Load() {
			return syscall.EIO
		}
		return nil
	}})
	_, last, err := l.Append(makeBatch(t, batchSpec{records: 1, valueSize: 900}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	if _, _, err := l.Append(makeBatch(t, batchSpec{records: 1, valueSize: 900}), 0); err == nil {
		// The roll happens on this append or the next.
		_, _, err = l.Append(makeBatch(t, batchSpec{records: 1, valueSize: 900}), 0)
		if err == nil {
			t.Fatal("appends past a failed roll succeeded")
		}
	}
	if !errors.Is(l.Failed(), syscall.EIO) {
		t.Errorf("Failed() = %v, want EIO", l.Failed())
	}
}

func TestDeviceOf(t *testing.T) {
	got := deviceOf(t.TempDir())
	if got == "" || got == "unknown" {
		t.Errorf("deviceOf(temp dir) = %q, want a device", got)
	}
	t.Logf("deviceOf(temp dir) = %q", got)
}
