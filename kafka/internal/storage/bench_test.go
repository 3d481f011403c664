package storage

import (
	"context"
	"testing"
)

// BenchmarkAppend appends batches of 16 records of 1 KiB. Under
// FsyncAlways "wait" waits for each batch to be durable before the next
// (one producer, acks=all), and "parallel" runs one such producer per
// GOMAXPROCS*4 goroutines to show group commit.
func BenchmarkAppend(b *testing.B) {
	batch := makeBatch(b, batchSpec{records: 16, valueSize: 1024})
	cases := []struct {
		name     string
		mode     FsyncMode
		wait     bool
		parallel bool
	}{
		{"never", FsyncNever, false, false},
		{"always/nowait", FsyncAlways, false, false},
		{"always/wait", FsyncAlways, true, false},
		{"always/wait/parallel", FsyncAlways, true, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			l, err := Open(Options{Dir: b.TempDir(), Fsync: c.mode, RetentionAge: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			if c.parallel {
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					mine := append([]byte(nil), batch...)
					for pb.Next() {
						_, last, err := l.Append(mine, 0)
						if err == nil {
							err = l.WaitDurable(ctx, last)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					_, last, err := l.Append(batch, 0)
					if err == nil && c.wait {
						err = l.WaitDurable(ctx, last)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			if y := &l.syncer; y.fsyncs.Load() > 0 {
				b.ReportMetric(float64(b.N)/float64(y.fsyncs.Load()), "batches/fsync")
			}
		})
	}
}
