package kafka

// CreateTopics, v0-v7.
//
// Topics are created through Raft with replicas placed over the live nodes;
// -1 partitions or replication factor take the configured defaults (v4+).
// Manual replica assignment is refused with INVALID_REQUEST. Settings are
// checked against the ones reeve understands (INVALID_CONFIG otherwise).
// A creation that would place more partition replicas on a node than
// kafka.max_partitions is POLICY_VIOLATION (partition_limit.go), also
// with validate_only, which checks without creating. v5+ answers with the topic's
// partition count, replication factor and settings; v7 with its id.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleCreateTopics(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := s.clientTimeout(req.TimeoutMillis)
	defer cancel()
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		t, err := s.createTopic(ctx, rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode, st.ErrorMessage = errorCode(err), errMessage(err)
			st.NumPartitions, st.ReplicationFactor = -1, -1
		} else {
			st.TopicID = t.ID
			st.NumPartitions, st.ReplicationFactor = int32(len(t.Partitions)), t.ReplicationFactor
			for k := range topicConfigs {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name, c.Value = k, configValue(s, t, k)
				c.Source = int8(kmsg.ConfigSourceDefaultConfig)
				if _, set := t.Config[k]; set {
					c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
				}
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// maxPartitions bounds one topic, so a typo cannot ask the cluster for
// billions of partitions.
const maxPartitions = 100_000

func (s *Server) createTopic(ctx context.Context, rt kmsg.CreateTopicsRequestTopic, validateOnly bool) (Topic, error) {
	if len(rt.ReplicaAssignment) > 0 {
		return Topic{}, fmt.Errorf("%w: manual replica assignment is not supported; give a replication factor", kerr.InvalidRequest)
	}
	spec := TopicSpec{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, Config: map[string]string{}}
	if spec.Partitions == -1 {
		spec.Partitions = s.cfg.DefaultPartitions
	}
	if spec.ReplicationFactor == -1 {
		spec.ReplicationFactor = min(s.cfg.DefaultReplicationFactor, int16(max(s.cluster.LiveNodes(), 1)))
	}
	if spec.Partitions <= 0 || spec.Partitions > maxPartitions {
		return Topic{}, fmt.Errorf("%w: %d partitions; use 1 to %d", kerr.InvalidPartitions, spec.Partitions, maxPartitions)
	}
	if spec.ReplicationFactor <= 0 {
		return Topic{}, fmt.Errorf("%w: replication factor %d; use 1 or more", kerr.InvalidReplicationFactor, spec.ReplicationFactor)
	}
	if int(spec.ReplicationFactor) > s.cluster.LiveNodes() {
		return Topic{}, fmt.Errorf("%w: replication factor %d but only %d live node(s)", kerr.InvalidReplicationFactor, spec.ReplicationFactor, s.cluster.LiveNodes())
	}
	for _, c := range rt.Configs {
		if c.Value != nil {
			spec.Config[c.Name] = *c.Value
		}
	}
	if err := checkTopicConfig(spec.Config); err != nil {
		return Topic{}, err
	}
	if err := s.CheckNewReplicas(spec.Partitions, spec.ReplicationFactor); err != nil {
		return Topic{}, err
	}
	if validateOnly {
		if _, exists := s.cluster.Topic(spec.Name); exists {
			return Topic{}, fmt.Errorf("%w: topic %q exists", kerr.TopicAlreadyExists, spec.Name)
		}
		t := Topic{Name: spec.Name, ReplicationFactor: spec.ReplicationFactor, Config: spec.Config, Partitions: make([]Partition, spec.Partitions)}
		return t, nil
	}
	t, err := s.cluster.CreateTopic(ctx, spec)
	if err != nil {
		return Topic{}, err
	}
	s.log.Info("kafka: topic created", "topic", t.Name, "partitions", len(t.Partitions), "replication_factor", t.ReplicationFactor)
	s.parts.refresh()
	return t, nil
}

// configValue is a topic's value for a setting, or the default.
func configValue(s *Server, t Topic, name string) *string {
	if v, ok := t.Config[name]; ok {
		return &v
	}
	if name == "min.insync.replicas" { // its default depends on the replication factor
		v := strconv.Itoa(minInsync(&t))
		return &v
	}
	v := topicConfigs[name].def(s)
	return &v
}
