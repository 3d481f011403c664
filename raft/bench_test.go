package raft

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkCommit measures committed metadata updates on a real 3-node
// cluster (three NodeHosts, TCP on 127.0.0.x, Pebble LogDB with fsync):
// "sequential" commits one partition update per Raft entry and waits for
// each; "batched" commits 128 partition updates in one entry, as a
// controller does when it moves many partitions at once. Each reports
// updates/s and the p50/p99 latency of one commit.
func BenchmarkCommit(b *testing.B) {
	c := newTestCluster(b, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "bench", Partitions: 1024, ReplicationFactor: 3})
	if err != nil {
		b.Fatal(err)
	}
	c.topicEverywhere(topic)
	s := c.stores[1]
	// Propose where the partition group leads, as a controller does.
	group := GroupFor(topic.ID, 0, s.PartitionGroups())
	var parts []Partition
	for _, p := range s.Partitions(topic) {
		if s.GroupOf(topic.ID, p.Partition) == group {
			parts = append(parts, p)
		}
	}
	if leader, ok := s.GroupLeader(group); ok {
		s = c.stores[leader]
	}

	// next flips a partition's ISR between all replicas and two of them.
	next := func(p *Partition) PartitionUpdate {
		isr := p.Replicas
		if len(p.ISR) == len(p.Replicas) {
			isr = p.Replicas[:2]
		}
		return PartitionUpdate{TopicID: p.TopicID, Partition: p.Partition,
			ExpectedLeaderEpoch: p.LeaderEpoch, ExpectedPartitionEpoch: p.PartitionEpoch, ISR: isr}
	}

	run := func(b *testing.B, batch int) {
		if batch > len(parts) {
			b.Fatalf("group %d has %d partitions, want %d", group, len(parts), batch)
		}
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			updates := make([]PartitionUpdate, batch)
			for j := range updates {
				updates[j] = next(&parts[(i*batch+j)%len(parts)])
			}
			start := time.Now()
			res, err := s.UpdatePartitions(ctx, updates)
			lat = append(lat, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			for j, r := range res {
				if r.Err != nil {
					b.Fatalf("update %d: %v", j, r.Err)
				}
				parts[(i*batch+j)%len(parts)] = r.Partition
			}
		}
		elapsed := b.Elapsed()
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "updates/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(0, "ns/op") // the per-commit latencies above say it better
	}
	b.Run("sequential", func(b *testing.B) { run(b, 1) })
	b.Run("batched-128", func(b *testing.B) { run(b, 128) })
}
