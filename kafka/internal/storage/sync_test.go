package storage

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestParseFsyncMode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    FsyncMode
		wantErr bool
	}{
		{"always", "always", FsyncAlways, false},
		{"interval", "interval", FsyncInterval, false},
		{"never", "never", FsyncNever, false},
		{"unknown", "sometimes", 0, true},
		{"case matters", "Always", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFsyncMode(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseFsyncMode(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
			if err == nil && got.String() != tt.in {
				t.Errorf("%v.String() = %q, want %q", got, got.String(), tt.in)
			}
		})
	}
}

func TestLog_WaitDurable_groupCommit(t *testing.T) {
	l := openLog(t, Options{Fsync: FsyncAlways, SegmentBytes: 256 << 10})
	const writers, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, last, err := l.Append(makeBatch(t, batchSpec{records: 2, valueSize: 100, tag: w*each + i}), 0)
				if err == nil {
					err = l.WaitDurable(context.Background(), last)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append and wait: %v", err)
	}
	total := int64(writers * each)
	if got := l.LogEndOffset(); got != 2*total {
		t.Fatalf("LogEndOffset() = %d, want %d", got, 2*total)
	}
	fsyncs := l.syncer.fsyncs.Load()
	t.Logf("%d durable appends took %d fsyncs of the active segment", total, fsyncs)
	if fsyncs >= total {
		t.Errorf("%d fsyncs for %d appends: waiters did not share fsyncs", fsyncs, total)
	}
	if got := len(headers(t, readAll(t, l, 0, 1<<20))); int64(got) != total {
		t.Errorf("read %d batches, want %d", got, total)
	}
}

func TestLog_WaitDurable(t *testing.T) {
	t.Run("cancelled while the fsync is held up", func(t *testing.T) {
		l := openLog(t, Options{Fsync: FsyncAlways})
		_, last, err := l.Append(makeBatch(t, batchSpec{}), 0)
		if err != nil {
			t.Fatal(err)
		}
		l.fileMu.Lock() // the syncer cannot run
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err = l.WaitDurable(ctx, last)
		l.fileMu.Unlock()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitDurable() with a held-up fsync = %v, want DeadlineExceeded", err)
		}
		if err := l.WaitDurable(context.Background(), last); err != nil {
			t.Fatalf("WaitDurable() = %v", err)
		}
	})
	t.Run("past the log end", func(t *testing.T) {
		l := openLog(t, Options{Fsync: FsyncAlways})
		if err := l.WaitDurable(context.Background(), 0); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("WaitDurable(0) on an empty log = %v, want ErrOffsetOutOfRange", err)
		}
	})
	for _, mode := range []FsyncMode{FsyncInterval, FsyncNever} {
		t.Run(mode.String()+" returns at once", func(t *testing.T) {
			l := openLog(t, Options{Fsync: mode, FsyncInterval: 10 * time.Millisecond})
			_, last, err := l.Append(makeBatch(t, batchSpec{}), 0)
			if err != nil {
				t.Fatal(err)
			}
			l.fileMu.Lock() // no fsync can happen, and none is waited for
			err = l.WaitDurable(context.Background(), last)
			l.fileMu.Unlock()
			if err != nil {
				t.Fatalf("WaitDurable() = %v", err)
			}
		})
	}
	t.Run("interval fsyncs in the background", func(t *testing.T) {
		l := openLog(t, Options{Fsync: FsyncInterval, FsyncInterval: 5 * time.Millisecond})
		if _, _, err := l.Append(makeBatch(t, batchSpec{}), 0); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for l.syncer.fsyncs.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no background fsync within 5s")
			}
			time.Sleep(time.Millisecond)
		}
	})
	t.Run("waiters of a truncated offset are released", func(t *testing.T) {
		l := openLog(t, Options{Fsync: FsyncAlways})
		if _, _, err := l.Append(makeBatch(t, batchSpec{}), 0); err != nil {
			t.Fatal(err)
		}
		_, last, _ := l.Append(makeBatch(t, batchSpec{}), 0)
		l.fileMu.Lock()
		done := make(chan error)
		go func() { done <- l.WaitDurable(context.Background(), last) }()
		time.Sleep(20 * time.Millisecond)
		l.fileMu.Unlock()
		if err := l.TruncateTo(1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			// Either it became durable before the truncation or it was cut.
			if err != nil && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Errorf("WaitDurable(truncated) = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WaitDurable of a truncated offset still blocked")
		}
	})
}

// TestLog_concurrentReadsAndWrites runs readers against a writer that rolls,
// truncates and deletes old segments; under -race it checks the locking, and
// every batch a reader gets must be whole and valid.
func TestLog_concurrentReadsAndWrites(t *testing.T) {
	l := openLog(t, Options{SegmentBytes: 4096, IndexIntervalBytes: 256, RetentionBytes: 32 << 10, RetentionAge: -1, Fsync: FsyncAlways})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 9))
			for {
				select {
				case <-stop:
					return
				default:
				}
				start, end := l.LogStartOffset(), l.LogEndOffset()
				if end == start {
					continue
				}
				off := start + rng.Int64N(end-start)
				b, err := l.Read(off, rng.IntN(8000))
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // retention or truncation got there first
				}
				if err != nil {
					t.Errorf("Read(%d) = %v", off, err)
					return
				}
				hs := headers(t, b)
				if len(hs) == 0 && off >= l.LogEndOffset() {
					continue // truncation moved the end to off: an empty read is right
				}
				if len(hs) == 0 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
					t.Errorf("Read(%d) = batches starting %v", off, hs)
					return
				}
				if _, _, err := l.OffsetForTimestamp(rng.Int64N(3000)); err != nil {
					t.Errorf("OffsetForTimestamp() = %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 600 {
			b := makeBatch(t, batchSpec{records: 1 + i%4, valueSize: 50 + i%300, ts: int64(1 + i*5), tag: i})
			_, last, err := l.Append(b, int32(i/100))
			if err == nil && i%7 == 0 {
				err = l.WaitDurable(context.Background(), last)
			}
			if err == nil && i%50 == 0 {
				_, err = l.EnforceRetention()
			}
			if err == nil && i%97 == 0 {
				err = l.TruncateTo(last - int64(i%4)) // cut the batch just appended
			}
			if err != nil {
				t.Errorf("writer step %d: %v", i, err)
				break
			}
		}
		close(stop)
	})
	wg.Wait()
}
