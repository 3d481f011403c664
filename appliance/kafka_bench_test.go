package appliance_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRecords is how many 1 KiB records each produce and fetch case moves.
const benchRecords = 200_000

// BenchmarkKafka compares one reeve node with franz-go's in-memory kfake
// broker, both driven by the same kgo client and settings in the same run:
// produce with acks=1 and acks=all (reeve with fsync never and always), and
// fetch of everything produced. Each case moves benchRecords records of
// 1 KiB over 4 partitions and reports records/s and MB/s.
//
//	go test -run '^$' -bench BenchmarkKafka -benchtime 1x ./appliance/
func BenchmarkKafka(b *testing.B) {
	type target struct {
		name  string
		start func(b *testing.B) string
	}
	targets := []target{
		{"kfake", func(b *testing.B) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "bench"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			return c.ListenAddrs()[0]
		}},
		{"reeve-fsync-never", func(b *testing.B) string { return reeveBench(b, "never") }},
		{"reeve-fsync-always", func(b *testing.B) string { return reeveBench(b, "always") }},
	}
	for _, tg := range targets {
		addr := tg.start(b)
		for _, acks := range []struct {
			name string
			acks kgo.Acks
		}{{"acks=1", kgo.LeaderAck()}, {"acks=all", kgo.AllISRAcks()}} {
			b.Run("produce/"+tg.name+"/"+acks.name, func(b *testing.B) {
				benchProduce(b, addr, acks.acks)
			})
		}
		b.Run("fetch/"+tg.name, func(b *testing.B) { benchFetch(b, addr) })
	}
}

func reeveBench(b *testing.B, fsync string) string {
	_, addr := kafkaNodeTB(b, `fsync = "`+fsync+`"`)
	c := kgoClientTB(b, addr)
	if _, err := kadm.NewClient(c).CreateTopic(context.Background(), 4, 1, nil, "bench"); err != nil {
		b.Fatal(err)
	}
	return addr
}

func benchProduce(b *testing.B, addr string, acks kgo.Acks) {
	opts := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(acks), kgo.ProducerBatchMaxBytes(1 << 20)}
	if acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl := kgoClientTB(b, addr, opts...)
	value := make([]byte, 1024)
	ctx := context.Background()
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	b.ResetTimer()
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
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	report(b, elapsed)
}

func benchFetch(b *testing.B, addr string) {
	cl := kgoClientTB(b, addr, kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(16<<20))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ResetTimer()
	start := time.Now()
	n := 0
	for n < benchRecords {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			b.Fatal(err)
		}
		n += fs.NumRecords()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	report(b, elapsed)
}

func report(b *testing.B, elapsed time.Duration) {
	b.ReportMetric(float64(benchRecords)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(benchRecords)*1024/elapsed.Seconds()/1e6, "MB/s")
	b.ReportMetric(0, "ns/op")
}
