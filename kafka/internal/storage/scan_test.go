package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync"
	"testing"
)

// withProducer sets a batch's producer id, epoch and base sequence and
// recomputes its CRC, as an idempotent producer would have written it.
func withProducer(b []byte, id int64, epoch int16, seq int32) []byte {
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(id))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// scanAll returns every header ScanHeaders visits from from.
func scanAll(t *testing.T, l *Log, from int64) []BatchHeader {
	t.Helper()
	var hs []BatchHeader
	if err := l.ScanHeaders(from, func(h BatchHeader) bool { hs = append(hs, h); return true }); err != nil {
		t.Fatalf("ScanHeaders(%d) = %v", from, err)
	}
	return hs
}

func TestLog_ScanHeaders(t *testing.T) {
	clock := newClock()
	l := openLog(t, Options{SegmentBytes: 4096, Now: clock.Now, RetentionAge: -1})
	// 3000 batches of 3 records over many segments, every batch from one
	// of three producers with its own sequence, so the scan is checked
	// field by field and across many steps.
	const n = 3000
	seqs := map[int64]int32{}
	for i := range n {
		id := int64(i%3) + 100
		b := withProducer(makeBatch(t, batchSpec{records: 3, tag: i}), id, int16(i%3), seqs[id])
		seqs[id] += 3
		if _, _, err := l.Append(b, 0); err != nil {
			t.Fatal(err)
		}
	}
	if segs := len(segmentFiles(t, l.dir)); segs < 10 {
		t.Fatalf("%d segments; the test wants the scan to cross many", segs)
	}

	check := func(t *testing.T, hs []BatchHeader, first int) {
		t.Helper()
		if len(hs) != n-first {
			t.Fatalf("ScanHeaders visited %d batches, want %d", len(hs), n-first)
		}
		for k, h := range hs {
			i := first + k
			id := int64(i%3) + 100
			if h.BaseOffset != int64(3*i) || h.LastOffsetDelta != 2 || h.ProducerID != id ||
				h.ProducerEpoch != int16(i%3) || h.BaseSequence != int32(i/3*3) {
				t.Fatalf("batch %d = %+v, want base %d, producer %d epoch %d seq %d", i, h, 3*i, id, i%3, i/3*3)
			}
		}
	}
	tests := []struct {
		name  string
		from  int64
		first int // index of the first batch visited
	}{
		{"from the start", 0, 0},
		{"from a batch boundary", 300, 100},
		{"from inside a batch", 301, 100},
		{"from the last offset", 3*n - 1, n - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, scanAll(t, l, tt.from), tt.first) })
	}
	t.Run("at the end", func(t *testing.T) {
		if hs := scanAll(t, l, 3*n); len(hs) != 0 {
			t.Errorf("ScanHeaders(log end) visited %d batches, want none", len(hs))
		}
	})
	t.Run("fn stops it", func(t *testing.T) {
		calls := 0
		err := l.ScanHeaders(0, func(BatchHeader) bool { calls++; return calls < 1500 })
		if err != nil || calls != 1500 {
			t.Errorf("ScanHeaders stopped after %d calls (%v), want 1500", calls, err)
		}
	})
	t.Run("below the log start", func(t *testing.T) {
		if err := l.DeleteRecordsBefore(900); err != nil {
			t.Fatal(err)
		}
		hs := scanAll(t, l, 0)
		if len(hs) == 0 || hs[0].LastOffset() < 900 || hs[0].BaseOffset > 900 {
			t.Fatalf("ScanHeaders(0) after DeleteRecordsBefore(900) starts at %+v, want the batch holding 900", hs[0])
		}
		check(t, hs, 300)
	})
	t.Run("after reopen", func(t *testing.T) {
		l = reopen(t, l, Options{SegmentBytes: 4096, Now: clock.Now, RetentionAge: -1})
		check(t, scanAll(t, l, 900), 300)
	})
}

func TestLog_ScanHeaders_appendsDuringTheScanAreNotVisited(t *testing.T) {
	l := openLog(t, Options{SegmentBytes: 2048})
	for i := range 2000 {
		if _, _, err := l.Append(makeBatch(t, batchSpec{tag: i}), 0); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := l.Append(makeBatch(t, batchSpec{tag: i}), 0); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var last int64 = -1
	err := l.ScanHeaders(0, func(h BatchHeader) bool {
		if h.BaseOffset != last+1 {
			t.Errorf("batch at %d follows %d", h.BaseOffset, last)
		}
		last = h.LastOffset()
		return true
	})
	close(stop)
	wg.Wait()
	if err != nil || last < 1999 {
		t.Fatalf("ScanHeaders = last %d, %v; want at least the 2000 batches there at the start", last, err)
	}
}

func TestLog_ScanHeaders_closedLog(t *testing.T) {
	l := openLog(t, Options{})
	if _, _, err := l.Append(makeBatch(t, batchSpec{}), 0); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.ScanHeaders(0, func(BatchHeader) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Errorf("ScanHeaders on a closed log = %v, want ErrClosed", err)
	}
}
