package appliance_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkReplicatedProduce measures acks=all produce of 1 KiB records on
// a 3-node reeve cluster (real processes, RF 3, fsync always, 4 partitions)
// next to a single node, in the same run: throughput of 100k records
// produced asynchronously, and the latency of one record produced at a
// time (p50 and p99 over 1000).
//
//	go test -run '^$' -bench BenchmarkReplicatedProduce -benchtime 1x ./appliance/
func BenchmarkReplicatedProduce(b *testing.B) {
	single, singleAddr := kafkaNodeTB(b, `fsync = "always"`)
	_ = single
	procs := newProcCluster(b, 3)
	var seeds []string
	for _, p := range procs {
		seeds = append(seeds, p.kafka)
	}
	for _, tc := range []struct {
		name  string
		seeds []string
		rf    int16
	}{{"single-node", []string{singleAddr}, 1}, {"3-nodes-rf3", seeds, 3}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			admin, err := kgo.NewClient(kgo.SeedBrokers(tc.seeds...))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			if _, err := kadm.NewClient(admin).CreateTopic(ctx, 4, tc.rf, nil, "rbench"); err != nil {
				b.Fatal(err)
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(tc.seeds...), kgo.DefaultProduceTopic("rbench"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			value := make([]byte, 1024)
			rand.Read(value)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, 1000)
			for range 1000 {
				start := time.Now()
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			const n = 100_000
			done := make(chan error, n)
			start := time.Now()
			for range n {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) { done <- err })
			}
			for range n {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(n/elapsed.Seconds(), "records/s")
			b.ReportMetric(n*1024/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
