package appliance_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaNode starts one reeve process with a Kafka listener and returns it
// with its Kafka address.
func kafkaNode(t *testing.T, extra string) (*proc, string) { return kafkaNodeTB(t, extra) }

func kafkaNodeTB(t testing.TB, extra string) (*proc, string) {
	t.Helper()
	return kafkaNodeAt(t, "", extra)
}

// kafkaNodeAt starts a one-node cluster as kafkaNodeTB does, with its data
// in dataDir ("" for a new temporary one), and returns it with its Kafka
// address.
func kafkaNodeAt(t testing.TB, dataDir, extra string) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	p := &proc{id: 1, raft: freePort(t, "127.0.0.1"), admin: freePort(t, "127.0.0.1"),
		cfgPath: filepath.Join(dir, "reeve.toml"), logPath: filepath.Join(dir, "reeve.log")}
	kafkaAddr := freePort(t, "127.0.0.1")
	cfg := fmt.Sprintf(`[node]
id = 1
data_dir = %q

[raft]
address = %q
rtt = "10ms"

[kafka]
listen = %q
default_partitions = 8
%s

[admin]
listen = %q

[log]
format = "json"

[events]
embedded_listen = "127.0.0.1:0"
`, dataDir, p.raft, kafkaAddr, extra, p.admin)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(t)
	p.waitReady(t)
	return p, kafkaAddr
}

func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	return kgoClientTB(t, addr, opts...)
}

func kgoClientTB(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestKafka_hundredThousandRecordsEveryCodec produces 100k records over 8
// partitions, 20k per compression codec, and reads every one back with its
// key, value, headers and timestamp intact.
func TestKafka_hundredThousandRecordsEveryCodec(t *testing.T) {
	_, addr := kafkaNode(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 8, 1, nil, "bulk"); err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	const perCodec = 20_000
	base := time.UnixMilli(1_700_000_000_000)
	want := make(map[string][]byte, perCodec*len(codecs))
	for ci, codec := range codecs {
		prod := kgoClient(t, addr, kgo.DefaultProduceTopic("bulk"), kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for i := range perCodec {
			id := strconv.Itoa(ci*perCodec + i)
			r := &kgo.Record{
				Key:       []byte("k" + strconv.Itoa(i%97)),
				Value:     []byte(strings.Repeat(id, 1+i%20)),
				Headers:   []kgo.RecordHeader{{Key: "id", Value: []byte(id)}, {Key: "codec", Value: []byte{byte(ci)}}},
				Timestamp: base.Add(time.Duration(ci*perCodec+i) * time.Millisecond),
			}
			want[id] = r.Value
			wg.Add(1)
			prod.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			t.Fatalf("produce with codec %d: %v", ci, firstErr)
		}
	}
	cons := kgoClient(t, addr, kgo.ConsumeTopics("bulk"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := 0
	partitions := map[int32]bool{}
	for seen < len(want) {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches after %d records: %v", seen, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			id := string(r.Headers[0].Value)
			n, _ := strconv.Atoi(id)
			if !bytes.Equal(r.Value, want[id]) || string(r.Key) != "k"+strconv.Itoa((n%perCodec)%97) ||
				!r.Timestamp.Equal(base.Add(time.Duration(n)*time.Millisecond)) || len(r.Headers) != 2 {
				t.Fatalf("record %s = key %q ts %v headers %v, value %d bytes", id, r.Key, r.Timestamp, r.Headers, len(r.Value))
			}
			delete(want, id)
			partitions[r.Partition] = true
			seen++
		})
		if len(want) == 0 {
			break
		}
	}
	if len(want) != 0 || len(partitions) != 8 {
		t.Fatalf("%d records never read; partitions used %v", len(want), partitions)
	}
}

func TestKafka_adminAndOffsets(t *testing.T) {
	_, addr := kafkaNode(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := kgoClient(t, addr)
	adm := kadm.NewClient(cl)

	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "admin"); err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "admin"); err == nil || !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Errorf("CreateTopic(again) = %v, want TOPIC_ALREADY_EXISTS", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"bogus.setting": kadm.StringPtr("1")}, "badcfg"); err == nil || !strings.Contains(err.Error(), "INVALID_CONFIG") {
		t.Errorf("CreateTopic(bad config) = %v, want INVALID_CONFIG", err)
	}
	if _, err := adm.CreatePartitions(ctx, 3, "admin"); err != nil {
		t.Fatalf("CreatePartitions = %v", err)
	}
	details, err := adm.ListTopics(ctx, "admin")
	if err != nil || len(details["admin"].Partitions) != 5 {
		t.Fatalf("ListTopics = %+v, %v; want 5 partitions", details, err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("admin", nil); err != nil || !hasConfig(v.Configs, "retention.ms", "3600000") {
		t.Errorf("DescribeTopicConfigs = %+v, %v; want retention.ms=3600000", v, err)
	}

	// A consumer resumes from a stored offset.
	prod := kgoClient(t, addr, kgo.DefaultProduceTopic("admin"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 100 {
		r := &kgo.Record{Partition: 0, Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := adm.ListOffsetsAfterMilli(ctx, base.Add(42*time.Second).UnixMilli(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := lo.Lookup("admin", 0); !ok || o.Offset != 42 {
		t.Errorf("ListOffsetsAfterMilli(+42s) = %+v, want offset 42", o)
	}
	stored := int64(60)
	cons := kgoClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"admin": {0: kgo.NewOffset().At(stored)}}))
	fs := cons.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) == 0 || recs[0].Offset != stored || string(recs[0].Value) != "60" {
		t.Fatalf("resumed at %d: got %d records, first %+v", stored, len(recs), recs)
	}

	dr, err := adm.DeleteTopics(ctx, "admin")
	if err != nil {
		t.Fatalf("DeleteTopics = %v", err)
	}
	if d, _ := dr.On("admin", nil); d.Err != nil {
		t.Fatalf("DeleteTopics(admin) = %v", d.Err)
	}
	// A new client: kgo answers repeated Metadata requests from a cache.
	fresh := kadm.NewClient(kgoClient(t, addr))
	if details, err := fresh.ListTopics(ctx, "admin"); err != nil || details.Has("admin") && details["admin"].Err == nil {
		t.Errorf("topic still listed after delete: %+v, %v", details, err)
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// TestKafka_sigkillLosesNoAcknowledgedRecord kills reeve with SIGKILL while
// a producer (acks=all, fsync always) runs, restarts it, and reads every
// acknowledged record back; no torn batch is served.
func TestKafka_sigkillLosesNoAcknowledgedRecord(t *testing.T) {
	p, addr := kafkaNode(t, `fsync = "always"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}
	// Not idempotent: an idempotent producer cannot give up on a batch it
	// has sent (its sequence is spoken for), so it would wait for the dead
	// broker forever; this test wants each produce to end, acknowledged or
	// not.
	prod := kgoClient(t, addr, kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(2*time.Second))
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				err := prod.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr()
				pcancel()
				if err == nil {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	p.kill(t, syscall.SIGKILL)
	close(stop)
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no record was acknowledged before the kill")
	}
	p.start(t)
	p.waitReady(t)
	cons := kgoClient(t, addr, kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	end, err := adm.ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	end.Each(func(o kadm.ListedOffset) { total += o.Offset })
	read := int64(0)
	for read < total {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches after restart: %v (read %d of %d)", err, read, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			delete(acked, string(r.Value))
			read++
		})
	}
	if len(acked) != 0 {
		t.Fatalf("%d of %d acknowledged records lost after SIGKILL", len(acked), n)
	}
	t.Logf("%d acknowledged records, all read back from %d stored", n, total)
}

// TestKafka_groupCommitsSurviveARestart commits offsets through a consumer
// group, restarts reeve, and checks a new member of the group resumes
// exactly where the commits left off.
func TestKafka_groupCommitsSurviveARestart(t *testing.T) {
	p, addr := kafkaNode(t, `group_initial_rebalance_delay = "0s"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "resume"); err != nil {
		t.Fatal(err)
	}
	prod := kgoClient(t, addr, kgo.DefaultProduceTopic("resume"))
	for i := range 300 {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	first := kgoClient(t, addr, kgo.ConsumerGroup("resumers"), kgo.ConsumeTopics("resume"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]bool{}
	for len(seen) < 300 {
		fs := first.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := first.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit = %v", err)
	}
	first.Close()

	p.kill(t, syscall.SIGTERM)
	p.start(t)
	p.waitReady(t)
	for i := 300; i < 400; i++ {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	second := kgoClient(t, addr, kgo.ConsumerGroup("resumers"), kgo.ConsumeTopics("resume"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	for len(got) < 100 {
		fs := second.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n, _ := strconv.Atoi(string(r.Value))
			if n < 300 {
				t.Fatalf("record %d was committed before the restart but delivered again", n)
			}
			got[string(r.Value)] = true
		})
	}
}
