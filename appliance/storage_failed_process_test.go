package appliance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/internal/history"
	"github.com/reeve-edge/reeve/policy"
)

// TestStorageFailed_leaderWhoseFsyncFailsHandsOver: on three processes,
// the leader's disk starts failing every fsync (EIO, through the test
// hook). Nothing it could not make durable is acknowledged; the partition
// moves to an in-sync replica through the policy (reason storage_failed);
// a producer that keeps going gets every record acknowledged once, and a
// consumer reads exactly those; the failing node publishes a
// storage_failed event, counts the partition in a metric and says
// "degraded" on /readyz while it keeps serving.
func TestStorageFailed_leaderWhoseFsyncFailsHandsOver(t *testing.T) {
	_, url := natsServer(t)
	failedEvents := subscribe(t, url, "reeve.proc-test.storage_failed.>")
	leaderEvents := subscribe(t, url, "reeve.proc-test.leader_changed.disk.0")
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), fmt.Sprintf("events:nats_url = %q", url))...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "disk", 1, 3)
	waitTopic(t, procs[0], "disk", 1)
	if leader, _ := leaderOf(t, procs[0], "disk"); leader != 1 {
		moveLeader(t, procs[0], "disk", 0, 1)
	}
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("disk"), kgo.RequiredAcks(kgo.AllISRAcks()))
	var h history.History
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			op := history.Produce{Value: fmt.Sprintf("r%03d", i), Invoked: time.Now(), Offset: -1}
			res := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(op.Value)})
			op.Completed = time.Now()
			rec, err := res.First()
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			op.Partition, op.Offset = rec.Partition, rec.Offset
			h.Produces = append(h.Produces, op)
		}
	}
	produce(0, 20)

	if err := os.WriteFile(procs[0].fsyncEIO(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	produce(20, 21) // acknowledged only once another node leads
	t.Logf("first acknowledgement after node 1's disk failed: %v", time.Since(start).Round(time.Millisecond))
	produce(21, 40)
	h.Faults = append(h.Faults, history.Fault{Kind: "fsync EIO on the leader", Start: start, End: time.Now()})
	if leader, _ := leaderOf(t, procs[1], "disk"); leader == 1 || leader == 0 {
		t.Errorf("leader after the failure = %d, want node 2 or 3", leader)
	}

	cons := clusterClient(t, procs, kgo.ConsumeTopics("disk"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 40 && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, string(r.Value))
			h.Reads = append(h.Reads, history.Read{Partition: r.Partition, Offset: r.Offset, Value: string(r.Value)})
		})
	}
	for i, v := range got {
		if want := fmt.Sprintf("r%03d", i); v != want {
			t.Fatalf("record %d = %s, want %s (read %v)", i, v, want, got)
		}
	}

	waitMetric(t, procs[0], "reeve_kafka_partitions_storage_failed", 5*time.Second, func(v float64) bool { return v == 1 })
	resp, err := http.Get("http://" + procs[0].admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "degraded") || !strings.Contains(string(body), "disk-0") {
		t.Errorf("/readyz on the failing node = %d %q, want 200 naming disk-0 as degraded", resp.StatusCode, body)
	}

	var failed, moved *api.Envelope
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (failed == nil || moved == nil); time.Sleep(50 * time.Millisecond) {
		for _, r := range failedEvents() {
			if r.env.Data.Topic == "disk" && r.env.Data.Node == 1 {
				failed = &r.env
			}
		}
		for _, r := range leaderEvents() {
			if r.env.Data.Reason == string(policy.ReasonStorageFailed) && r.env.Data.PreviousLeader == 1 {
				moved = &r.env
			}
		}
	}
	if failed == nil || !strings.Contains(failed.Data.Detail, "input/output error") {
		t.Errorf("storage_failed event = %+v, want one from node 1 naming the I/O error", failed)
	}
	if moved == nil {
		t.Error("no leader_changed event with reason storage_failed from node 1")
	} else if moved.Data.Leader == 1 || slices.Contains(moved.Data.ISR, 1) {
		t.Errorf("leader_changed = %+v, want node 1 neither leader nor in the ISR", moved.Data)
	}

	// The whole history, through the fault suite's checker: every
	// election (the test's own move to node 1, then the storage_failed
	// one) published once, one leader per epoch, nothing lost or doubled.
	addElections(&h, procs, "disk", leaderEvents())
	rep := history.Check(h)
	if !rep.OK() || rep.Acked != 40 || len(h.Elections) < 1 {
		t.Errorf("history (%d elections):\n%s", len(h.Elections), rep)
	}
	t.Logf("history: %s", rep)
}
