package kafka

// Metadata, v0-v12.
//
// Brokers are the active nodes of the Raft registry with their advertised
// Kafka addresses. v0 asks for every topic with an empty list; v1+ with a
// null one. Unknown topics are created when auto-creation is on and the
// request allows it (always before v4, as Kafka did). Topic ids from v10,
// lookups by id from v12; leader epochs from v7; offline replicas from v5.
// A partition without a leader answers LEADER_NOT_AVAILABLE with leader -1.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleMetadata(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	for _, b := range s.cluster.Brokers() {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = b.ID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	id := s.cluster.ClusterID()
	resp.ClusterID = &id
	resp.ControllerID = s.cluster.ControllerID()
	resp.AuthorizedOperations = math.MinInt32

	all := req.Topics == nil || req.Version == 0 && len(req.Topics) == 0
	if all {
		for _, t := range s.cluster.Topics() {
			resp.Topics = append(resp.Topics, metadataTopic(&t, 0))
		}
		return resp
	}
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	for _, rt := range req.Topics {
		var t Topic
		var ok bool
		switch {
		case rt.Topic != nil:
			t, ok = s.cluster.Topic(*rt.Topic)
			if !ok && autoCreate {
				if created, err := s.autoCreate(ctx, *rt.Topic); err == nil {
					t, ok = *created, true
				} else {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic, mt.ErrorCode = rt.Topic, autoCreateError(err, kerr.LeaderNotAvailable)
					resp.Topics = append(resp.Topics, mt)
					continue
				}
			}
		default:
			var tp *Topic
			tp, ok = s.parts.topicByID(rt.TopicID)
			if ok {
				t = *tp
			}
		}
		if !ok {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID = rt.Topic, rt.TopicID
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				mt.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopic(&t, 0))
	}
	return resp
}

func metadataTopic(t *Topic, code int16) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID, mt.ErrorCode = &name, t.ID, code
	mt.AuthorizedOperations = math.MinInt32
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.Index, p.Leader, p.LeaderEpoch
		mp.Replicas, mp.ISR, mp.OfflineReplicas = p.Replicas, p.ISR, p.Offline
		if mp.OfflineReplicas == nil {
			mp.OfflineReplicas = []int32{}
		}
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// autoCreateError is the code a client gets for a topic its request would
// have created but could not: a creation that could not commit in time (a
// node still joining its cluster, a Raft election) is retry, which clients
// need said as the code they retry on for that request (Metadata:
// LEADER_NOT_AVAILABLE, as Kafka answers for a topic being created;
// Produce: UNKNOWN_TOPIC_OR_PARTITION). librdkafka fails a message at once
// on REQUEST_TIMED_OUT there. Other failures keep their own code.
func autoCreateError(err error, retry *kerr.Error) int16 {
	if code := errorCode(err); code != kerr.RequestTimedOut.Code {
		return code
	}
	return retry.Code
}

// autoCreate creates a topic a client named, with the configured defaults;
// the replication factor is lowered to the live node count so a one-node
// site still works with the default of 3.
func (s *Server) autoCreate(ctx context.Context, name string) (*Topic, error) {
	rf := min(s.cfg.DefaultReplicationFactor, int16(max(s.cluster.LiveNodes(), 1)))
	if err := s.CheckNewReplicas(s.cfg.DefaultPartitions, rf); err != nil {
		return nil, err
	}
	t, err := s.cluster.CreateTopic(ctx, TopicSpec{Name: name, Partitions: s.cfg.DefaultPartitions, ReplicationFactor: rf})
	if err != nil {
		var ke *kerr.Error
		if isKerr(err, &ke) && ke == kerr.TopicAlreadyExists { // created by someone else meanwhile
			if t, ok := s.parts.topic(name); ok {
				return t, nil
			}
		}
		return nil, err
	}
	s.log.Info("kafka: auto-created topic", "topic", name, "partitions", s.cfg.DefaultPartitions, "replication_factor", rf)
	s.parts.refresh()
	return &t, nil
}
