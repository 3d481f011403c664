package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// copyDir copies the files of an open log's directory: what a machine that
// lost power (or a killed process) leaves behind, give or take the page
// cache.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if os.IsNotExist(err) {
			continue // a checkpoint's temporary file, renamed meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// editFile applies f to a file's bytes.
func editFile(t *testing.T, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

// expectLog checks that l holds exactly the appended batches below leo,
// that it takes an append at leo, and that the append reads back.
func expectLog(t *testing.T, l *Log, a *appended, leo int64) {
	t.Helper()
	if got := l.LogEndOffset(); got != leo {
		t.Fatalf("LogEndOffset() = %d, want %d", got, leo)
	}
	var want []byte
	start := l.LogStartOffset()
	for _, base := range a.order {
		if base < leo && parseHeader(a.batches[base]).LastOffset() >= start {
			want = append(want, a.batches[base]...)
		}
	}
	if got := readAll(t, l, l.LogStartOffset(), 1<<20); !bytes.Equal(got, want) {
		t.Fatalf("log holds %d bytes, want %d", len(got), len(want))
	}
	base, _, err := l.Append(makeBatch(t, batchSpec{records: 2}), l.LatestEpoch()+1)
	if err != nil || base != leo {
		t.Fatalf("Append() after recovery = %d, %v, want %d", base, err, leo)
	}
	if b, err := l.Read(leo, 1); err != nil || len(headers(t, b)) != 1 {
		t.Fatalf("Read(%d) after recovery = %d bytes, %v", leo, len(b), err)
	}
}

func TestRecover_tornTail(t *testing.T) {
	const n = 12 // batches, 3 records each: offsets 0..35, the last batch at 33
	tests := []struct {
		name    string
		crash   bool // copy the directory of the open log instead of closing it
		damage  func(t *testing.T, path string, lastPos int64)
		wantLEO int64
	}{
		{"clean", false, func(*testing.T, string, int64) {}, 36},
		{"cut mid batch", false, func(t *testing.T, p string, _ int64) {
			os.Truncate(p, fileSize(t, p)-10)
		}, 33},
		{"cut mid header", false, func(t *testing.T, p string, last int64) { os.Truncate(p, last+30) }, 33},
		{"cut in the length prefix", false, func(t *testing.T, p string, last int64) { os.Truncate(p, last+5) }, 33},
		{"garbage appended", false, func(t *testing.T, p string, _ int64) {
			editFile(t, p, func(b []byte) []byte { return append(b, bytes.Repeat([]byte{0x5a, 0x17, 0x99}, 700)...) })
		}, 36},
		{"flipped byte in the last batch's records", false, func(t *testing.T, p string, _ int64) {
			editFile(t, p, func(b []byte) []byte { b[len(b)-20] ^= 0x08; return b })
		}, 33},
		{"zero-filled tail", false, func(t *testing.T, p string, _ int64) {
			editFile(t, p, func(b []byte) []byte { return append(b, make([]byte, 8192)...) })
		}, 36},
		{"sparse tail", false, func(t *testing.T, p string, _ int64) { os.Truncate(p, fileSize(t, p)+1<<20) }, 36},
		{"last batch zeroed", false, func(t *testing.T, p string, last int64) {
			editFile(t, p, func(b []byte) []byte { clear(b[last:]); return b })
		}, 33},
		{"crash: cut mid batch", true, func(t *testing.T, p string, _ int64) {
			os.Truncate(p, fileSize(t, p)-1)
		}, 33},
		{"crash: flipped byte in an early batch", true, func(t *testing.T, p string, _ int64) {
			// Past the recovery point nothing is trusted: the scan finds it.
			editFile(t, p, func(b []byte) []byte { b[200] ^= 1; return b })
		}, 0},
		{"crash: garbage appended", true, func(t *testing.T, p string, _ int64) {
			editFile(t, p, func(b []byte) []byte { return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13) })
		}, 36},
		{"no recovery point: cut", false, func(t *testing.T, p string, _ int64) {
			os.Remove(filepath.Join(filepath.Dir(p), recoveryPointFile))
			os.Truncate(p, fileSize(t, p)-100)
		}, 33},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{IndexIntervalBytes: 300}
			l := openLog(t, o)
			a := newAppended()
			a.appendN(t, l, n, batchSpec{records: 3, valueSize: 40}, 0)
			lastPos := l.Size() - int64(len(a.batches[33]))
			dir := l.dir
			if tt.crash {
				dir = copyDir(t, l.dir)
			} else if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			seg := filepath.Join(dir, "00000000000000000000.log")
			tt.damage(t, seg, lastPos)
			logger, logs := newLogger(t)
			o.Dir, o.Logger = dir, logger
			l2 := openLog(t, o)
			expectLog(t, l2, a, tt.wantLEO)
			if tt.wantLEO < 36 || tt.name == "garbage appended" {
				if !logs.has("WARN", "truncated", "dir="+dir) && !logs.has("ERROR", "truncated", "dir="+dir) {
					t.Errorf("no Warn or Error log about the truncation")
				}
			}
			if tt.name == "clean" && (logs.has("WARN") || logs.has("ERROR")) {
				t.Errorf("clean reopen logged a warning")
			}
		})
	}
}

func TestRecover_damagedMiddleSegment(t *testing.T) {
	// 12 batches of 2 records per segment of 1 KiB.
	o := Options{SegmentBytes: 1024, IndexIntervalBytes: 200}
	setup := func(t *testing.T) (*Log, *appended, []string) {
		l := openLog(t, o)
		a := newAppended()
		a.appendN(t, l, 40, batchSpec{records: 2, valueSize: 20}, 0)
		segs := segmentFiles(t, l.dir)
		if len(segs) < 4 {
			t.Fatalf("%d segments, want at least 4", len(segs))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return l, a, segs
	}
	baseOf := func(p string) int64 {
		b, _ := parseSegmentName(filepath.Base(p))
		return b
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, segs []string) (wantLEO int64)
		wantLog string
	}{
		{"second segment cut short", func(t *testing.T, segs []string) int64 {
			os.Truncate(segs[1], fileSize(t, segs[1])-5)
			// The last batch of segment 1 goes, and everything after it.
			return baseOf(segs[2]) - 2
		}, "damaged"},
		{"last batch of the second segment flipped", func(t *testing.T, segs []string) int64 {
			editFile(t, segs[1], func(b []byte) []byte { b[len(b)-4] ^= 0x80; return b })
			return baseOf(segs[2]) - 2
		}, "damaged"},
		{"second segment missing", func(t *testing.T, segs []string) int64 {
			os.Remove(segs[1])
			return baseOf(segs[1])
		}, "starts at offset"},
		{"second segment empty", func(t *testing.T, segs []string) int64 {
			os.Truncate(segs[1], 0)
			return baseOf(segs[1])
		}, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, a, segs := setup(t)
			wantLEO := tt.damage(t, segs)
			logger, logs := newLogger(t)
			l2 := openLog(t, Options{Dir: l.dir, SegmentBytes: o.SegmentBytes, IndexIntervalBytes: o.IndexIntervalBytes, Logger: logger})
			expectLog(t, l2, a, wantLEO)
			if !logs.has("ERROR", "dir="+l.dir, tt.wantLog) {
				t.Errorf("no Error log naming the directory and %q", tt.wantLog)
			}
			for _, p := range segs {
				if baseOf(p) > wantLEO {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("segment %s after the damage was kept", filepath.Base(p))
					}
				}
			}
		})
	}
}

func TestRecover_indexes(t *testing.T) {
	o := Options{SegmentBytes: 16 << 10, IndexIntervalBytes: 256}
	tests := []struct {
		name   string
		damage func(t *testing.T, stem string)
	}{
		{"offset index missing", func(t *testing.T, stem string) { os.Remove(stem + indexSuffix) }},
		{"time index missing", func(t *testing.T, stem string) { os.Remove(stem + timeIndexSuffix) }},
		{"both missing", func(t *testing.T, stem string) {
			os.Remove(stem + indexSuffix)
			os.Remove(stem + timeIndexSuffix)
		}},
		{"offset index cut short", func(t *testing.T, stem string) {
			os.Truncate(stem+indexSuffix, fileSize(t, stem+indexSuffix)/2)
		}},
		{"offset index cut mid entry", func(t *testing.T, stem string) {
			os.Truncate(stem+indexSuffix, fileSize(t, stem+indexSuffix)-3)
		}},
		{"offset index zeroed", func(t *testing.T, stem string) {
			os.Truncate(stem+indexSuffix, 0)
			os.Truncate(stem+indexSuffix, 4096)
		}},
		{"offset index garbage", func(t *testing.T, stem string) {
			editFile(t, stem+indexSuffix, func(b []byte) []byte {
				for i := range b {
					b[i] = byte(i*7 + 3)
				}
				return b
			})
		}},
		{"last offset index entry points at the wrong batch", func(t *testing.T, stem string) {
			editFile(t, stem+indexSuffix, func(b []byte) []byte {
				b[len(b)-1] += 8 // position, still increasing, now mid-batch
				return b
			})
		}},
		{"time index garbage", func(t *testing.T, stem string) {
			editFile(t, stem+timeIndexSuffix, func(b []byte) []byte { return append(b, 1, 2, 3) })
		}},
		{"time index out of order", func(t *testing.T, stem string) {
			editFile(t, stem+timeIndexSuffix, func(b []byte) []byte { copy(b[12:], b[:12]); return b })
		}},
	}
	for _, tt := range tests {
		for _, which := range []string{"rolled segment", "active segment"} {
			t.Run(tt.name+"/"+which, func(t *testing.T) {
				l := openLog(t, o)
				a := newAppended()
				a.appendN(t, l, 120, batchSpec{records: 2, valueSize: 100, ts: 1000}, 0)
				segs := segmentFiles(t, l.dir)
				if len(segs) < 2 {
					t.Fatalf("%d segments, want 2 or more", len(segs))
				}
				p := segs[0]
				if which == "active segment" {
					p = segs[len(segs)-1]
				}
				stem := p[:len(p)-len(logSuffix)]
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				origIdx, _ := os.ReadFile(stem + indexSuffix)
				origTidx, _ := os.ReadFile(stem + timeIndexSuffix)
				if len(origIdx) == 0 || len(origTidx) == 0 {
					t.Fatalf("index %d bytes, time index %d bytes: want entries", len(origIdx), len(origTidx))
				}
				tt.damage(t, stem)
				l2 := openLog(t, Options{Dir: l.dir, SegmentBytes: o.SegmentBytes, IndexIntervalBytes: o.IndexIntervalBytes})
				// Rebuilt indexes are the ones first written.
				if got, _ := os.ReadFile(stem + indexSuffix); !bytes.Equal(got, origIdx) {
					t.Errorf("rebuilt offset index: %d bytes, differs from the original %d", len(got), len(origIdx))
				}
				if got, _ := os.ReadFile(stem + timeIndexSuffix); !bytes.Equal(got, origTidx) {
					t.Errorf("rebuilt time index: %d bytes, differs from the original %d", len(got), len(origTidx))
				}
				for i, base := range a.order {
					b, err := l2.Read(base+1, 0)
					if err != nil || !bytes.Equal(b, a.batches[base]) {
						t.Fatalf("Read(%d) after rebuild: %d bytes, %v", base+1, len(b), err)
					}
					got, found, err := l2.OffsetForTimestamp(1000 + 1)
					if i == 0 && (err != nil || !found || got != 0) {
						t.Fatalf("OffsetForTimestamp(1001) = %d, %v, %v", got, found, err)
					}
				}
				expectLog(t, l2, a, 240)
			})
		}
	}
}

func TestRecover_directoryStates(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string][]byte
		wantLEO   int64
		wantStart int64
		wantGone  []string
	}{
		{"empty directory", nil, 0, 0, nil},
		{"zero-byte first segment", map[string][]byte{"00000000000000000000.log": nil}, 0, 0, nil},
		{"zero-byte segment at 100", map[string][]byte{"00000000000000000100.log": nil}, 100, 100, nil},
		{"zeros only", map[string][]byte{"00000000000000000000.log": make([]byte, 4096)}, 0, 0, nil},
		{"leftovers", map[string][]byte{
			"leader-epoch-checkpoint.tmp":    []byte("junk"),
			"00000000000000000042.index":     make([]byte, 16),
			"00000000000000000042.timeindex": make([]byte, 24),
		}, 0, 0, []string{"leader-epoch-checkpoint.tmp", "00000000000000000042.index", "00000000000000000042.timeindex"}},
		{"log start beyond an empty log", map[string][]byte{"log-start-offset": []byte("0\n500\n")}, 500, 500, nil},
		{"damaged checkpoints", map[string][]byte{
			"log-start-offset":        []byte("zz"),
			"recovery-point":          []byte("0\nnope\n"),
			"leader-epoch-checkpoint": []byte("0\n2\n1 0\n"),
		}, 0, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "p")
			os.MkdirAll(dir, 0o755)
			for name, b := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			l := openLog(t, Options{Dir: dir})
			if got := l.LogEndOffset(); got != tt.wantLEO {
				t.Errorf("LogEndOffset() = %d, want %d", got, tt.wantLEO)
			}
			if got := l.LogStartOffset(); got != tt.wantStart {
				t.Errorf("LogStartOffset() = %d, want %d", got, tt.wantStart)
			}
			for _, name := range tt.wantGone {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					t.Errorf("%s was not removed", name)
				}
			}
			expectLog(t, l, newAppended(), tt.wantLEO)
		})
	}
}

func TestRecover_epochCheckpointRebuilt(t *testing.T) {
	o := Options{SegmentBytes: 2048}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 10, batchSpec{records: 2, valueSize: 100}, 1)
	a.appendN(t, l, 10, batchSpec{records: 2, valueSize: 100}, 3)
	l.Close()
	os.WriteFile(filepath.Join(l.dir, epochFile), []byte("0\n9\n"), 0o644)
	logger, logs := newLogger(t)
	l = openLog(t, Options{Dir: l.dir, SegmentBytes: o.SegmentBytes, Logger: logger})
	if e, off := l.EndOffsetForEpoch(1); e != 1 || off != 20 {
		t.Errorf("EndOffsetForEpoch(1) = %d, %d, want 1, 20", e, off)
	}
	if e, off := l.EndOffsetForEpoch(3); e != 3 || off != 40 {
		t.Errorf("EndOffsetForEpoch(3) = %d, %d, want 3, 40", e, off)
	}
	if !logs.has("WARN", "leader epoch") {
		t.Errorf("no Warn about the rebuilt leader epoch checkpoint")
	}
}

// TestRecover_epochsFollowTornTail pins that an epoch whose batches were all
// lost to a torn tail is forgotten.
func TestRecover_epochsFollowTornTail(t *testing.T) {
	l := openLog(t, Options{})
	a := newAppended()
	a.appendN(t, l, 3, batchSpec{}, 1)
	a.appendN(t, l, 1, batchSpec{valueSize: 500}, 2)
	l.Close()
	seg := filepath.Join(l.dir, "00000000000000000000.log")
	os.Truncate(seg, fileSize(t, seg)-100)
	l = openLog(t, Options{Dir: l.dir})
	if got := l.LatestEpoch(); got != 1 {
		t.Errorf("LatestEpoch() = %d, want 1", got)
	}
	if e, off := l.EndOffsetForEpoch(2); e != 1 || off != 3 {
		t.Errorf("EndOffsetForEpoch(2) = %d, %d, want 1, 3", e, off)
	}
}

// TestRecover_truncateLowersRecoveryPoint pins that data appended after a
// TruncateTo, where the recovery point used to be, is scanned after a
// crash rather than trusted.
func TestRecover_truncateLowersRecoveryPoint(t *testing.T) {
	o := Options{IndexIntervalBytes: 256, Fsync: FsyncNever, Now: newClock().Now}
	l := openLog(t, o)
	a := newAppended()
	a.appendN(t, l, 40, batchSpec{records: 2, valueSize: 100}, 0) // 0..79
	l = reopen(t, l, o)                                           // recovery point: end of the segment
	if err := l.TruncateTo(20); err != nil {
		t.Fatal(err)
	}
	b := newAppended()
	for _, base := range a.order {
		if base < 20 {
			b.batches[base], b.order = a.batches[base], append(b.order, base)
		}
	}
	b.appendN(t, l, 30, batchSpec{records: 2, valueSize: 100}, 1) // 20..79 again
	if n := len(segmentBases(l)); n != 1 {
		t.Fatalf("%d segments, want 1", n)
	}
	dir := copyDir(t, l.dir)
	seg := filepath.Join(dir, "00000000000000000000.log")
	// Damage the batch at offset 30, well inside what the old recovery
	// point covered.
	var pos int64
	f, _ := os.Open(seg)
	walkHeaders(f, 0, fileSize(t, seg), func(h BatchHeader, p int64) bool {
		pos = p
		return h.BaseOffset < 30
	})
	f.Close()
	editFile(t, seg, func(bs []byte) []byte { bs[pos+100] ^= 0x10; return bs })
	l2 := openLog(t, Options{Dir: dir, IndexIntervalBytes: 256, Now: o.Now})
	expectLog(t, l2, b, 30)
}

// TestRecover_fsyncNeverRollsAreSyncedInTheBackground pins that under
// FsyncNever rolled segments still reach the disk and move the recovery
// point, so a crash scans only the active segment.
func TestRecover_fsyncNeverRollsAreSyncedInTheBackground(t *testing.T) {
	for _, mode := range []FsyncMode{FsyncNever, FsyncInterval} {
		t.Run(mode.String(), func(t *testing.T) {
			o := Options{SegmentBytes: 2048, Fsync: mode, FsyncInterval: 10 * time.Millisecond}
			l := openLog(t, o)
			a := newAppended()
			a.appendN(t, l, 60, batchSpec{records: 2, valueSize: 100}, 0)
			segs := segmentBases(l)
			want := segs[len(segs)-1]
			deadline := time.Now().Add(5 * time.Second)
			for {
				rp, ok, err := readRecoveryPoint(l.dir)
				if err != nil {
					t.Fatal(err)
				}
				if ok && rp.base == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("recovery point %+v, want base %d", rp, want)
				}
				time.Sleep(2 * time.Millisecond)
			}
			dir := copyDir(t, l.dir)
			logger, logs := newLogger(t)
			l2 := openLog(t, Options{Dir: dir, SegmentBytes: o.SegmentBytes, Logger: logger})
			expectLog(t, l2, a, 120)
			if logs.has("WARN") || logs.has("ERROR") {
				t.Errorf("recovery of an intact crashed log warned")
			}
		})
	}
}
