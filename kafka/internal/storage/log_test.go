package storage

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// maskOwned zeroes the two header fields the broker owns.
func maskOwned(b []byte) []byte {
	b = append([]byte(nil), b...)
	setBaseOffset(b, 0)
	setLeaderEpoch(b, 0)
	return b
}

func TestLog_roundTripAcrossRolls(t *testing.T) {
	o := Options{SegmentBytes: 8 << 10, IndexIntervalBytes: 512}
	l := openLog(t, o)
	rng := rand.New(rand.NewPCG(1, 2))
	var produced [][]byte // as the producer sent them
	var bases []int64
	for i := range 400 {
		b := makeBatch(t, batchSpec{records: 1 + rng.IntN(8), valueSize: 1 + rng.IntN(700), tag: i})
		produced = append(produced, append([]byte(nil), b...))
		base, last, err := l.Append(b, int32(i/100))
		if err != nil {
			t.Fatalf("Append(%d) = %v", i, err)
		}
		if i > 0 && base != bases[len(bases)-1]+int64(headers(t, produced[i-1])[0].LastOffsetDelta)+1 {
			t.Fatalf("Append(%d) base = %d, not contiguous", i, base)
		}
		if want := base + int64(headers(t, b)[0].LastOffsetDelta); last != want {
			t.Fatalf("Append(%d) last = %d, want %d", i, last, want)
		}
		bases = append(bases, base)
	}
	if n := len(segmentFiles(t, l.dir)); n < 10 {
		t.Fatalf("%d segments, want many rolls", n)
	}
	check := func(t *testing.T, l *Log) {
		for _, maxBytes := range []int{0, 1000, 5000, 1 << 20} {
			all := readAll(t, l, 0, maxBytes)
			hs := headers(t, all)
			if len(hs) != len(produced) {
				t.Fatalf("maxBytes %d: read %d batches, want %d", maxBytes, len(hs), len(produced))
			}
			rest := all
			for i, h := range hs {
				got := rest[:h.Length]
				rest = rest[h.Length:]
				if h.BaseOffset != bases[i] || h.PartitionLeaderEpoch != int32(i/100) {
					t.Fatalf("batch %d: offset %d epoch %d, want %d %d", i, h.BaseOffset, h.PartitionLeaderEpoch, bases[i], i/100)
				}
				if !bytes.Equal(maskOwned(got), maskOwned(produced[i])) {
					t.Fatalf("batch %d differs from what was produced", i)
				}
			}
		}
		// Every offset, not just batch starts, reads the batch that holds it.
		for i, base := range bases {
			last := headers(t, produced[i])[0].LastOffsetDelta
			off := base + int64(rng.IntN(int(last)+1))
			b, err := l.Read(off, 1)
			if err != nil {
				t.Fatalf("Read(%d) = %v", off, err)
			}
			if h := headers(t, b); len(h) != 1 || h[0].BaseOffset != base {
				t.Fatalf("Read(%d, 1) = batches %v, want the one at %d", off, h, base)
			}
		}
	}
	check(t, l)
	t.Run("after reopen", func(t *testing.T) { check(t, reopen(t, l, o)) })
}

func TestLog_Read(t *testing.T) {
	l := openLog(t, Options{})
	a := newAppended()
	a.appendN(t, l, 5, batchSpec{records: 2, valueSize: 200}, 0)
	size := len(a.batches[0])
	tests := []struct {
		name        string
		offset      int64
		maxBytes    int
		wantBatches int
		wantErr     error
	}{
		{"zero max bytes gives the first batch", 0, 0, 1, nil},
		{"max bytes below one batch gives the first batch", 0, 10, 1, nil},
		{"exactly two batches", 0, 2 * size, 2, nil},
		{"one byte short of three", 0, 3*size - 1, 2, nil},
		{"everything", 0, 1 << 20, 5, nil},
		{"from the middle of a batch", 3, 1 << 20, 4, nil},
		{"last batch", 9, 1 << 20, 1, nil},
		{"at the log end offset", 10, 100, 0, nil},
		{"past the log end offset", 11, 100, 0, ErrOffsetOutOfRange},
		{"negative", -1, 100, 0, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := l.Read(tt.offset, tt.maxBytes)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Read(%d, %d) = %v, want %v", tt.offset, tt.maxBytes, err, tt.wantErr)
			}
			if got := len(headers(t, b)); got != tt.wantBatches {
				t.Errorf("Read(%d, %d) = %d batches, want %d", tt.offset, tt.maxBytes, got, tt.wantBatches)
			}
			if tt.wantBatches == 0 && b != nil {
				t.Errorf("Read(%d, %d) = %d bytes, want nil", tt.offset, tt.maxBytes, len(b))
			}
		})
	}
	// The returned slice is the caller's.
	b, _ := l.Read(0, 0)
	for i := range b {
		b[i] = 0xff
	}
	if again, _ := l.Read(0, 0); !bytes.Equal(again, a.batches[0]) {
		t.Errorf("scribbling on a Read result changed the log")
	}
}

func TestLog_offsetsContinueAfterReopen(t *testing.T) {
	o := Options{SegmentBytes: 4096}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 20, batchSpec{records: 3, valueSize: 300}, 2)
	leo := l.LogEndOffset()
	l = reopen(t, l, o)
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("LogEndOffset() after reopen = %d, want %d", got, leo)
	}
	if got := l.LatestEpoch(); got != 2 {
		t.Errorf("LatestEpoch() after reopen = %d, want 2", got)
	}
	base, _, err := l.Append(makeBatch(t, batchSpec{records: 2}), 2)
	if err != nil || base != leo {
		t.Fatalf("Append() after reopen = %d, %v, want %d", base, err, leo)
	}
	if got := len(headers(t, readAll(t, l, 0, 1<<20))); got != 21 {
		t.Errorf("read %d batches after reopen, want 21", got)
	}
}

func TestLog_Append_refusesOlderEpoch(t *testing.T) {
	l := openLog(t, Options{})
	if _, _, err := l.Append(makeBatch(t, batchSpec{}), 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Append(makeBatch(t, batchSpec{}), 4); err == nil {
		t.Errorf("Append(epoch 4 after 5) = nil error, want one")
	}
	if _, _, err := l.Append(makeBatch(t, batchSpec{}), -1); err == nil {
		t.Errorf("Append(epoch -1) = nil error, want one")
	}
	if _, _, err := l.Append([]byte("garbage"), 5); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Append(garbage) = %v, want ErrCorrupt", err)
	}
	if got := l.LogEndOffset(); got != 1 {
		t.Errorf("LogEndOffset() = %d, want 1", got)
	}
}

func TestLog_Append_severalBatchesInOneCall(t *testing.T) {
	l := openLog(t, Options{})
	var in []byte
	for i := range 3 {
		in = append(in, makeBatch(t, batchSpec{records: 4, tag: i})...)
	}
	base, last, err := l.Append(in, 1)
	if err != nil || base != 0 || last != 11 {
		t.Fatalf("Append(3 batches of 4) = %d, %d, %v, want 0, 11, nil", base, last, err)
	}
	hs := headers(t, readAll(t, l, 0, 1<<20))
	for i, h := range hs {
		if h.BaseOffset != int64(4*i) || h.PartitionLeaderEpoch != 1 {
			t.Errorf("batch %d: offset %d epoch %d, want %d 1", i, h.BaseOffset, h.PartitionLeaderEpoch, 4*i)
		}
	}
}

// leaderBatches returns batches as a leader would have stored them.
func leaderBatches(t *testing.T, specs []struct {
	records int
	epoch   int32
}) [][]byte {
	var out [][]byte
	var next int64
	for i, s := range specs {
		b := makeBatch(t, batchSpec{records: s.records, tag: i})
		setBaseOffset(b, next)
		setLeaderEpoch(b, s.epoch)
		next += int64(s.records)
		out = append(out, b)
	}
	return out
}

func TestLog_AppendVerbatim(t *testing.T) {
	lb := leaderBatches(t, []struct {
		records int
		epoch   int32
	}{{2, 1}, {3, 1}, {1, 3}, {4, 3}})
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	corrupt := append([]byte(nil), lb[1]...)
	corrupt[len(corrupt)-1] ^= 1
	tests := []struct {
		name     string
		in       [][]byte
		wantLast []int64 // per call; -1 for an error
		wantErr  error
		wantLEO  int64
	}{
		{"one call", [][]byte{cat(lb...)}, []int64{9}, nil, 10},
		{"call by call", lb, []int64{1, 4, 5, 9}, nil, 10},
		{"gap", [][]byte{lb[0], lb[2]}, []int64{1, -1}, ErrOffsetOutOfRange, 2},
		{"overlap", [][]byte{cat(lb[0], lb[1]), lb[1]}, []int64{4, -1}, ErrOffsetOutOfRange, 5},
		{"not starting at zero", [][]byte{lb[1]}, []int64{-1}, ErrOffsetOutOfRange, 0},
		{"bad batch in the middle writes nothing", [][]byte{cat(lb[0], corrupt, lb[2])}, []int64{-1}, ErrCorrupt, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := openLog(t, Options{})
			for i, b := range tt.in {
				last, err := l.AppendVerbatim(append([]byte(nil), b...))
				if tt.wantLast[i] < 0 {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("AppendVerbatim(call %d) = %v, want %v", i, err, tt.wantErr)
					}
					continue
				}
				if err != nil || last != tt.wantLast[i] {
					t.Fatalf("AppendVerbatim(call %d) = %d, %v, want %d", i, last, err, tt.wantLast[i])
				}
			}
			if got := l.LogEndOffset(); got != tt.wantLEO {
				t.Errorf("LogEndOffset() = %d, want %d", got, tt.wantLEO)
			}
			if tt.wantLEO == 10 {
				if got := readAll(t, l, 0, 1<<20); !bytes.Equal(got, cat(lb...)) {
					t.Errorf("follower log differs from the leader's batches")
				}
				if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 5 {
					t.Errorf("EndOffsetForEpoch(1) = %d, %d, want 1, 5", e, off)
				}
			}
		})
	}
}

func TestLog_EndOffsetForEpoch(t *testing.T) {
	l := openLog(t, Options{})
	if e, off := l.EndOffsetForEpoch(0); e != -1 || off != -1 {
		t.Errorf("empty log: EndOffsetForEpoch(0) = %d, %d, want -1, -1", e, off)
	}
	if got := l.LatestEpoch(); got != -1 {
		t.Errorf("empty log: LatestEpoch() = %d, want -1", got)
	}
	// Epoch 2 starts at 0, 3 at 10, 6 at 15; log end 25.
	for _, step := range []struct {
		epoch int32
		n     int
	}{{2, 10}, {3, 5}, {6, 10}} {
		for range step.n {
			if _, _, err := l.Append(makeBatch(t, batchSpec{}), step.epoch); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name      string
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{"below every epoch", 1, -1, -1},
		{"undefined", -1, -1, -1},
		{"first", 2, 2, 10},
		{"middle", 3, 3, 15},
		{"gap between known epochs", 5, 3, 15},
		{"latest", 6, 6, 25},
		{"above latest", 9, 6, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, off := l.EndOffsetForEpoch(tt.epoch)
			if e != tt.wantEpoch || off != tt.wantEnd {
				t.Errorf("EndOffsetForEpoch(%d) = %d, %d, want %d, %d", tt.epoch, e, off, tt.wantEpoch, tt.wantEnd)
			}
		})
	}
	l = reopen(t, l, Options{})
	if e, off := l.EndOffsetForEpoch(3); e != 3 || off != 15 {
		t.Errorf("after reopen: EndOffsetForEpoch(3) = %d, %d, want 3, 15", e, off)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, epochFile))
	if err != nil || string(b) != "0\n3\n2 0\n3 10\n6 15\n" {
		t.Errorf("leader-epoch-checkpoint = %q, %v", b, err)
	}
}

func TestLog_TruncateTo(t *testing.T) {
	o := Options{SegmentBytes: 2048, IndexIntervalBytes: 256}
	setup := func(t *testing.T) (*Log, *appended) {
		l := openLog(t, o)
		a := newAppended()
		a.appendN(t, l, 30, batchSpec{records: 2, valueSize: 150}, 1) // offsets 0..59
		a.appendN(t, l, 30, batchSpec{records: 2, valueSize: 150}, 4) // offsets 60..119
		return l, a
	}
	tests := []struct {
		name    string
		offset  int64
		wantErr error
		wantLEO int64
		wantEp  int32
	}{
		{"at the log end offset", 120, nil, 120, 4},
		{"last batch", 118, nil, 118, 4},
		{"epoch boundary", 60, nil, 60, 1},
		{"into an early segment", 20, nil, 20, 1},
		{"everything", 0, nil, 0, -1},
		{"inside a batch", 21, ErrOffsetOutOfRange, 120, 4},
		{"past the end", 121, ErrOffsetOutOfRange, 120, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, a := setup(t)
			err := l.TruncateTo(tt.offset)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("TruncateTo(%d) = %v, want %v", tt.offset, err, tt.wantErr)
			}
			for round := range 2 {
				if round == 1 {
					l = reopen(t, l, o)
				}
				if got := l.LogEndOffset(); got != tt.wantLEO {
					t.Errorf("round %d: LogEndOffset() = %d, want %d", round, got, tt.wantLEO)
				}
				if got := l.LatestEpoch(); got != tt.wantEp {
					t.Errorf("round %d: LatestEpoch() = %d, want %d", round, got, tt.wantEp)
				}
				got := readAll(t, l, 0, 1<<20)
				var want []byte
				for _, base := range a.order {
					if base < tt.wantLEO {
						want = append(want, a.batches[base]...)
					}
				}
				if !bytes.Equal(got, want) {
					t.Errorf("round %d: log after TruncateTo(%d) holds %d bytes, want %d", round, tt.offset, len(got), len(want))
				}
				if round == 1 {
					// The truncated log takes appends again, in a new epoch.
					base, _, err := l.Append(makeBatch(t, batchSpec{}), 7)
					if err != nil || base != tt.wantLEO {
						t.Errorf("Append() after truncation = %d, %v, want %d", base, err, tt.wantLEO)
					}
					if e, off := l.EndOffsetForEpoch(7); e != 7 || off != tt.wantLEO+1 {
						t.Errorf("EndOffsetForEpoch(7) = %d, %d, want 7, %d", e, off, tt.wantLEO+1)
					}
				}
			}
		})
	}
}

func TestLog_rollByAge(t *testing.T) {
	clk := newClock()
	l := openLog(t, Options{SegmentAge: time.Hour, Now: clk.Now})
	a := newAppended()
	a.appendN(t, l, 3, batchSpec{}, 0)
	clk.Advance(59 * time.Minute)
	a.appendN(t, l, 1, batchSpec{}, 0)
	if n := len(segmentFiles(t, l.dir)); n != 1 {
		t.Fatalf("%d segments before the age limit, want 1", n)
	}
	clk.Advance(time.Minute)
	a.appendN(t, l, 1, batchSpec{}, 0)
	if n := len(segmentFiles(t, l.dir)); n != 2 {
		t.Fatalf("%d segments after the age limit, want 2", n)
	}
	// An empty active segment never rolls, however old.
	clk.Advance(10 * time.Hour)
	a.appendN(t, l, 1, batchSpec{}, 0)
	if n := len(segmentFiles(t, l.dir)); n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
}

func TestLog_Close(t *testing.T) {
	l := openLog(t, Options{Fsync: FsyncAlways})
	if _, _, err := l.Append(makeBatch(t, batchSpec{}), 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	ctx := context.Background()
	calls := []struct {
		name string
		err  error
	}{
		{"Close", l.Close()},
		{"Append", func() error { _, _, err := l.Append(makeBatch(t, batchSpec{}), 0); return err }()},
		{"AppendVerbatim", func() error { _, err := l.AppendVerbatim(makeBatch(t, batchSpec{})); return err }()},
		{"Read", func() error { _, err := l.Read(0, 100); return err }()},
		{"OffsetForTimestamp", func() error { _, _, err := l.OffsetForTimestamp(0); return err }()},
		{"WaitDurable past the end", l.WaitDurable(ctx, 5)},
		{"TruncateTo", l.TruncateTo(0)},
		{"EnforceRetention", func() error { _, err := l.EnforceRetention(); return err }()},
		{"DeleteRecordsBefore", l.DeleteRecordsBefore(1)},
	}
	for _, c := range calls {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s() after Close = %v, want ErrClosed", c.name, c.err)
		}
	}
	if err := l.WaitDurable(ctx, 0); err != nil {
		t.Errorf("WaitDurable(0) after Close = %v, want nil: Close fsynced it", err)
	}
	if err := l.Delete(); err != nil {
		t.Errorf("Delete() = %v", err)
	}
	if _, err := os.Stat(l.dir); !os.IsNotExist(err) {
		t.Errorf("directory still there after Delete: %v", err)
	}
}

func TestLog_OffsetForTimestamp(t *testing.T) {
	o := Options{SegmentBytes: 3000, IndexIntervalBytes: 200}
	l := openLog(t, o)
	rng := rand.New(rand.NewPCG(3, 4))
	type info struct {
		base  int64
		maxTs int64
	}
	var all []info
	ts := int64(1_000_000)
	for i := range 200 {
		// Mostly rising timestamps with some going backwards.
		ts += int64(rng.IntN(100)) - 20
		b := makeBatch(t, batchSpec{records: 1 + rng.IntN(3), valueSize: 50, ts: ts, tag: i})
		h := headers(t, b)[0]
		base, _, err := l.Append(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, info{base, h.MaxTimestamp})
	}
	want := func(q int64) (int64, bool) {
		for _, b := range all {
			if b.maxTs >= q {
				return b.base, true
			}
		}
		return -1, false
	}
	check := func(t *testing.T, l *Log) {
		lo, hi := all[0].maxTs-10, ts+200
		for q := lo; q <= hi; q += 7 {
			got, found, err := l.OffsetForTimestamp(q)
			w, wfound := want(q)
			if err != nil || got != w || found != wfound {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v, want %d, %v", q, got, found, err, w, wfound)
			}
		}
	}
	check(t, l)
	t.Run("after reopen", func(t *testing.T) { check(t, reopen(t, l, o)) })
}

func TestOpen_secondLogOnTheSameDirectoryFails(t *testing.T) {
	l := openLog(t, Options{})
	if l2, err := Open(Options{Dir: l.dir}); err == nil {
		l2.Close()
		t.Fatalf("Open() of a directory already open = nil error, want one")
	}
	l = reopen(t, l, Options{})
	if got := l.LogEndOffset(); got != 0 {
		t.Errorf("LogEndOffset() = %d, want 0", got)
	}
}

func TestOpen_badOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no dir", Options{}},
		{"negative segment bytes", Options{Dir: t.TempDir(), SegmentBytes: -1}},
		{"segment bytes past 2 GiB", Options{Dir: t.TempDir(), SegmentBytes: 1 << 31}},
		{"negative index interval", Options{Dir: t.TempDir(), IndexIntervalBytes: -1}},
		{"unknown fsync mode", Options{Dir: t.TempDir(), Fsync: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := Open(tt.o); err == nil {
				l.Close()
				t.Errorf("Open(%+v) = nil error, want one", tt.o)
			}
		})
	}
}
