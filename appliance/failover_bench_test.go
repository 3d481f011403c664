package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionView is one partition as a node's admin API reports it.
type partitionView struct {
	Partition int      `json:"partition"`
	Leader    uint64   `json:"leader"`
	ISR       []uint64 `json:"isr"`
}

// partitionViews returns a node's local view of a topic's partitions.
func partitionViews(p *proc, topic string) ([]partitionView, error) {
	var d struct {
		PartitionStates []partitionView `json:"partition_states"`
	}
	code, err := httpGetJSON("http://"+p.admin+"/v1/topics/"+topic+"?stale=true", &d)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/topics/%s on node %d: HTTP %d", topic, p.id, code)
	}
	return d.PartitionStates, err
}

// waitFullISR waits until every partition of topic has all n replicas in
// its ISR and a leader, as node p sees it.
func waitFullISR(b testing.TB, p *proc, topic string, n int, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		ps, err := partitionViews(p, topic)
		full := err == nil && len(ps) > 0
		for _, v := range ps {
			full = full && len(v.ISR) == n && v.Leader != 0
		}
		if full {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: ISRs not full after %v: %v", topic, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// failoverConfig is a cluster's election settings for a leader timeout,
// with a heartbeat a fifth of it (the default's ratio is a tenth; a
// shorter timeout wants more heartbeats per timeout to tolerate a lost
// one).
func failoverConfig(timeout time.Duration) []string {
	hb := min(timeout/5, time.Second)
	return []string{"[election]", fmt.Sprintf("heartbeat_interval = %q", hb.String()),
		fmt.Sprintf("leader_timeout = %q", timeout.String())}
}

// BenchmarkFailover measures what a producer sees when a partition
// leader's host dies: the time from SIGKILL of the leader to the first
// acks=all produce acknowledged by the new leader, over 10 kills of a
// 3-node cluster of real processes (RF 3), for a leader timeout of 10 s
// (the default) and of 1 s. The killed node is restarted and caught up
// between runs. The client is franz-go with a 100 ms metadata minimum age
// and a 50 ms retry backoff, as a failover-sensitive producer would be
// set; its defaults (5 s metadata age) would add seconds of its own.
//
//	go test -run '^$' -bench BenchmarkFailover -benchtime 1x ./appliance/
func BenchmarkFailover(b *testing.B) {
	for _, timeout := range []time.Duration{10 * time.Second, time.Second} {
		b.Run("timeout-"+timeout.String(), func(b *testing.B) {
			procs := newProcCluster(b, 3, failoverConfig(timeout)...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if _, err := kadm.NewClient(clusterClient(b, procs)).CreateTopic(ctx, 1, 3, nil, "fo"); err != nil {
				b.Fatal(err)
			}
			waitFullISR(b, procs[0], "fo", 3, 30*time.Second)
			prod := clusterClient(b, procs, kgo.DefaultProduceTopic("fo"), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
				kgo.RecordDeliveryTimeout(2*timeout+30*time.Second))
			const runs = 10
			var took []time.Duration
			for i := range runs {
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("warm " + strconv.Itoa(i))}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				ps, err := partitionViews(procs[0], "fo")
				if err != nil || len(ps) != 1 || ps[0].Leader == 0 {
					b.Fatalf("leader of fo-0: %+v, %v", ps, err)
				}
				victim := procs[ps[0].Leader-1]
				victim.kill(b, syscall.SIGKILL)
				killed := time.Now()
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after kill " + strconv.Itoa(i))}).FirstErr(); err != nil {
					b.Fatalf("run %d: produce after killing node %d: %v", i, victim.id, err)
				}
				took = append(took, time.Since(killed))
				b.Logf("run %d: killed node %d; first acknowledged produce after %v", i, victim.id, took[i].Round(time.Millisecond))
				victim.start(b)
				victim.waitReady(b)
				waitFullISR(b, victim, "fo", 3, 60*time.Second)
			}
			slices.Sort(took)
			median := (took[runs/2-1] + took[runs/2]) / 2
			b.ReportMetric(median.Seconds(), "median-s")
			b.ReportMetric(took[runs-1].Seconds(), "max-s")
			b.ReportMetric((took[runs-1] - timeout).Seconds(), "max-over-timeout-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkElectionStorm measures a controller's worst day: 3 nodes, one
// topic of 1,500 partitions (RF 3), kill the node leading a third of them
// and time until every partition has a live leader again, as both
// survivors see it. Leader timeout 10 s (the default).
//
//	go test -run '^$' -bench BenchmarkElectionStorm -benchtime 1x ./appliance/
func BenchmarkElectionStorm(b *testing.B) {
	const partitions = 1500
	timeout := 10 * time.Second
	procs := newProcCluster(b, 3, failoverConfig(timeout)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	created := time.Now()
	if _, err := kadm.NewClient(clusterClient(b, procs, kgo.RequestTimeoutOverhead(time.Minute))).
		CreateTopic(ctx, partitions, 3, nil, "storm"); err != nil {
		b.Fatal(err)
	}
	waitFullISR(b, procs[0], "storm", 3, 3*time.Minute)
	b.Logf("1,500 partitions created and fully in sync in %v", time.Since(created).Round(time.Millisecond))
	ps, err := partitionViews(procs[0], "storm")
	if err != nil {
		b.Fatal(err)
	}
	led := map[uint64]int{}
	for _, p := range ps {
		led[p.Leader]++
	}
	victim := procs[0]
	b.Logf("partitions led: %v; killing node %d (%d partitions)", led, victim.id, led[uint64(victim.id)])
	victim.kill(b, syscall.SIGKILL)
	killed := time.Now()
	for _, p := range procs[1:] {
		for {
			ps, err := partitionViews(p, "storm")
			done := err == nil && len(ps) == partitions
			for _, v := range ps {
				done = done && v.Leader != 0 && v.Leader != uint64(victim.id)
			}
			if done {
				break
			}
			if time.Since(killed) > 3*timeout {
				b.Fatalf("node %d: partitions still led by the dead node or offline %v after the kill", p.id, time.Since(killed))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	took := time.Since(killed)
	b.Logf("all %d partitions led again %v after the kill", partitions, took.Round(time.Millisecond))
	for _, p := range procs[1:] {
		var recs []json.RawMessage
		httpGetJSON("http://"+p.admin+"/v1/elections", &recs)
		b.Logf("node %d decision log: %d records", p.id, len(recs))
	}
	b.ReportMetric(took.Seconds(), "all-led-s")
	b.ReportMetric((took - timeout).Seconds(), "over-timeout-s")
	b.ReportMetric(0, "ns/op")
}
