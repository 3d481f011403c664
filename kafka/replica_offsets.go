package kafka

// The election controller's side of ListOffsets: where each replica's log
// ends. The controller is generally not a replica of the partitions it
// elects leaders for, so it asks each replica's node with one ListOffsets
// for many partitions, replica id -2 and timestamp -1 (latest), which a
// follower answers from its own log with its log end offset (see
// 02_list_offsets.go).

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// replicaOffsetsVer is the ListOffsets version nodes ask each other at: the
// first with the current leader epoch field, not flexible.
const replicaOffsetsVer = 4

// ReplicaLogEndOffsets returns the log end offset of node's local replica of
// each partition in parts, as node sees it now. It sends node one
// ListOffsets request (replica id -2, latest) on a connection of its own,
// closed afterwards, so concurrent calls never wait for each other; for this
// node it reads the local logs without the network. ctx bounds the whole
// call, dial included: give it a deadline (without one a request may take
// up to 30 s).
//
// The map holds every partition node answered for. err is non-nil when the
// request failed (the map is then nil), or when some partitions were not
// answered: it then joins one error per such partition, wrapping the kerr
// error node answered with (kerr.NotLeaderForPartition for a partition node
// holds no replica of, kerr.UnknownTopicOrPartition for one it does not
// know yet).
func (s *Server) ReplicaLogEndOffsets(ctx context.Context, node int32, parts []TopicPartition) (map[TopicPartition]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := replicaOffsetsRequest(parts)
	if node == s.cluster.LocalNode() {
		return replicaOffsetsResult(parts, handleListOffsets(s, nil, req).(*kmsg.ListOffsetsResponse))
	}
	for _, b := range s.cluster.Brokers() {
		if b.ID == node {
			m, err := s.replicaOffsetsAt(ctx, node, b.address(), req, parts)
			if err != nil && m == nil {
				return nil, fmt.Errorf("kafka: log end offsets from node %d: %w", node, err)
			}
			return m, err
		}
	}
	return nil, fmt.Errorf("kafka: log end offsets from node %d: no such active node", node)
}

// replicaOffsetsAt asks node, listening at addr.
func (s *Server) replicaOffsetsAt(ctx context.Context, node int32, addr string, req *kmsg.ListOffsetsRequest, parts []TopicPartition) (map[TopicPartition]int64, error) {
	c := s.peerTo(node, addr, fmt.Sprintf("reeve-controller-%d", s.cluster.LocalNode()))
	defer c.close()
	r, err := c.request(ctx, req, replicaOffsetsVer)
	if err != nil {
		return nil, err
	}
	return replicaOffsetsResult(parts, r.(*kmsg.ListOffsetsResponse))
}

// replicaOffsetsRequest asks for the latest offset of each distinct
// partition, as a replica (-2) with no leader epoch to check.
func replicaOffsetsRequest(parts []TopicPartition) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = replicaOffsetsVer
	req.ReplicaID = debuggingReplicaID
	topic := map[string]int{}
	seen := map[TopicPartition]bool{}
	for _, tp := range parts {
		if seen[tp] {
			continue
		}
		seen[tp] = true
		i, ok := topic[tp.Topic]
		if !ok {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = tp.Topic
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			topic[tp.Topic] = i
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = tp.Partition, -1, -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	return req
}

// replicaOffsetsResult picks the asked partitions' offsets out of an answer.
func replicaOffsetsResult(parts []TopicPartition, resp *kmsg.ListOffsetsResponse) (map[TopicPartition]int64, error) {
	asked := make(map[TopicPartition]bool, len(parts))
	for _, tp := range parts {
		asked[tp] = true
	}
	codes := map[TopicPartition]int16{}
	out := make(map[TopicPartition]int64, len(parts))
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := TopicPartition{rt.Topic, rp.Partition}
			switch {
			case !asked[tp]:
			case rp.ErrorCode != 0:
				codes[tp] = rp.ErrorCode
			default:
				out[tp] = rp.Offset
			}
		}
	}
	var errs []error
	for _, tp := range parts {
		if _, ok := out[tp]; ok || !asked[tp] {
			continue
		}
		asked[tp] = false // report a partition asked twice once
		if code, ok := codes[tp]; ok {
			errs = append(errs, fmt.Errorf("%s-%d: %w", tp.Topic, tp.Partition, kerr.ErrorForCode(code)))
		} else {
			errs = append(errs, fmt.Errorf("%s-%d: not in the answer", tp.Topic, tp.Partition))
		}
	}
	return out, errors.Join(errs...)
}
