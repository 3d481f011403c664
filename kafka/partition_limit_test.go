package kafka

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDerivePartitionLimit(t *testing.T) {
	tests := []struct {
		name           string
		files          uint64
		maxConnections int
		want           int
	}{
		{"systemd LimitNOFILE=1048576", 1 << 20, 1000, (1<<20 - 1000 - 1024) / 8},
		{"hard limit 20000", 20000, 1000, 2247},
		{"hard limit 4096", 4096, 1000, 259},
		{"connections take it all", 2048, 1000, 3},
		{"less than the reserve", 1024, 1000, 1},
		{"unlimited", ^uint64(0), 1000, (1<<40 - 1000 - 1024) / 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DerivePartitionLimit(tt.files, tt.maxConnections); got != tt.want {
				t.Errorf("DerivePartitionLimit(%d, %d) = %d, want %d", tt.files, tt.maxConnections, got, tt.want)
			}
		})
	}
}

func createTopics(t *testing.T, cl *kgo.Client, name string, partitions int32, validateOnly bool) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = validateOnly
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0]
}

func createPartitions(t *testing.T, cl *kgo.Client, name string, count int32) kmsg.CreatePartitionsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = name, count
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0]
}

func TestCreateTopics_pastMaxPartitionsIsPolicyViolation(t *testing.T) {
	s, mc := startServer(t, func(c *Config) { c.MaxPartitions, c.DefaultPartitions = 10, 1 })
	cl := newClient(t, s)

	start := time.Now()
	huge := createTopics(t, cl, "huge", 100_000, false)
	took := time.Since(start)
	t.Logf("100,000 partitions refused in %v: %s", took, *huge.ErrorMessage)
	if huge.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("CreateTopics(100,000 partitions) = %v, want POLICY_VIOLATION", kerr.ErrorForCode(huge.ErrorCode))
	}
	for _, want := range []string{"limit is 10", "node 1", "kafka.max_partitions"} {
		if !strings.Contains(*huge.ErrorMessage, want) {
			t.Errorf("message %q does not say %q", *huge.ErrorMessage, want)
		}
	}
	if took > 2*time.Second {
		t.Errorf("refusal took %v, want it fast", took)
	}
	if _, ok := mc.Topic("huge"); ok {
		t.Error("topic huge exists after the refusal")
	}
	if entries, _ := os.ReadDir(s.cfg.DataDir); len(entries) > 0 {
		t.Errorf("data dir holds %d entries after the refusal, want none", len(entries))
	}

	if got := createTopics(t, cl, "fits", 8, false); got.ErrorCode != 0 {
		t.Fatalf("CreateTopics(8 partitions of 10) = %v", kerr.ErrorForCode(got.ErrorCode))
	}
	s.parts.refresh()
	tests := []struct {
		name string
		do   func() int16
		want int16
	}{
		{"validate only past the limit", func() int16 { return createTopics(t, cl, "more", 3, true).ErrorCode }, kerr.PolicyViolation.Code},
		{"partitions past the limit", func() int16 { return createPartitions(t, cl, "fits", 11).ErrorCode }, kerr.PolicyViolation.Code},
		{"partitions up to the limit", func() int16 { return createPartitions(t, cl, "fits", 10).ErrorCode }, 0},
		{"auto-creation past the limit", func() int16 {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("auto")
			req.Topics = append(req.Topics, rt)
			req.AllowAutoTopicCreation = true
			resp, err := req.RequestWith(ctxT(t), cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].ErrorCode
		}, kerr.PolicyViolation.Code},
	}
	for _, tt := range tests {
		if got := tt.do(); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, kerr.ErrorForCode(got), kerr.ErrorForCode(tt.want))
		}
	}
	if tp, _ := mc.Topic("fits"); len(tp.Partitions) != 10 {
		t.Errorf("fits has %d partitions, want 10", len(tp.Partitions))
	}
}

func TestNew_derivesThePartitionLimitFromTheOpenFileLimit(t *testing.T) {
	s, _ := startServer(t)
	files, ok := openFileLimit()
	if !ok {
		t.Skip("no open-file limit here")
	}
	if want := DerivePartitionLimit(files, 1000); s.partLimit != want || !strings.Contains(s.partLimitFrom, "open-file limit") {
		t.Errorf("derived limit = %d (%s), want %d from the open-file limit %d", s.partLimit, s.partLimitFrom, want, files)
	}
}
