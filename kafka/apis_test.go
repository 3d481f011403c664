package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestFetch_longPollWakesOnProduce(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	c := newClient(t, s, kgo.DefaultProduceTopic("poll"))
	if err := c.ProduceSync(ctx, &kgo.Record{Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	id := topicID(t, s, "poll")
	fetch := func(offset int64, minBytes, maxWait int32) (*kmsg.FetchResponse, time.Duration) {
		req := kmsg.NewPtrFetchRequest() // kgo sends it at v16: topics by id
		req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "poll", id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		start := time.Now()
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return resp, time.Since(start)
	}
	// Nothing new: the poll waits out max_wait.
	resp, took := fetch(1, 1, 300)
	if p := resp.Topics[0].Partitions[0]; len(p.RecordBatches) != 0 || took < 250*time.Millisecond {
		t.Errorf("fetch at the end = %d bytes after %v, want nothing after ~300ms", len(p.RecordBatches), took)
	}
	// A produce during the poll ends it early with the new data.
	go func() {
		time.Sleep(200 * time.Millisecond)
		c.ProduceSync(ctx, &kgo.Record{Value: []byte("second")})
	}()
	resp, took = fetch(1, 1, 10_000)
	if p := resp.Topics[0].Partitions[0]; len(p.RecordBatches) == 0 || took > 5*time.Second || p.HighWatermark != 2 {
		t.Errorf("long poll = %d bytes, hw %d, %v after %v; want the new batch well before 10s", len(p.RecordBatches), p.HighWatermark, kerr.ErrorForCode(p.ErrorCode), took)
	}
	if resp.SessionID != 0 {
		t.Errorf("SessionID = %d, want 0 (session-less)", resp.SessionID)
	}
}

func TestFetch_partitionMaxBytesStillReturnsOneWholeBatch(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.DefaultPartitions = 1 })
	ctx := ctxT(t)
	c := newClient(t, s, kgo.DefaultProduceTopic("limits"), kgo.ProducerLinger(0))
	for range 3 {
		if err := c.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 2000)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "limits", topicID(t, s, "limits")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 100, -1 // smaller than one batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	data := resp.Topics[0].Partitions[0].RecordBatches
	var b kmsg.RecordBatch
	if err := b.ReadFrom(data); err != nil || b.FirstOffset != 0 || int(b.Length)+12 != len(data) {
		t.Errorf("fetch with 100 max bytes = %d bytes (%v), want exactly the first whole batch", len(data), err)
	}
}

func topicID(t *testing.T, s *Server, name string) [16]byte {
	t.Helper()
	tp, ok := s.parts.topic(name)
	if !ok {
		t.Fatalf("no topic %q", name)
	}
	return tp.ID
}

func TestMetadata_autoCreateOffAnswersUnknownTopic(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.AutoCreateTopics = false })
	ctx := ctxT(t)
	c := newClient(t, s)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("nope")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata for unknown topic with auto-create off = %v, want UNKNOWN_TOPIC_OR_PARTITION", kerr.ErrorForCode(code))
	}
	if len(resp.Brokers) == 0 || resp.ClusterID == nil || *resp.ClusterID != "test" {
		t.Errorf("metadata brokers %+v cluster %v", resp.Brokers, resp.ClusterID)
	}
}

func TestAdmin_describeConfigsClusterAndLeaderEpochs(t *testing.T) {
	s, _ := startServer(t)
	ctx := ctxT(t)
	cl := newClient(t, s)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "cfg"); err != nil {
		t.Fatal(err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	got, err := rc.On("cfg", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, c := range got.Configs {
		if c.Value != nil {
			found[c.Key] = *c.Value
		}
	}
	if found["retention.ms"] != "1000" || found["cleanup.policy"] != "delete" {
		t.Errorf("DescribeTopicConfigs = %v, want retention.ms=1000 and cleanup.policy=delete", found)
	}
	bc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bc) != 1 || len(bc[0].Configs) == 0 {
		t.Errorf("DescribeBrokerConfigs = %+v, %v", bc, err)
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dresp, err := dc.RequestWith(ctx, cl)
	if err != nil || dresp.ClusterID != "test" || dresp.ControllerID != 1 || len(dresp.Brokers) == 0 {
		t.Errorf("DescribeCluster = %+v, %v", dresp, err)
	}

	prod := newClient(t, s, kgo.DefaultProduceTopic("cfg"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 5 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.ReplicaID = -1
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "cfg"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.CurrentLeaderEpoch = 1, 0, 0
	rt.Partitions = append(rt.Partitions, rp)
	oe.Topics = append(oe.Topics, rt)
	oresp, err := oe.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if p := oresp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 5 {
		t.Errorf("OffsetForLeaderEpoch(epoch 0) = %+v, want epoch 0 end 5", p)
	}
	rp.CurrentLeaderEpoch = 3
	oe.Topics[0].Partitions[0] = rp
	oresp, _ = oe.RequestWith(ctx, cl)
	if p := oresp.Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("OffsetForLeaderEpoch(current epoch 3) = %v, want UNKNOWN_LEADER_EPOCH", kerr.ErrorForCode(p.ErrorCode))
	}
	_ = context.Background
}
