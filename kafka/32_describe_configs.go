package kafka

// DescribeConfigs, v0-v4.
//
// Topics (resource type 2) report every setting reeve understands, the
// topic's own value or the default, with its source (v1+). Brokers
// (resource type 4) report the broker-wide defaults clients ask for. Other
// resource types answer INVALID_REQUEST. Synonyms and documentation are
// not provided.

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeConfigs(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := s.cluster.Topic(rr.ResourceName)
			if !ok {
				res.ErrorCode = kerr.UnknownTopicOrPartition.Code
				res.ErrorMessage = errMessage(fmt.Errorf("unknown topic %q", rr.ResourceName))
				break
			}
			for _, name := range sortedKeys(topicConfigs) {
				if !want(name) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value = name, configValue(s, t, name)
				c.Source, c.IsDefault = kmsg.ConfigSourceDefaultConfig, true
				if _, set := t.Config[name]; set {
					c.Source, c.IsDefault = kmsg.ConfigSourceDynamicTopicConfig, false
				}
				res.Configs = append(res.Configs, c)
			}
		case kmsg.ConfigResourceTypeBroker:
			for _, kv := range s.brokerConfigs() {
				if !want(kv[0]) {
					continue
				}
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				v := kv[1]
				c.Name, c.Value, c.ReadOnly = kv[0], &v, true
				c.Source, c.IsDefault = kmsg.ConfigSourceStaticBrokerConfig, false
				res.Configs = append(res.Configs, c)
			}
		default:
			res.ErrorCode = kerr.InvalidRequest.Code
			res.ErrorMessage = errMessage(fmt.Errorf("resource type %d is not supported; reeve describes topics (2) and brokers (4)", rr.ResourceType))
		}
		resp.Resources = append(resp.Resources, res)
	}
	return resp
}

// brokerConfigs are the broker settings clients ask about, in Kafka's names.
func (s *Server) brokerConfigs() [][2]string {
	return [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(s.cluster.LocalNode()))},
		{"default.replication.factor", strconv.Itoa(int(s.cfg.DefaultReplicationFactor))},
		{"log.message.timestamp.after.max.ms", strconv.FormatInt(defaultTimestampAfterMaxMs, 10)},
		{"log.message.timestamp.before.max.ms", strconv.FormatInt(defaultTimestampBeforeMaxMs, 10)},
		{"log.message.timestamp.type", createTime},
		{"log.retention.bytes", strconv.FormatInt(s.logDefaults().RetentionBytes, 10)},
		{"log.retention.ms", millis(s.logDefaults().RetentionAge.Milliseconds())},
		{"log.roll.ms", millis(s.logDefaults().SegmentAge.Milliseconds())},
		{"log.segment.bytes", strconv.FormatInt(s.logDefaults().SegmentBytes, 10)},
		{"message.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes))},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions))},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes))},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
