package storage

import (
	"errors"
	"testing"
	"time"
)

// segmentBases returns the base offsets of l's segments.
func segmentBases(l *Log) []int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []int64
	for _, s := range l.segs {
		out = append(out, s.base)
	}
	return out
}

func TestLog_EnforceRetention_bytes(t *testing.T) {
	// Each batch is 1 record of ~200 bytes; 4 fit in a 1 KiB segment.
	tests := []struct {
		name      string
		limit     int64
		wantAtMax int64 // Size() after, at most (unless only the active segment is left)
	}{
		{"unlimited", 0, 1 << 30},
		{"half", 5000, 5000},
		{"one segment's worth", 1000, 1000},
		{"one byte", 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{SegmentBytes: 1024, RetentionBytes: tt.limit, RetentionAge: -1}
			l := openLog(t, o)
			a := newAppended()
			a.appendN(t, l, 40, batchSpec{valueSize: 200}, 0)
			before := segmentBases(l)
			n, err := l.EnforceRetention()
			if err != nil {
				t.Fatalf("EnforceRetention() = %v", err)
			}
			after := segmentBases(l)
			if len(after) != len(before)-n || (n > 0 && after[0] != before[n]) {
				t.Fatalf("EnforceRetention() = %d: segments %v -> %v", n, before, after)
			}
			if len(after) > 1 && l.Size() > tt.wantAtMax {
				t.Errorf("Size() = %d after retention, want <= %d", l.Size(), tt.wantAtMax)
			}
			if tt.limit > 0 && n > 0 && l.Size()+int64(len(a.batches[before[n-1]]))*4 <= tt.limit {
				t.Errorf("deleted more than needed: size %d, limit %d", l.Size(), tt.limit)
			}
			if got := l.LogStartOffset(); got != after[0] {
				t.Errorf("LogStartOffset() = %d, want %d", got, after[0])
			}
			if after[0] > 0 {
				if _, err := l.Read(after[0]-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
					t.Errorf("Read(below the log start) = %v, want ErrOffsetOutOfRange", err)
				}
			}
			l2 := reopen(t, l, Options{SegmentBytes: 1024, RetentionAge: -1})
			if got := l2.LogStartOffset(); got != after[0] {
				t.Errorf("LogStartOffset() after reopen = %d, want %d", got, after[0])
			}
			expectLog(t, l2, a, 40)
		})
	}
}

func TestLog_EnforceRetention_age(t *testing.T) {
	clk := newClock()
	o := Options{SegmentBytes: 1024, RetentionAge: time.Hour, Now: clk.Now}
	l := openLog(t, o)
	a := newAppended()
	// Ten minutes of batches per segment-ish, timestamps from the clock.
	for i := range 30 {
		b := makeBatch(t, batchSpec{valueSize: 200, ts: clk.Now().UnixMilli(), tag: i})
		base, _, err := l.Append(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		a.batches[base], a.order = b, append(a.order, base)
		clk.Advance(3 * time.Minute)
	}
	// Now = start+90m: batches older than start+30m are expired.
	segs := segmentBases(l)
	n, err := l.EnforceRetention()
	if err != nil {
		t.Fatal(err)
	}
	// Batch i has timestamp start+3i minutes; a segment goes when its last
	// batch is older than start+30m, i.e. its last offset < 10.
	var want int
	for i := 1; i < len(segs); i++ {
		if segs[i]-1 < 10 {
			want = i
		}
	}
	if n != want || n == 0 {
		t.Fatalf("EnforceRetention() = %d, want %d (segments %v)", n, want, segs)
	}
	if got := l.LogStartOffset(); got != segs[n] {
		t.Errorf("LogStartOffset() = %d, want %d", got, segs[n])
	}
	// Far in the future everything but the active segment goes.
	clk.Advance(24 * time.Hour)
	n2, err := l.EnforceRetention()
	if err != nil || len(segmentBases(l)) != 1 || n+n2 != len(segs)-1 {
		t.Fatalf("EnforceRetention() a day later = %d, %v; %d segments left", n2, err, len(segmentBases(l)))
	}
	l = reopen(t, l, Options{SegmentBytes: 1024, RetentionAge: -1, Now: clk.Now})
	if got := l.LogStartOffset(); got != segs[len(segs)-1] {
		t.Errorf("LogStartOffset() after reopen = %d, want %d", got, segs[len(segs)-1])
	}
	expectLog(t, l, a, 30)
}

func TestLog_DeleteRecordsBefore(t *testing.T) {
	o := Options{SegmentBytes: 1024, RetentionAge: -1}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 10, batchSpec{records: 2, valueSize: 150}, 1) // 0..19
	a.appendN(t, l, 10, batchSpec{records: 2, valueSize: 150}, 2) // 20..39
	segs := segmentBases(l)
	if err := l.DeleteRecordsBefore(41); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Errorf("DeleteRecordsBefore(41) = %v, want ErrOffsetOutOfRange", err)
	}
	if err := l.DeleteRecordsBefore(25); err != nil {
		t.Fatalf("DeleteRecordsBefore(25) = %v", err)
	}
	check := func(t *testing.T, l *Log) {
		if got := l.LogStartOffset(); got != 25 {
			t.Errorf("LogStartOffset() = %d, want 25", got)
		}
		if _, err := l.Read(24, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Errorf("Read(24) = %v, want ErrOffsetOutOfRange", err)
		}
		b, err := l.Read(25, 0)
		if h := headers(t, b); err != nil || len(h) != 1 || h[0].BaseOffset != 24 {
			t.Errorf("Read(25) = %v, %v, want the batch at 24", h, err)
		}
		for _, s := range segmentBases(l) {
			if next := s; next < 25 && s != segmentBases(l)[0] {
				t.Errorf("segment %d below the log start kept", s)
			}
		}
		if len(segmentBases(l)) >= len(segs) {
			t.Errorf("no segment deleted: %v", segmentBases(l))
		}
		if e, off := l.EndOffsetForEpoch(1); e != -1 || off != -1 {
			t.Errorf("EndOffsetForEpoch(1) = %d, %d, want -1, -1 (epoch 1 is wholly deleted)", e, off)
		}
		if e, off := l.EndOffsetForEpoch(2); e != 2 || off != 40 {
			t.Errorf("EndOffsetForEpoch(2) = %d, %d, want 2, 40", e, off)
		}
	}
	check(t, l)
	if err := l.DeleteRecordsBefore(10); err != nil {
		t.Errorf("DeleteRecordsBefore(below the start) = %v, want nil", err)
	}
	t.Run("after reopen", func(t *testing.T) { check(t, reopen(t, l, o)) })
}

// wallClock is a fakeClock that starts at the real time, so that a file's
// modification time (the broker's clock at its last write) is about its
// start.
func wallClock() *fakeClock { return &fakeClock{now: time.Now()} }

// appendAt appends n one-record batches stamped ts (milliseconds).
func appendAt(t *testing.T, l *Log, n int, ts int64) {
	t.Helper()
	for i := range n {
		if _, _, err := l.Append(makeBatch(t, batchSpec{ts: ts, tag: i}), 0); err != nil {
			t.Fatalf("Append() = %v", err)
		}
	}
}

// retain runs EnforceRetention, failing the test on an error, and returns
// how many segments it deleted and how many segment files are left.
func retain(t *testing.T, l *Log) (deleted, left int) {
	t.Helper()
	n, err := l.EnforceRetention()
	if err != nil {
		t.Fatalf("EnforceRetention() = %v", err)
	}
	return n, len(segmentFiles(t, l.dir))
}

func TestLog_EnforceRetention_idlePartitionRollsAndExpiresOnTime(t *testing.T) {
	clk := wallClock()
	l := openLog(t, Options{SegmentAge: time.Minute, RetentionAge: 2 * time.Minute, Now: clk.Now})
	appendAt(t, l, 5, clk.Now().UnixMilli())

	clk.Advance(30 * time.Second)
	if n, left := retain(t, l); n != 0 || left != 1 {
		t.Fatalf("retention at 30s: %d deleted, %d segments, want 0, 1 (segment.ms is 1m)", n, left)
	}
	clk.Advance(31 * time.Second)
	if n, left := retain(t, l); n != 0 || left != 2 {
		t.Fatalf("retention at 61s: %d deleted, %d segments, want 0, 2 (rolled, not expired)", n, left)
	}
	// The new active segment is empty: checking again and again makes no
	// more segments.
	for range 3 {
		clk.Advance(10 * time.Second)
		if n, left := retain(t, l); n != 0 || left != 2 {
			t.Fatalf("retention on an idle partition: %d deleted, %d segments, want 0, 2", n, left)
		}
	}
	if got := len(headers(t, readAll(t, l, 0, 1<<20))); got != 5 {
		t.Fatalf("%d batches readable before retention.ms, want 5", got)
	}

	// 2m31s after the append, past retention.ms: the rolled segment goes.
	clk.Advance(time.Minute)
	if n, left := retain(t, l); n != 1 || left != 1 {
		t.Fatalf("retention at 2m31s: %d deleted, %d segments, want 1, 1", n, left)
	}
	if start, end := l.LogStartOffset(), l.LogEndOffset(); start != 5 || end != 5 {
		t.Fatalf("log start, end = %d, %d after retention, want 5, 5", start, end)
	}
	if _, err := l.Read(0, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Errorf("Read(0) after retention = %v, want ErrOffsetOutOfRange", err)
	}
	for range 3 {
		clk.Advance(time.Hour)
		if n, left := retain(t, l); n != 0 || left != 1 {
			t.Fatalf("retention on an expired idle log: %d deleted, %d segments, want 0, 1", n, left)
		}
	}
}

func TestLog_EnforceRetention_rollsByTheBrokerClock(t *testing.T) {
	tests := []struct {
		name string
		ts   int64 // the producer's timestamp
	}{
		{"no real-time clock", 1000},
		{"clock a year ahead", time.Now().Add(365 * 24 * time.Hour).UnixMilli()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := wallClock()
			l := openLog(t, Options{SegmentAge: time.Hour, RetentionAge: -1, Now: clk.Now})
			appendAt(t, l, 3, tt.ts)
			clk.Advance(59 * time.Minute)
			appendAt(t, l, 1, tt.ts)
			if n, left := retain(t, l); n != 0 || left != 1 {
				t.Fatalf("retention 59m after the first append: %d deleted, %d segments, want 0, 1", n, left)
			}
			clk.Advance(time.Minute)
			if n, left := retain(t, l); n != 0 || left != 2 {
				t.Fatalf("retention 60m after the first append: %d deleted, %d segments, want 0, 2 (rolled)", n, left)
			}
		})
	}
}

func TestLog_EnforceRetention_rollsAnExpiredIdleActiveSegment(t *testing.T) {
	// retention.ms below segment.ms: the active segment never rolls by age
	// before its records expire, so retention rolls it.
	clk := wallClock()
	o := Options{RetentionAge: time.Minute, Now: clk.Now}
	l := openLog(t, o)
	appendAt(t, l, 4, clk.Now().UnixMilli())
	clk.Advance(30 * time.Second)
	if n, err := l.EnforceRetention(); n != 0 || err != nil {
		t.Fatalf("EnforceRetention() at 30s = %d, %v, want 0", n, err)
	}
	clk.Advance(90 * time.Second)
	if n, err := l.EnforceRetention(); n != 1 || err != nil {
		t.Fatalf("EnforceRetention() at 2m = %d, %v, want the rolled active segment", n, err)
	}
	if start, end := l.LogStartOffset(), l.LogEndOffset(); start != 4 || end != 4 {
		t.Fatalf("log start, end = %d, %d, want 4, 4", start, end)
	}
	l = reopen(t, l, o)
	if start, end := l.LogStartOffset(), l.LogEndOffset(); start != 4 || end != 4 {
		t.Fatalf("after reopen: log start, end = %d, %d, want 4, 4", start, end)
	}
	if base, _, err := l.Append(makeBatch(t, batchSpec{ts: clk.Now().UnixMilli()}), 0); base != 4 || err != nil {
		t.Fatalf("Append() after the log expired = %d, %v, want offset 4", base, err)
	}
}

func TestLog_EnforceRetention_keepsJustWrittenRecordsWithOldTimestamps(t *testing.T) {
	// A producer without a clock stamps 1970. Its records are past any
	// retention by their timestamps, but the active segment was written a
	// moment ago by the broker's clock, so a retention check right after
	// the append leaves them for consumers and followers.
	clk := wallClock()
	l := openLog(t, Options{RetentionAge: time.Hour, Now: clk.Now})
	appendAt(t, l, 3, 1000)
	if n, err := l.EnforceRetention(); n != 0 || err != nil {
		t.Fatalf("EnforceRetention() = %d, %v, want 0", n, err)
	}
	if got := len(headers(t, readAll(t, l, 0, 1<<20))); got != 3 {
		t.Errorf("%d batches readable, want 3", got)
	}
}

func TestLog_EnforceRetention_futureTimestampsExpireAfterTheLastWrite(t *testing.T) {
	// A producer whose clock runs ten years ahead: by their timestamps its
	// segments would be kept for ten years. They go once retention has
	// passed since they were written.
	clk := wallClock()
	l := openLog(t, Options{SegmentBytes: 1024, RetentionAge: time.Hour, Now: clk.Now})
	future := clk.Now().Add(10 * 365 * 24 * time.Hour).UnixMilli()
	for i := range 20 {
		if _, _, err := l.Append(makeBatch(t, batchSpec{valueSize: 200, ts: future, tag: i}), 0); err != nil {
			t.Fatal(err)
		}
	}
	segs := len(segmentBases(l))
	if segs < 3 {
		t.Fatalf("%d segments, want several", segs)
	}
	clk.Advance(30 * time.Minute)
	if n, err := l.EnforceRetention(); n != 0 || err != nil {
		t.Fatalf("EnforceRetention() 30m after the writes = %d, %v, want 0", n, err)
	}
	clk.Advance(60 * time.Minute)
	if n, err := l.EnforceRetention(); n != segs || err != nil {
		t.Fatalf("EnforceRetention() 90m after the writes = %d, %v, want all %d segments", n, err, segs)
	}
	if start, end := l.LogStartOffset(), l.LogEndOffset(); start != 20 || end != 20 {
		t.Errorf("log start, end = %d, %d, want 20, 20", start, end)
	}
}
