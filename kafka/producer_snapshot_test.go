package kafka

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// syncBuffer is a log destination safe for the snapshot goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// snapPartition opens a partition on dir with the snapshot hooks, as
// partitions.openLog does, and small segments so that a few dozen batches
// roll several times.
func snapPartition(t *testing.T, dir string, logs *syncBuffer, mutate ...func(*storage.Options)) *partition {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := &partition{topic: "snap", index: 0, logger: logger, wake: make(chan struct{})}
	o := storage.Options{Dir: dir, SegmentBytes: 1500, Fsync: storage.FsyncNever, RetentionAge: -1, Logger: logger}
	for _, m := range mutate {
		m(&o)
	}
	p.snapshotHooks(&o)
	l, err := storage.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	p.log = l
	t.Cleanup(func() { l.Close() })
	return p
}

// batchAt returns the header of the batch that holds offset.
func batchAt(t *testing.T, l *storage.Log, offset int64) storage.BatchHeader {
	t.Helper()
	var h storage.BatchHeader
	if err := l.ScanHeaders(offset, func(x storage.BatchHeader) bool { h = x; return false }); err != nil || h.LastOffset() < offset {
		t.Fatalf("batch at %d = %+v, %v", offset, h, err)
	}
	return h
}

// waitRollSnapshots waits for the partition's roll snapshot writer.
func waitRollSnapshots(p *partition) {
	p.producers.snapMu.Lock()
	done := p.producers.snapDone
	p.producers.snapMu.Unlock()
	if done != nil {
		<-done
	}
}

// workload appends n batches at leader epoch leaderEpoch through
// appendIdempotent, as Produce does: producers 1-5 taking turns at
// random, each now and then bumping its epoch, with plain batches (no
// producer id) between them. seqs carries each producer's epoch and next
// sequence from call to call.
func workload(t *testing.T, p *partition, rng *rand.Rand, seqs map[int64][2]int32, n int, leaderEpoch int32) {
	t.Helper()
	for i := range n {
		if rng.IntN(6) == 0 {
			if _, _, err := p.log.Append(testBatch(t, 1+rng.IntN(3)), leaderEpoch); err != nil {
				t.Fatal(err)
			}
			continue
		}
		id := int64(1 + rng.IntN(5))
		es := seqs[id]
		if rng.IntN(25) == 0 {
			es = [2]int32{es[0] + 1, 0}
		}
		records := 1 + rng.IntN(4)
		b := producerBatch(t, id, int16(es[0]), es[1], records, fmt.Sprintf("w%d", i))
		h, err := storage.ParseBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, dup, err := p.appendIdempotent(b, h, leaderEpoch); err != nil || dup {
			t.Fatalf("appendIdempotent(producer %d epoch %d seq %d) = dup %v, %v", id, es[0], es[1], dup, err)
		}
		seqs[id] = [2]int32{es[0], es[1] + int32(records)}
	}
}

// fullScan is the producer state a read of every retained batch header
// gives: the rebuild with no snapshot at all.
func fullScan(t *testing.T, l *storage.Log) map[int64]*producerEntry {
	t.Helper()
	ps := &producerState{byID: map[int64]*producerEntry{}}
	err := l.ScanHeaders(0, func(h storage.BatchHeader) bool {
		if h.ProducerID >= 0 && h.Attributes&controlBatch == 0 {
			ps.observe(h, h.BaseOffset, time.Now())
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return ps.byID
}

// describeState renders a state without last-seen times, producers in id
// order, each with its epoch and remembered batches oldest first.
func describeState(byID map[int64]*producerEntry) string {
	ids := make([]int64, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var sb strings.Builder
	for _, id := range ids {
		e := byID[id]
		fmt.Fprintf(&sb, "producer %d epoch %d:", id, e.epoch)
		for i := range e.n {
			b := e.batches[(e.head+i)%producerBatches]
			fmt.Fprintf(&sb, " seq %d-%d at %d-%d;", b.firstSeq, b.lastSeq, b.baseOffset, b.lastOffset)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// scenario is what a test case's steps share.
type scenario struct {
	seqs  map[int64][2]int32 // each producer's epoch and next sequence
	stale map[string][]byte  // snapshot files to put back before the reopen
}

func snapshotsIn(t *testing.T, dir string) []int64 {
	t.Helper()
	offs, err := listSnapshots(dir)
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

// TestProducerSnapshot_rebuildEqualsFullScan restarts a partition after
// idempotent produce and checks that the rebuild, which starts from a
// snapshot, gives the state a read of the whole retained log gives, while
// reading fewer batches; also after a follower's truncation (a snapshot
// left above the truncation point), after retention and DeleteRecords
// (producers whose batches are all deleted are forgotten), with damaged
// snapshots, and after a crash (no snapshot at Close).
func TestProducerSnapshot_rebuildEqualsFullScan(t *testing.T) {
	tests := []struct {
		name string
		// change runs on the open partition after the first workload; it
		// returns the leader epoch of the second.
		change func(t *testing.T, p *partition, c *scenario) int32
		// crash reopens without the close snapshot.
		crash bool
		// before runs on the closed directory before the reopen.
		before func(t *testing.T, dir string, c *scenario)
		// warn is a message the reopen must log.
		warn string
	}{
		{name: "clean close"},
		{name: "crash after rolls", crash: true},
		{
			name: "follower truncation below snapshots",
			change: func(t *testing.T, p *partition, c *scenario) int32 {
				waitRollSnapshots(p)
				offs := snapshotsIn(t, p.log.Dir())
				if len(offs) < 2 {
					t.Fatalf("snapshots before truncation = %v, want at least 2", offs)
				}
				// Truncate to a batch boundary below the two newest
				// snapshots, as a follower whose tail diverged does; the
				// second workload (a new leader epoch) then grows the log
				// past them with other batches.
				to := batchAt(t, p.log, offs[len(offs)-2]-5)
				if err := p.log.TruncateTo(to.BaseOffset); err != nil {
					t.Fatal(err)
				}
				// Keep the snapshots now above the log's end, which the
				// reopen finds below it (a prune that did not happen, as
				// after a crash), and send every producer to a new epoch,
				// as after a producer's restart.
				c.stale = map[string][]byte{}
				for _, off := range offs[len(offs)-2:] {
					b, err := os.ReadFile(filepath.Join(p.log.Dir(), snapshotName(off)))
					if err != nil {
						t.Fatal(err)
					}
					c.stale[snapshotName(off)] = b
				}
				p.forgetProducers()
				for id, es := range c.seqs {
					c.seqs[id] = [2]int32{es[0] + 1, 0}
				}
				return 2
			},
			before: func(t *testing.T, dir string, c *scenario) {
				for name, b := range c.stale {
					if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			crash: true,
		},
		{
			name: "retention deleted old segments",
			change: func(t *testing.T, p *partition, _ *scenario) int32 {
				waitRollSnapshots(p)
				// Producer 9 writes only at the start of the log: its
				// batches go with the segments retention deletes.
				return 1
			},
		},
		{
			name: "delete records inside a segment",
			change: func(t *testing.T, p *partition, _ *scenario) int32 {
				h := batchAt(t, p.log, p.log.LogEndOffset()/2)
				if err := p.log.DeleteRecordsBefore(h.BaseOffset + 1); err != nil { // inside a batch
					t.Fatal(err)
				}
				return 1
			},
		},
		{
			name: "newest snapshot damaged",
			before: func(t *testing.T, dir string, _ *scenario) {
				offs := snapshotsIn(t, dir)
				path := filepath.Join(dir, snapshotName(offs[len(offs)-1]))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)/2] ^= 0x40
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			warn: "ignoring a damaged producer state snapshot",
		},
		{
			name: "newest snapshot empty, next claims a huge count",
			before: func(t *testing.T, dir string, _ *scenario) {
				offs := snapshotsIn(t, dir)
				if err := os.WriteFile(filepath.Join(dir, snapshotName(offs[len(offs)-1])), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, snapshotName(offs[len(offs)-2]))
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				binary.BigEndian.PutUint32(b[34:], 1<<31)
				binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[10:], castagnoli)) // a valid CRC over the lie
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			warn: "cannot fit in",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs syncBuffer
			retention := strings.HasPrefix(tt.name, "retention")
			p := snapPartition(t, dir, &logs)
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.name))))
			c := &scenario{seqs: map[int64][2]int32{}}
			seqs := c.seqs
			for i := range 5 {
				b := producerBatch(t, 9, 0, int32(i), 1, "early")
				h, _ := storage.ParseBatchHeader(b)
				if _, _, _, err := p.appendIdempotent(b, h, 1); err != nil {
					t.Fatal(err)
				}
			}
			workload(t, p, rng, seqs, 150, 1)
			leaderEpoch := int32(1)
			if tt.change != nil {
				leaderEpoch = tt.change(t, p, c)
			}
			workload(t, p, rng, seqs, 150, leaderEpoch)
			waitRollSnapshots(p)
			if retention {
				// Keep the newest 4 KiB: some of producer 1-5's batches,
				// none of producer 9's.
				if err := p.log.Close(); err != nil {
					t.Fatal(err)
				}
				p = snapPartition(t, dir, &logs, func(o *storage.Options) { o.RetentionBytes = 4000 })
				if n, err := p.log.EnforceRetention(); err != nil || n == 0 {
					t.Fatalf("EnforceRetention() = %d, %v; want segments deleted", n, err)
				}
			}
			if tt.crash {
				// No close snapshot: what a killed process leaves.
				p.producers.mu.Lock()
				p.producers.loaded = false
				p.producers.mu.Unlock()
			}
			if err := p.log.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(t, dir, c)
			}

			p = snapPartition(t, dir, &logs)
			defer p.log.Close()
			want := fullScan(t, p.log)
			fullBatches := 0
			p.log.ScanHeaders(0, func(storage.BatchHeader) bool { fullBatches++; return true })
			r, err := rebuildProducers(p.log, p.logger, p.log.LogEndOffset(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describeState(r.byID), describeState(want); got != want {
				t.Errorf("state rebuilt from snapshot %d:\n%s\nwant (a full scan):\n%s\nlog:\n%s", r.snapshot, got, want, logs.String())
			}
			t.Logf("rebuilt from snapshot %d of %v: %d of %d batches read, %d producers", r.snapshot, snapshotsIn(t, dir), r.batches, fullBatches, len(r.byID))
			if r.snapshot < 0 || r.batches >= fullBatches {
				t.Errorf("rebuild read %d of %d batches from snapshot %d; want a snapshot used and fewer batches read (snapshots %v)",
					r.batches, fullBatches, r.snapshot, snapshotsIn(t, dir))
			}
			if !tt.crash && tt.before == nil && r.batches != 0 {
				t.Errorf("rebuild after a clean close read %d batches, want 0 (the close snapshot)", r.batches)
			}
			if tt.warn != "" && !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("log lacks %q:\n%s", tt.warn, logs.String())
			}
			if _, ok := want[9]; ok == (retention || strings.HasPrefix(tt.name, "delete")) {
				t.Errorf("producer 9 (batches at the log's start only) in the state = %v, want %v", ok, !ok)
			}
		})
	}
}
