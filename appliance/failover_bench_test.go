package appliance_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
)

// partitionView is one partition as a node's admin API reports it, with
// its Raft group.
type partitionView = api.PartitionState

// partitionViews returns a node's local view of a topic's partitions, or
// with consistent, the cluster's latest.
func partitionViews(p *proc, topic string, consistent ...bool) ([]partitionView, error) {
	var d api.TopicDescription
	url := "http://" + p.admin + "/v1/topics/" + topic + "?stale=true"
	if len(consistent) > 0 && consistent[0] {
		url = "http://" + p.admin + "/v1/topics/" + topic
	}
	code, err := httpGetJSON(url, &d)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /v1/topics/%s on node %d: HTTP %d", topic, p.id, code)
	}
	return d.PartitionStates, err
}

// waitFullISR waits until every partition of topic has all n replicas in
// its ISR and a leader, as node p sees it, or with consistent, as the
// cluster's latest state has it. A node that just restarted sees its
// pre-crash state until it catches up, a full ISR it may no longer be in:
// ask for consistent there.
func waitFullISR(b testing.TB, p *proc, topic string, n int, within time.Duration, consistent ...bool) {
	b.Helper()
	deadline := time.Now().Add(within)
	for {
		ps, err := partitionViews(p, topic, consistent...)
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

// waitSettled waits until every node names the same live leader for every
// Raft group and has applied what the others have, twice in a row 200 ms
// apart: a restarted node has caught up and no group is mid-election.
func waitSettled(b testing.TB, procs []*proc, within time.Duration) {
	b.Helper()
	deadline := time.Now().Add(within)
	settled := 0
	for settled < 2 {
		if time.Now().After(deadline) {
			b.Fatalf("Raft groups not settled within %v", within)
		}
		time.Sleep(200 * time.Millisecond)
		leaders := map[uint64]uint64{}
		applied := map[uint64][2]uint64{} // min, max
		ok := true
		for _, p := range procs {
			var info api.Cluster
			if code, err := httpGetJSON("http://"+p.admin+"/v1/cluster", &info); err != nil || code != http.StatusOK {
				ok = false
				break
			}
			for _, g := range info.Groups {
				if l, seen := leaders[g.ID]; g.Leader == 0 || (seen && l != g.Leader) {
					ok = false
				}
				leaders[g.ID] = g.Leader
				a, seen := applied[g.ID]
				if !seen {
					a = [2]uint64{g.AppliedIndex, g.AppliedIndex}
				}
				applied[g.ID] = [2]uint64{min(a[0], g.AppliedIndex), max(a[1], g.AppliedIndex)}
			}
		}
		for _, a := range applied {
			ok = ok && a[1]-a[0] <= 2
		}
		if ok {
			settled++
		} else {
			settled = 0
		}
	}
}

// electTo moves a partition's leadership to a node through the admin API.
func electTo(b testing.TB, p *proc, topic string, partition int, to uint64) {
	b.Helper()
	if _, errOut, status := run(b, "elect", "--topic", topic, "--partition", strconv.Itoa(partition),
		"--to", strconv.FormatUint(to, 10), "--admin", p.admin); status != 0 {
		b.Fatalf("reeve elect %s-%d --to %d: %s", topic, partition, to, errOut)
	}
}

// failoverConfig is a cluster's election settings for a leader timeout:
// a heartbeat a fifth of it at most 1 s (the default's ratio is a tenth; a
// shorter timeout wants more heartbeats per timeout to tolerate a lost
// one), and a Raft tick at most the default 50 ms that keeps a worst-case
// Raft election (2 × 20 ticks) within 80% of the timeout, as an operator
// who shortens the timeout must (config check insists on 100%).
func failoverConfig(timeout time.Duration) []string {
	hb := min(timeout/5, time.Second)
	rtt := min(50*time.Millisecond, timeout/50)
	return []string{fmt.Sprintf("raft:rtt = %q", rtt.String()), "[election]",
		fmt.Sprintf("heartbeat_interval = %q", hb.String()), fmt.Sprintf("leader_timeout = %q", timeout.String())}
}

// groupLeaderOf returns the Raft group of topic's partition 0 and the node
// leading it: the partition's controller, and the node that publishes the
// group's events. It waits for the group to have a leader.
func groupLeaderOf(t testing.TB, p *proc, topic string) (group, leader uint64) {
	t.Helper()
	var info api.Cluster
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ps, err := partitionViews(p, topic, true)
		if err == nil && len(ps) > 0 {
			group = ps[0].Group
			if _, err := httpGetJSON("http://"+p.admin+"/v1/cluster", &info); err != nil {
				t.Fatal(err)
			}
			for _, gi := range info.Groups {
				if gi.ID == group && gi.Leader != 0 {
					return group, gi.Leader
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s-0: no Raft group leader (group %d, %v)", topic, group, err)
		}
	}
}

// BenchmarkFailover measures what a producer sees when a partition
// leader's host dies: the time from SIGKILL of the leader to the first
// acks=all produce acknowledged by the new leader, over 10 kills of a
// 3-node cluster of real processes (RF 3), for a leader timeout of 10 s
// (the default) and of 1 s. Between runs the killed node is restarted,
// back in the ISR, and every Raft group has settled: each run is one
// failure of a healthy cluster. The client is franz-go with a 100 ms metadata minimum age
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
			waitSettled(b, procs, 60*time.Second)
			prod := clusterClient(b, procs, kgo.DefaultProduceTopic("fo"), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.MetadataMinAge(100*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
				kgo.RecordDeliveryTimeout(2*timeout+30*time.Second))
			const runs = 10
			var took, electedAt []time.Duration
			for i := range runs {
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("warm " + strconv.Itoa(i))}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				// Even runs kill the partition leader only; odd runs kill a
				// leader that is also the partition's controller, whose Raft
				// group must elect a new leader first.
				_, ctl := groupLeaderOf(b, procs[0], "fo")
				ps, err := partitionViews(procs[0], "fo", true)
				if err != nil || len(ps) != 1 || ps[0].Leader == 0 {
					b.Fatalf("leader of fo-0: %+v, %v", ps, err)
				}
				if wantCtl := i%2 == 1; (ps[0].Leader == ctl) != wantCtl {
					to := ctl
					if !wantCtl {
						to = ps[0].ISR[0]
						for _, r := range ps[0].ISR {
							if r != ctl {
								to = r
							}
						}
					}
					electTo(b, procs[0], "fo", 0, to)
					waitFullISR(b, procs[0], "fo", 3, 30*time.Second)
					if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("moved " + strconv.Itoa(i))}).FirstErr(); err != nil {
						b.Fatal(err)
					}
					ps[0].Leader = to
				}
				victim := procs[ps[0].Leader-1]
				var watcher *proc
				for _, p := range procs {
					if p != victim {
						watcher = p
					}
				}
				elected := make(chan time.Duration, 1)
				victim.kill(b, syscall.SIGKILL)
				killed := time.Now()
				go func() {
					for time.Since(killed) < 2*timeout+30*time.Second {
						if ps, err := partitionViews(watcher, "fo"); err == nil && len(ps) == 1 && ps[0].Leader != 0 && ps[0].Leader != uint64(victim.id) {
							elected <- time.Since(killed)
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
					elected <- -1
				}()
				if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after kill " + strconv.Itoa(i))}).FirstErr(); err != nil {
					b.Fatalf("run %d: produce after killing node %d: %v", i, victim.id, err)
				}
				took = append(took, time.Since(killed))
				seen := <-elected
				electedAt = append(electedAt, seen)
				b.Logf("run %d: killed node %d (controller too: %v); node %d saw the new leader after %v, first acknowledged produce after %v",
					i, victim.id, uint64(victim.id) == ctl, watcher.id, seen.Round(time.Millisecond), took[i].Round(time.Millisecond))
				for _, p := range procs {
					if p == victim {
						continue
					}
					for _, r := range decisionLog(p) {
						if r.Time.After(killed) {
							b.Logf("  node %d decided %s to %d at +%v (latency %.1f ms) committed %v %s", p.id, r.Reason, r.To,
								r.Time.Sub(killed).Round(time.Millisecond), r.LatencyMs, r.Committed, r.Error)
						}
					}
				}
				if os.Getenv("REEVE_BENCH_LOGS") != "" && max(seen, took[i]) > timeout+500*time.Millisecond {
					for _, p := range procs {
						if p != victim {
							data, _ := os.ReadFile(p.logPath)
							b.Logf("node %d log:\n%s", p.id, tail(string(data), 8000))
						}
					}
				}
				victim.start(b)
				victim.waitReady(b)
				waitFullISR(b, victim, "fo", 3, 60*time.Second, true)
				waitSettled(b, procs, 60*time.Second)
			}
			slices.Sort(took)
			slices.Sort(electedAt)
			median := (took[runs/2-1] + took[runs/2]) / 2
			b.ReportMetric(((electedAt[runs/2-1] + electedAt[runs/2]) / 2).Seconds(), "elected-median-s")
			b.ReportMetric(electedAt[runs-1].Seconds(), "elected-max-s")
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
// survivors see it. The node killed is the one leading the most Raft
// groups, so the controllers of most of its partitions die with it.
// Leader timeout 10 s (the default).
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
	// The victim is the node leading the most Raft groups, so most
	// controllers die with the partition leaders.
	var info api.Cluster
	if _, err := httpGetJSON("http://"+procs[0].admin+"/v1/cluster", &info); err != nil {
		b.Fatal(err)
	}
	groupsLed := map[uint64]int{}
	victim := procs[0]
	for _, g := range info.Groups {
		groupsLed[g.Leader]++
		if groupsLed[g.Leader] > groupsLed[uint64(victim.id)] {
			victim = procs[g.Leader-1]
		}
	}
	b.Logf("partitions led: %v; Raft groups led: %v; killing node %d (%d partitions)", led, groupsLed, victim.id, led[uint64(victim.id)])
	victim.kill(b, syscall.SIGKILL)
	killed := time.Now()
	var survivors []*proc
	for _, p := range procs {
		if p != victim {
			survivors = append(survivors, p)
		}
	}
	for _, p := range survivors {
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
	for _, p := range survivors {
		b.Logf("node %d decision log: %d records", p.id, len(decisionLog(p)))
	}
	b.ReportMetric(took.Seconds(), "all-led-s")
	b.ReportMetric((took - timeout).Seconds(), "over-timeout-s")
	b.ReportMetric(0, "ns/op")
}
