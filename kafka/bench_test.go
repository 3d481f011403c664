package kafka

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduce measures the produce path in process (server and client
// share the machine), for profiling: -cpuprofile shows where a record's
// time goes. Compare whole processes with appliance's BenchmarkKafka.
func BenchmarkProduce(b *testing.B) {
	for _, tc := range []struct {
		name  string
		fsync FsyncMode
		acks  kgo.Acks
	}{{"fsync-never/acks=1", 2, kgo.LeaderAck()}, {"fsync-always/acks=all", 0, kgo.AllISRAcks()}} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := startServer(b, func(c *Config) {
				c.DefaultPartitions = 4
				c.DefaultReplicationFactor = 1
				c.Log = LogOptions{SegmentBytes: 256 << 20, Fsync: tc.fsync}
				c.MaxRequestBytes = 100 << 20
			})
			opts := []kgo.Opt{kgo.DefaultProduceTopic("bench"), kgo.RequiredAcks(tc.acks),
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1 << 20)}
			if tc.acks != kgo.AllISRAcks() {
				opts = append(opts, kgo.DisableIdempotentWrite())
			}
			cl := newClient(b, s, opts...)
			value := make([]byte, 1024)
			rand.Read(value)
			ctx := context.Background()
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			b.SetBytes(1024)
			b.ResetTimer()
			for range b.N {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
		})
	}
}
