package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchSpec describes a test batch; zero fields take sensible values.
type batchSpec struct {
	records   int   // default 1
	valueSize int   // default 16
	ts        int64 // base timestamp; record i is at ts+i; default 1_700_000_000_000
	tag       int   // mixed into values so batches differ
}

// makeBatch builds a valid v2 batch with kmsg, CRC and all, with the
// broker-owned fields left as a producer sends them (offset 0, epoch -1).
func makeBatch(t testing.TB, sp batchSpec) []byte {
	t.Helper()
	if sp.records == 0 {
		sp.records = 1
	}
	if sp.valueSize == 0 {
		sp.valueSize = 16
	}
	if sp.ts == 0 {
		sp.ts = 1_700_000_000_000
	}
	var recs []byte
	for i := range sp.records {
		val := bytes.Repeat([]byte{byte('a' + (sp.tag+i)%26)}, sp.valueSize)
		copy(val, fmt.Sprintf("%d/%d", sp.tag, i))
		r := kmsg.Record{TimestampDelta64: int64(i), OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: val}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // the zero Length took one varint byte
		recs = r.AppendTo(recs)
	}
	b := kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(sp.records - 1),
		FirstTimestamp:       sp.ts,
		MaxTimestamp:         sp.ts + int64(sp.records-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(sp.records),
		Records:              recs,
	}
	b.Length = int32(batchHeaderSize - batchPrefixSize + len(recs))
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := CheckBatch(raw); err != nil {
		t.Fatalf("makeBatch built an invalid batch: %v", err)
	}
	return raw
}

// testLogger sends the log's records to t.Log and remembers them.
type testLogger struct {
	mu    sync.Mutex
	lines []string
}

// newLogger returns a logger that records lines and echoes them to t.Log.
func newLogger(t testing.TB) (*slog.Logger, *testLogger) {
	store := &testLogger{}
	w := writerFunc(func(p []byte) (int, error) {
		store.mu.Lock()
		store.lines = append(store.lines, string(p))
		store.mu.Unlock()
		t.Log(strings.TrimSpace(string(p)))
		return len(p), nil
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), store
}

// has reports whether a logged line at level contains every fragment.
func (tl *testLogger) has(level string, fragments ...string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, line := range tl.lines {
		if !strings.Contains(line, "level="+level) {
			continue
		}
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(line, f)
		}
		if all {
			return true
		}
	}
	return false
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// openLog opens a log with test-friendly defaults (FsyncNever unless set)
// and closes it at the end of the test.
func openLog(t testing.TB, o Options) *Log {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger, _ = newLogger(t)
	}
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open(%s) = %v", o.Dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// reopen closes l and opens its directory again with o.
func reopen(t testing.TB, l *Log, o Options) *Log {
	t.Helper()
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Close() = %v", err)
	}
	o.Dir = l.dir
	return openLog(t, o)
}

// appended remembers what a test appended, offset by offset.
type appended struct {
	batches map[int64][]byte // base offset -> batch as stored
	order   []int64
}

func newAppended() *appended { return &appended{batches: map[int64][]byte{}} }

// appendN appends n batches one at a time and records them as stored.
func (a *appended) appendN(t testing.TB, l *Log, n int, sp batchSpec, epoch int32) {
	t.Helper()
	for i := range n {
		sp := sp
		sp.tag = len(a.order) + i
		b := makeBatch(t, sp)
		base, last, err := l.Append(b, epoch)
		if err != nil {
			t.Fatalf("Append(batch %d) = %v", len(a.order), err)
		}
		if want := base + int64(max(sp.records, 1)) - 1; last != want {
			t.Fatalf("Append() last = %d, want %d", last, want)
		}
		a.batches[base] = b
		a.order = append(a.order, base)
	}
}

// readAll reads the log from offset to its end with the given maxBytes.
func readAll(t testing.TB, l *Log, from int64, maxBytes int) []byte {
	t.Helper()
	var out []byte
	for off := from; off < l.LogEndOffset(); {
		b, err := l.Read(off, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d, %d) = %v", off, maxBytes, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d, %d) returned nothing below the log end offset %d", off, maxBytes, l.LogEndOffset())
		}
		hs := headers(t, b)
		off = hs[len(hs)-1].LastOffset() + 1
		out = append(out, b...)
	}
	return out
}

// headers splits whole batches and checks each with CheckBatch.
func headers(t testing.TB, b []byte) []BatchHeader {
	t.Helper()
	var hs []BatchHeader
	for len(b) > 0 {
		if len(b) < batchHeaderSize {
			t.Fatalf("partial batch: %d bytes", len(b))
		}
		n := int(binary.BigEndian.Uint32(b[offBatchLength:])) + batchPrefixSize
		h, err := CheckBatch(b[:n])
		if err != nil {
			t.Fatalf("CheckBatch(batch at offset %d) = %v", h.BaseOffset, err)
		}
		hs = append(hs, h)
		b = b[n:]
	}
	return hs
}

// segmentFiles lists the .log files of dir, sorted.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+logSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
