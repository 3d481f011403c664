package appliance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkRestart measures how long a one-node reeve process holding
// REEVE_BENCH_RESTART_GB (default 10; 0 skips) of partition logs takes
// to come back, with the idempotent-producer snapshots and without them
// (the snapshot files deleted before the start, so the producer state is
// rebuilt from every batch header, as before snapshots existed):
//
//   - ready: from the process start until /readyz answers ready (Raft
//     joined; the partition logs are not opened for it);
//   - serving: until an idempotent producer (a new kgo client) has one
//     record acknowledged on every partition, which needs each partition's
//     log opened (storage recovery) and its producer state rebuilt;
//   - rebuild: the slowest partition's producer-state rebuild, and all of
//     them together, from the node's log; serving less ready less all
//     rebuilds is what opening the logs (storage recovery) and the
//     client's requests took.
//
// The logs are written by kgo's default (idempotent) producer: 1 KiB
// records in batches of up to 16 KiB, over 4 partitions, with fsync never,
// into a temporary directory removed afterwards. The first restart is
// after SIGKILL, right after the writes: a crash, with only the roll
// snapshots (the newest may lag the last roll) and the active segments to
// recover. Then restarts after SIGTERM (clean: the close snapshots)
// alternate with restarts with the snapshots deleted, benchRestartRounds
// each, with the page cache warm (the data was just written); and on Linux
// a clean restart of each kind with the data directory's files evicted
// from the page cache first (cold: as after a reboot).
//
//	REEVE_BENCH_RESTART_GB=10 go test -run '^$' -bench BenchmarkRestart -benchtime 1x -timeout 30m ./appliance/
func BenchmarkRestart(b *testing.B) {
	gb := 10.0
	if v := os.Getenv("REEVE_BENCH_RESTART_GB"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			b.Fatalf("REEVE_BENCH_RESTART_GB=%q: want a number of GB", v)
		}
		gb = f
	}
	if gb <= 0 {
		b.Skip("REEVE_BENCH_RESTART_GB=0")
	}
	const (
		partitions = 4
		topic      = "restart"
	)
	dataDir := filepath.Join(b.TempDir(), "data")
	p, addr := kafkaNodeAt(b, dataDir, `fsync = "never"`)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kgoClientTB(b, addr))
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	written := fillIdempotent(b, ctx, addr, topic, int64(gb*1e9))
	b.Logf("wrote %.2f GB in %v (%.0f MB/s)", float64(written)/1e9, time.Since(start).Round(time.Second),
		float64(written)/1e6/time.Since(start).Seconds())

	type result struct{ ready, serving, rebuildMax, rebuildSum time.Duration }
	results := map[string][]result{}
	restart := func(name string, sig syscall.Signal, dropSnapshots, cold bool) {
		p.kill(b, sig)
		if dropSnapshots {
			n := removeSnapshots(b, dataDir)
			if n == 0 {
				b.Fatalf("%s: no snapshot files in %s", name, dataDir)
			}
		}
		if cold {
			if err := evictCache(dataDir); err != nil {
				b.Fatal(err)
			}
		}
		logFrom := fileLen(b, p.logPath)
		t0 := time.Now()
		p.start(b)
		ready := waitReadyz(b, p, 2*time.Minute).Sub(t0)
		serving := produceEveryPartition(b, ctx, addr, topic, partitions).Sub(t0)
		slowest, sum := rebuilds(b, p.logPath, logFrom, partitions)
		results[name] = append(results[name], result{ready, serving, slowest, sum})
		b.Logf("%-26s ready %6.2fs  serving %6.2fs  rebuilds: slowest %6.2fs, all %6.2fs",
			name, ready.Seconds(), serving.Seconds(), slowest.Seconds(), sum.Seconds())
	}
	// First a crash right after the writes: only roll snapshots, and the
	// active segments to recover.
	names := []string{"sigkill/roll-snapshots", "sigterm/snapshots", "sigterm/no-snapshots"}
	restart(names[0], syscall.SIGKILL, false, false)
	for range benchRestartRounds {
		restart(names[1], syscall.SIGTERM, false, false)
		restart(names[2], syscall.SIGTERM, true, false)
	}
	if canEvict {
		names = append(names, "cold/sigterm/snapshots", "cold/sigterm/no-snapshots")
		restart(names[3], syscall.SIGTERM, false, true)
		restart(names[4], syscall.SIGTERM, true, true)
	}
	p.kill(b, syscall.SIGTERM)

	for _, name := range names {
		rs := results[name]
		var best result
		for i, r := range rs {
			if i == 0 || r.serving < best.serving {
				best = r
			}
		}
		b.Run(fmt.Sprintf("%s/%.0fGB", name, gb), func(b *testing.B) {
			b.ReportMetric(best.ready.Seconds(), "s-ready")
			b.ReportMetric(best.serving.Seconds(), "s-serving")
			b.ReportMetric(best.rebuildMax.Seconds(), "s-rebuild-max")
			b.ReportMetric(best.rebuildSum.Seconds(), "s-rebuild-all")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchRestartRounds is how many clean restarts of each kind
// BenchmarkRestart makes; it reports the fastest.
const benchRestartRounds = 2

// fillIdempotent produces about total bytes of 1 KiB records to topic with
// kgo's default idempotent producer and returns the bytes of record values
// written.
func fillIdempotent(b *testing.B, ctx context.Context, addr, topic string, total int64) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedBytes(64<<20), kgo.ProducerLinger(0))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	var (
		wg      sync.WaitGroup
		failed  atomic.Pointer[error]
		written int64
	)
	for written < total && failed.Load() == nil {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
			wg.Done()
		})
		written += int64(len(value))
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("produce: %v", *err)
	}
	return written
}

// removeSnapshots deletes the producer-state snapshots (<20 digits>.snapshot
// in a partition directory) under dataDir/kafka and returns how many it
// deleted.
func removeSnapshots(b *testing.B, dataDir string) int {
	n := 0
	err := filepath.WalkDir(filepath.Join(dataDir, "kafka"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		stem, ok := strings.CutSuffix(d.Name(), ".snapshot")
		if _, nerr := strconv.ParseUint(stem, 10, 64); ok && nerr == nil && len(stem) == 20 && d.Type().IsRegular() {
			n++
			return os.Remove(path)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

func fileLen(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// waitReadyz polls /readyz and returns when it first answered ready.
func waitReadyz(b *testing.B, p *proc, within time.Duration) time.Time {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now()
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("node %d not ready within %v", p.id, within)
	return time.Time{}
}

// produceEveryPartition produces one record to each partition with a new
// idempotent producer, retrying until each is acknowledged, and returns
// when the last was.
func produceEveryPartition(b *testing.B, ctx context.Context, addr, topic string, partitions int) time.Time {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(1000),
		kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range partitions {
		rs = append(rs, &kgo.Record{Partition: int32(i), Value: []byte("after restart")})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		b.Fatalf("produce after restart: %v", err)
	}
	return time.Now()
}

// rebuilds returns the longest producer-state rebuild the node logged
// after offset in its log file, and the sum of them all (one produce
// request to every partition waits for their sum: it handles its
// partitions one after another).
func rebuilds(b *testing.B, logPath string, offset int64, partitions int) (slowest, sum time.Duration) {
	f, err := os.Open(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		b.Fatal(err)
	}
	seen := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "rebuilt idempotent producer state") {
			continue
		}
		var line struct {
			Took time.Duration `json:"took"` // slog's JSON writes nanoseconds
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			b.Fatal(err)
		}
		slowest = max(slowest, line.Took)
		sum += line.Took
		seen++
	}
	if seen < partitions {
		b.Logf("only %d of %d partitions logged their rebuild", seen, partitions)
	}
	return slowest, sum
}
