package appliance_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestProcess_partitionLimitRefusesBothAPIs: with kafka.max_partitions 20
// on a one-node cluster, a topic of 100 partitions is refused by the
// Kafka API (POLICY_VIOLATION) and by the admin API (400), each naming the
// limit, and nothing is created; a topic that fits is created by both.
func TestProcess_partitionLimitRefusesBothAPIs(t *testing.T) {
	p, kafkaAddr := kafkaNodeTB(t, "max_partitions = 20")
	adm := kadm.NewClient(kgoClient(t, kafkaAddr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := adm.CreateTopic(ctx, 100, 1, nil, "too-many")
	if err == nil {
		err = res.Err
	}
	if err == nil || !strings.Contains(err.Error(), "POLICY_VIOLATION") || !strings.Contains(res.ErrMessage, "max_partitions") {
		t.Errorf("Kafka CreateTopics of 100 partitions = %v (%q), want POLICY_VIOLATION naming kafka.max_partitions", err, res.ErrMessage)
	}
	code, body := adminRequest(t, p, "POST", "/v1/topics", `{"name":"too-many-admin","partitions":100,"replication_factor":1}`,
		"Content-Type", "application/json")
	if code != http.StatusBadRequest || !strings.Contains(body, "max_partitions") {
		t.Errorf("POST /v1/topics of 100 partitions = %d %s, want 400 naming kafka.max_partitions", code, body)
	}
	if code, body := adminRequest(t, p, "GET", "/v1/topics", ""); code != http.StatusOK || body != "[]\n" {
		t.Errorf("GET /v1/topics after the refusals = %d %s, want no topic", code, body)
	}

	if res, err := adm.CreateTopic(ctx, 8, 1, nil, "fits"); err != nil || res.Err != nil {
		t.Errorf("Kafka CreateTopics of 8 partitions = %v, %v", err, res.Err)
	}
	if code, body := adminRequest(t, p, "POST", "/v1/topics", `{"name":"fits-admin","partitions":8,"replication_factor":1}`,
		"Content-Type", "application/json"); code != http.StatusCreated {
		t.Errorf("POST /v1/topics of 8 partitions = %d %s, want 201", code, body)
	}
	// 16 of 20 held: 8 more no longer fit.
	if code, _ := adminRequest(t, p, "POST", "/v1/topics", `{"name":"one-more","partitions":8,"replication_factor":1}`,
		"Content-Type", "application/json"); code != http.StatusBadRequest {
		t.Errorf("POST /v1/topics past the limit with 16 held = %d, want 400", code)
	}
}
