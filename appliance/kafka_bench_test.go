package appliance_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/appliance"
	"github.com/reeve-edge/reeve/config"
)

const (
	benchRecords = 300_000 // 1 KiB records per produce or fetch measurement
	benchRounds  = 5       // measurements per case; the median is reported
)

// BenchmarkKafka compares one reeve node with franz-go's in-memory kfake
// broker, both driven by the same kgo client and settings in the same run:
// produce with acks=1 and acks=all (reeve with fsync never and always), and
// a fetch of benchRecords from the start. kfake runs inside the benchmark
// process, so the like-for-like reeve target ("reeve-...") does too: a
// whole node (appliance.Start: Raft, listener, logs on disk) in process.
// The "reeve-process-..." targets run the real binary, which adds the cost
// of a second process sharing the machine's cores with the client. Each case moves benchRecords
// records of 1 KiB (uncompressed, random bytes) over 4 partitions. The
// cases are measured benchRounds times, interleaved so that machine noise
// hits every target alike, and each reports its median records/s and MB/s;
// the log shows every case's ratio to kfake.
//
//	go test -run '^$' -bench BenchmarkKafka -benchtime 1x ./appliance/
func BenchmarkKafka(b *testing.B) {
	type target struct{ name, addr string }
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(kf.Close)
	targets := []target{
		{"kfake", kf.ListenAddrs()[0]},
		{"reeve-fsync-never", reeveInProcess(b, "never")},
		{"reeve-fsync-always", reeveInProcess(b, "always")},
		{"reeve-process-fsync-never", reeveBench(b, "never")},
		{"reeve-process-fsync-always", reeveBench(b, "always")},
	}
	results := map[string][]float64{} // case -> records/s per round
	var names []string                // cases in report order
	for round := range benchRounds {
		for _, tg := range targets {
			// A fresh topic each round, deleted after it: the data written
			// in earlier rounds would otherwise pile up as dirty pages and
			// the kernel's write-back throttling would measure the disk.
			topic := fmt.Sprintf("bench-%d", round)
			adm := kadm.NewClient(kgoClientTB(b, tg.addr))
			if _, err := adm.CreateTopic(context.Background(), 4, 1, nil, topic); err != nil {
				b.Fatal(err)
			}
			// Alternate which acks case goes first: the second one writes
			// while the kernel flushes the first one's pages, and would
			// otherwise always pay for it.
			order := []string{"acks=1", "acks=all"}
			if round%2 == 1 {
				order = []string{"acks=all", "acks=1"}
			}
			for _, acks := range order {
				name := "produce/" + tg.name + "/" + acks
				results[name] = append(results[name], benchProduce(b, tg.addr, topic, acks == "acks=all"))
				if round == 0 && !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
			name := "fetch/" + tg.name
			results[name] = append(results[name], benchFetch(b, tg.addr, topic))
			if round == 0 {
				names = append(names, name)
			}
			if _, err := adm.DeleteTopics(context.Background(), topic); err != nil {
				b.Fatal(err)
			}
		}
	}
	median := func(v []float64) float64 {
		s := slices.Clone(v)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-34s %12s %9s %9s\n", "case", "records/s", "MB/s", "vs kfake")
	for _, name := range names {
		m := median(results[name])
		peer := name
		for _, tg := range targets[1:] {
			peer = strings.Replace(peer, tg.name, "kfake", 1)
		}
		fmt.Fprintf(&table, "%-34s %12.0f %9.1f %8.2fx\n", name, m, m*1024/1e6, m/median(results[peer]))
		b.Run(name, func(b *testing.B) {
			b.ReportMetric(m, "records/s")
			b.ReportMetric(m*1024/1e6, "MB/s")
			b.ReportMetric(0, "ns/op")
		})
	}
	b.Log(table.String())
}

// reeveInProcess starts a one-node reeve in this process.
func reeveInProcess(b *testing.B, fsync string) string {
	cfg := config.Default()
	cfg.Node.DataDir = filepath.Join(b.TempDir(), "data")
	cfg.Raft.Address = freePort(b, "127.0.0.1")
	cfg.Cluster.InitialMembers = []string{"1@" + cfg.Raft.Address}
	cfg.Kafka.Listen = freePort(b, "127.0.0.1")
	cfg.Admin.Listen = freePort(b, "127.0.0.1")
	cfg.Kafka.Fsync = fsync
	s, err := appliance.Start(cfg, slog.New(slog.DiscardHandler), appliance.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Store().WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	return s.KafkaAddr()
}

// reeveBench starts a reeve process.
func reeveBench(b *testing.B, fsync string) string {
	_, addr := kafkaNodeTB(b, `fsync = "`+fsync+`"`)
	return addr
}

// benchProduce produces benchRecords records and returns records/s.
func benchProduce(b *testing.B, addr, topic string, all bool) float64 {
	// No compression: the point is the broker's path, not the codec's.
	// Idempotence off for both brokers: kgo keeps five produce requests in
	// flight to a broker that grants producer ids (kfake does, reeve does
	// not yet) and one otherwise, so leaving it on would compare the
	// client's pipelining instead of the brokers.
	acks := kgo.LeaderAck()
	if all {
		acks = kgo.AllISRAcks()
	}
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1 << 20),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite()}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 1024)
	rand.Read(value)
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil { // connect and learn metadata first
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	start := time.Now()
	for range benchRecords {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return benchRecords / elapsed.Seconds()
}

// benchFetch reads benchRecords records from the start and returns records/s.
func benchFetch(b *testing.B, addr, topic string) float64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	n := 0
	for n < benchRecords {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		n += fs.NumRecords()
	}
	return float64(n) / time.Since(start).Seconds()
}
