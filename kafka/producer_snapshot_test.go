package kafka

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

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
	p.dropStaleSnapshots()
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
			// The roll snapshots are written by a goroutine from the state
			// in memory, at the log end it finds: without this wait a slow
			// one may write them all at the final end, leaving no older
			// snapshot for the cases below.
			waitRollSnapshots(p)
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

// TestProducerSnapshot_truncatedLogPassesOverStaleSnapshot: a snapshot
// whose offset a truncation undercut, and which the log then outgrew with
// another leader's batches, does not match the batch the log holds below
// its offset; the rebuild passes over it to an older one.
func TestProducerSnapshot_truncatedLogPassesOverStaleSnapshot(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	p := snapPartition(t, dir, &logs)
	seqs := map[int64][2]int32{}
	rng := rand.New(rand.NewPCG(7, 7))
	workload(t, p, rng, seqs, 40, 1)
	waitRollSnapshots(p) // a snapshot well below the end, whatever the goroutine's timing
	workload(t, p, rng, seqs, 40, 1)
	waitRollSnapshots(p)
	if err := p.log.Close(); err != nil { // writes the snapshot at the log end
		t.Fatal(err)
	}
	offs := snapshotsIn(t, dir)
	stale := offs[len(offs)-1]

	// Without the hooks, as a process that crashed before it pruned: the
	// follower truncates and copies its new leader's batches past stale.
	l, err := storage.Open(storage.Options{Dir: dir, SegmentBytes: 1500, RetentionAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	to := batchAt(t, l, stale-3)
	if err := l.TruncateTo(to.BaseOffset); err != nil {
		t.Fatal(err)
	}
	for seq := int32(0); l.LogEndOffset() <= stale+5; seq += 2 {
		if _, _, err := l.Append(producerBatch(t, 1, 9, seq, 2, "new leader"), 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotsIn(t, dir); got[len(got)-1] != stale {
		t.Fatalf("snapshots %v, want %d the newest", got, stale)
	}

	p = snapPartition(t, dir, &logs)
	r, err := rebuildProducers(p.log, p.logger, p.log.LogEndOffset(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.snapshot == stale || r.snapshot < 0 || r.snapshot > to.BaseOffset {
		t.Errorf("rebuilt from snapshot %d of %v; want one at or below the truncation point %d", r.snapshot, offs, to.BaseOffset)
	}
	if !strings.Contains(logs.String(), "the log no longer matches") {
		t.Errorf("no log of the stale snapshot passed over:\n%s", logs.String())
	}
	if got, want := describeState(r.byID), describeState(fullScan(t, p.log)); got != want {
		t.Errorf("state:\n%s\nwant (a full scan):\n%s", got, want)
	}
	if e := r.byID[1]; e == nil || e.epoch != 9 {
		t.Errorf("producer 1 = %+v, want the new leader's epoch 9", e)
	}
}

// TestProducerSnapshot_lastSeenSurvivesRestart: a snapshot keeps each
// producer's last-seen time, so expiry goes on counting across a restart,
// and a producer idle for producerExpiry is not loaded at all.
func TestProducerSnapshot_lastSeenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	p := snapPartition(t, dir, &logs)
	workload(t, p, rand.New(rand.NewPCG(3, 3)), map[int64][2]int32{}, 40, 1)
	now := time.Now()
	p.producers.mu.Lock()
	if len(p.producers.byID) < 3 {
		t.Fatalf("%d producers, want at least 3", len(p.producers.byID))
	}
	p.producers.byID[1].lastSeen = now.Add(-25 * time.Hour) // expired
	p.producers.byID[2].lastSeen = now.Add(-23 * time.Hour) // expires within the hour
	p.producers.mu.Unlock()
	if err := p.log.Close(); err != nil {
		t.Fatal(err)
	}

	p = snapPartition(t, dir, &logs)
	p.producers.mu.Lock()
	err := p.producers.load(p)
	p.producers.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	ps := &p.producers
	if _, ok := ps.byID[1]; ok {
		t.Errorf("producer 1, idle for 25 h, loaded; want it forgotten")
	}
	if e := ps.byID[2]; e == nil || e.lastSeen.UnixMilli() != now.Add(-23*time.Hour).UnixMilli() {
		t.Errorf("producer 2 = %+v, want last seen 23 h ago", e)
	}
	if n := ps.expire(now.Add(time.Hour - producerExpiry)); n != 1 || ps.byID[2] != nil {
		t.Errorf("expire an hour later forgot %d producers, producer 2 = %+v; want producer 2 forgotten", n, ps.byID[2])
	}
}

// TestProducerSnapshot_decodeRefusesDamage: every cut of a snapshot and
// every byte changed in it is refused as damaged, never a panic or a
// different state; declared counts are checked against the bytes there.
func TestProducerSnapshot_decodeRefusesDamage(t *testing.T) {
	s := &producerSnapshot{offset: 120, anchor: snapshotAnchor{base: 117, epoch: 3, crc: 0xdeadbeef}, byID: map[int64]*producerEntry{}}
	for id := range int64(4) {
		e := &producerEntry{epoch: int16(id), lastSeen: time.UnixMilli(1_700_000_000_000 + id)}
		for i := range int(id) + 3 {
			e.add(batchMeta{firstSeq: int32(i * 2), lastSeq: int32(i*2 + 1), baseOffset: int64(10*id) + int64(i), lastOffset: int64(10*id) + int64(i)})
		}
		s.byID[id+100] = e
	}
	b, err := encodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatalf("decode(encode(s)) = %v", err)
	}
	if got.offset != s.offset || got.anchor != s.anchor || describeState(got.byID) != describeState(s.byID) {
		t.Fatalf("decode(encode(s)) = %+v %s, want %+v %s", got, describeState(got.byID), s, describeState(s.byID))
	}
	for id, e := range s.byID {
		if !got.byID[id].lastSeen.Equal(e.lastSeen) {
			t.Errorf("producer %d last seen %v, want %v", id, got.byID[id].lastSeen, e.lastSeen)
		}
	}
	for n := range len(b) {
		if _, err := decodeSnapshot(b[:n]); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("decode(first %d of %d bytes) = %v, want errBadSnapshot", n, len(b), err)
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := decodeSnapshot(c); !errors.Is(err, errBadSnapshot) {
			t.Fatalf("decode with byte %d changed = %v, want errBadSnapshot", i, err)
		}
	}
	// Counts that lie under a valid CRC.
	lie := func(name string, at int, v uint32, width int) {
		c := bytes.Clone(b)
		if width == 1 {
			c[at] = byte(v)
		} else {
			binary.BigEndian.PutUint32(c[at:], v)
		}
		binary.BigEndian.PutUint32(c[6:], crc32.Checksum(c[10:], castagnoli))
		if _, err := decodeSnapshot(c); !errors.Is(err, errBadSnapshot) {
			t.Errorf("%s: decode = %v, want errBadSnapshot", name, err)
		}
	}
	lie("producer count 2^32-1", 34, math.MaxUint32, 4)
	lie("producer count one more", 34, uint32(len(s.byID)+1), 4)
	lie("producer count one less", 34, uint32(len(s.byID)-1), 4)
	lie("six batches", snapshotHeaderSize+18, producerBatches+1, 1)
	lie("no batch", snapshotHeaderSize+18, 0, 1)
}

// FuzzDecodeProducerSnapshot: decodeSnapshot never panics, and what it
// accepts encodes back to the same bytes.
func FuzzDecodeProducerSnapshot(f *testing.F) {
	s := &producerSnapshot{offset: 9, byID: map[int64]*producerEntry{1: {epoch: 2, n: 1, batches: [producerBatches]batchMeta{{0, 3, 5, 8}}}}}
	b, _ := encodeSnapshot(s)
	f.Add(b)
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again, err := encodeSnapshot(s)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("encode(decode(b)) = %x, %v; want b = %x", again, err, b)
		}
	})
}

// TestIdempotentProduce_restartStartsFromCloseSnapshot: a broker that
// took idempotent produce over many segment rolls leaves snapshots in the
// partition's directory; after a clean restart the rebuild reads no batch
// and still knows the producer's sequences.
func TestIdempotentProduce_restartStartsFromCloseSnapshot(t *testing.T) {
	var logs syncBuffer
	dataDir := t.TempDir()
	r := &restartable{t: t, mc: newMemCluster(), cfg: Config{Listen: "127.0.0.1:0", DataDir: dataDir,
		MaxRequestBytes: 1 << 20, Log: LogOptions{SegmentBytes: 600},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))}}
	ctx := ctxT(t)
	if _, err := r.mc.CreateTopic(ctx, TopicSpec{Name: "snap", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	r.start()
	defer func() { r.stop() }()
	const pid = 77
	var last []byte
	for i := range 40 {
		last = producerBatch(t, pid, 0, int32(2*i), 2, "b"+strconv.Itoa(i))
		if p := produceRaw(ctx, t, r.cl, "snap", 0, append([]byte(nil), last...)); p.ErrorCode != 0 {
			t.Fatalf("batch %d = %v", i, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	r.stop()
	dirs, err := filepath.Glob(filepath.Join(dataDir, "snap-0.*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("partition directory: %v %v", dirs, err)
	}
	if offs := snapshotsIn(t, dirs[0]); len(offs) == 0 || offs[len(offs)-1] != 80 {
		t.Fatalf("snapshots after close = %v, want the newest at the log end 80", offs)
	}

	r.start()
	if p := produceRaw(ctx, t, r.cl, "snap", 0, append([]byte(nil), last...)); p.ErrorCode != 0 || p.BaseOffset != 78 {
		t.Errorf("replayed last batch after restart = %v at %d, want NONE at its original offset 78", kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
	}
	if p := produceRaw(ctx, t, r.cl, "snap", 0, producerBatch(t, pid, 0, 81, 1, "gap")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("sequence gap after restart = %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(p.ErrorCode))
	}
	var rebuilt struct {
		Snapshot int64 `json:"snapshot"`
		Batches  int   `json:"batches_read"`
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "rebuilt idempotent producer state") {
			if err := json.Unmarshal([]byte(line), &rebuilt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rebuilt.Snapshot != 80 || rebuilt.Batches != 0 {
		t.Errorf("rebuild after restart from snapshot %d reading %d batches; want snapshot 80 and no batch read", rebuilt.Snapshot, rebuilt.Batches)
	}
}

// TestProducerSnapshot_followerWritesRollSnapshots: a follower, which
// copies its leader's batches verbatim and keeps no producer state in
// memory, still writes a snapshot at each roll (folded from the log), so
// when it leads after a restart its rebuild reads at most its active
// segment, and gets the state a full scan gets.
func TestProducerSnapshot_followerWritesRollSnapshots(t *testing.T) {
	var logs syncBuffer
	leader := snapPartition(t, t.TempDir(), &logs)
	workload(t, leader, rand.New(rand.NewPCG(5, 5)), map[int64][2]int32{}, 200, 4)

	dir := t.TempDir()
	follower := snapPartition(t, dir, &logs)
	for next := int64(0); next < leader.log.LogEndOffset(); {
		b, err := leader.log.Read(next, 700)
		if err != nil {
			t.Fatal(err)
		}
		last, err := follower.log.AppendVerbatim(b)
		if err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
	if err := follower.log.Close(); err != nil {
		t.Fatal(err)
	}
	offs := snapshotsIn(t, dir)
	if len(offs) == 0 {
		t.Fatal("the follower wrote no snapshot")
	}

	p := snapPartition(t, dir, &logs)
	r, err := rebuildProducers(p.log, p.logger, p.log.LogEndOffset(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describeState(r.byID), describeState(fullScan(t, p.log)); got != want {
		t.Errorf("state rebuilt from snapshot %d:\n%s\nwant (a full scan):\n%s", r.snapshot, got, want)
	}
	activeBatches := 0
	p.log.ScanHeaders(offs[len(offs)-1], func(storage.BatchHeader) bool { activeBatches++; return true })
	if r.snapshot != offs[len(offs)-1] || r.batches != activeBatches {
		t.Errorf("rebuilt from snapshot %d reading %d batches; want the newest roll snapshot %d and the %d batches after it",
			r.snapshot, r.batches, offs[len(offs)-1], activeBatches)
	}
}

// TestProducerSnapshot_openDropsSnapshotsAboveTheRecoveredEnd: a crash
// that cost the log its tail leaves the snapshots written over that tail
// above the log's end; opening the partition removes them before appends
// can grow the log past them again.
func TestProducerSnapshot_openDropsSnapshotsAboveTheRecoveredEnd(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	p := snapPartition(t, dir, &logs)
	workload(t, p, rand.New(rand.NewPCG(9, 9)), map[int64][2]int32{}, 60, 1)
	if err := p.log.Close(); err != nil {
		t.Fatal(err)
	}
	offs := snapshotsIn(t, dir)
	// What recovery does to a torn tail, done here without the hooks.
	l, err := storage.Open(storage.Options{Dir: dir, SegmentBytes: 1500, RetentionAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	to := batchAt(t, l, offs[len(offs)-1]-2).BaseOffset
	if err := l.TruncateTo(to); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	var want []int64
	for _, off := range offs {
		if off <= to {
			want = append(want, off)
		}
	}
	snapPartition(t, dir, &logs)
	if got := snapshotsIn(t, dir); len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("snapshots after reopening a log truncated to %d = %v (before %v); want %v", to, got, offs, want)
	}
}
