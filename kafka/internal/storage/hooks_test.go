package storage

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// TestLog_OnRollAndBeforeClose: OnRoll gets the base offset of every
// segment a roll starts (the log end offset then, where a snapshot of
// everything before it belongs), under each fsync mode; BeforeClose runs
// once, before Close, while the log still reads, and not for a log
// already closed.
func TestLog_OnRollAndBeforeClose(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncAlways, FsyncNever} {
		var (
			mu     sync.Mutex
			rolls  []int64
			closes int
			endAt  int64 = -1
		)
		var l *Log
		o := Options{Dir: t.TempDir(), SegmentBytes: 400, Fsync: mode,
			OnRoll: func(base int64) {
				mu.Lock()
				rolls = append(rolls, base)
				mu.Unlock()
			},
			BeforeClose: func() {
				closes++
				endAt = l.LogEndOffset()
				if err := l.ScanHeaders(0, func(BatchHeader) bool { return false }); err != nil {
					t.Errorf("ScanHeaders in BeforeClose = %v, want the log still open", err)
				}
			},
		}
		l = openLog(t, o)
		newAppended().appendN(t, l, 20, batchSpec{records: 2}, 0)
		l.mu.RLock()
		var bases []int64
		for _, s := range l.segs[1:] {
			bases = append(bases, s.base)
		}
		l.mu.RUnlock()
		mu.Lock()
		if len(bases) == 0 || !slices.Equal(rolls, bases) {
			t.Errorf("fsync mode %d: OnRoll got %v, want the bases of the rolled-to segments %v", mode, rolls, bases)
		}
		mu.Unlock()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second Close() = %v, want ErrClosed", err)
		}
		if closes != 1 || endAt != 40 {
			t.Errorf("fsync mode %d: BeforeClose ran %d times, saw log end %d; want once, at 40", mode, closes, endAt)
		}
	}
}
