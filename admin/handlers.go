package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// The JSON API's handlers for topics, nodes and elections (GET
// /v1/cluster is in cluster.go, /v1/status in status.go, /v1/partitions in
// partitions.go); docs/admin-api.md documents each.

func (s *Server) listTopics(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, raft.ClusterGroup); err != nil {
		writeError(w, err)
		return
	}
	topics := []api.Topic{}
	for _, t := range s.n.Store.Topics() {
		topics = append(topics, apiTopic(t))
	}
	writeJSON(w, http.StatusOK, topics)
}

func (s *Server) createTopic(w http.ResponseWriter, r *http.Request) {
	var req api.CreateTopicRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errBadRequest, err))
		return
	}
	if s.n.Partitions != nil {
		if err := s.n.Partitions.CheckNewTopic(req.Partitions, req.ReplicationFactor); err != nil {
			writeError(w, fmt.Errorf("%w: %v", errBadRequest, err))
			return
		}
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	t, err := s.n.Store.CreateTopic(ctx, raft.TopicSpec{Name: req.Name, Partitions: req.Partitions,
		ReplicationFactor: req.ReplicationFactor, Config: req.Config})
	if err != nil && t.Name == "" {
		writeError(w, err)
		return
	}
	if err != nil {
		// Recorded; the cluster leader's reconciler finishes the rest.
		s.n.Log.Warn("topic created, partitions still being created", "topic", t.Name, "err", err)
	}
	s.n.Log.Info("topic created", "topic", t.Name, "topic_id", t.ID.String(), "partitions", t.Partitions,
		"replication_factor", t.ReplicationFactor)
	writeJSON(w, http.StatusCreated, apiTopic(t))
}

func (s *Server) describeTopic(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, s.n.Store.Groups()...); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	t, ok := s.n.Store.Topic(name)
	if !ok {
		writeError(w, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, name))
		return
	}
	writeJSON(w, http.StatusOK, topicDescription(topicPartitions{Topic: t, Partitions: s.n.Store.Partitions(t)}, s.n.Store.GroupOf))
}

// topicDescription is the body of GET /v1/topics/{name}: the topic and
// each of its partitions in tp's order, with its Raft group as groupOf
// (raft.Store.GroupOf) gives it.
func topicDescription(tp topicPartitions, groupOf func(id raft.TopicID, partition int32) uint64) api.TopicDescription {
	d := api.TopicDescription{Topic: apiTopic(tp.Topic), PartitionStates: make([]api.PartitionState, 0, len(tp.Partitions))}
	for _, p := range tp.Partitions {
		d.PartitionStates = append(d.PartitionStates, apiPartitionState(p, groupOf(p.TopicID, p.Partition)))
	}
	return d
}

func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	t, err := s.n.Store.DeleteTopic(ctx, r.PathValue("name"))
	if err != nil && t.Name == "" {
		writeError(w, err)
		return
	}
	if err != nil {
		// Deleted; the cluster leader's reconciler drops what is left.
		s.n.Log.Warn("topic deleted, partitions still being dropped", "topic", t.Name, "err", err)
	}
	s.n.Log.Info("topic deleted", "topic", t.Name, "topic_id", t.ID.String())
	writeJSON(w, http.StatusOK, apiTopic(t))
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, raft.ClusterGroup); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, apiNodes(s.n.Store.Nodes()))
}

func (s *Server) addNode(w http.ResponseWriter, r *http.Request) {
	var req api.AddNodeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errBadRequest, err))
		return
	}
	if req.ID == 0 || req.RaftAddress == "" {
		writeError(w, fmt.Errorf("%w: give the new node's id (1 or higher) and raft_address", errBadRequest))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := s.n.Store.AddNode(ctx, req.ID, req.RaftAddress, req.Force); err != nil {
		writeError(w, err)
		return
	}
	n, _ := s.n.Store.Node(req.ID)
	writeJSON(w, http.StatusOK, apiNode(n))
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, fmt.Errorf("%w: node id %q: want a number, 1 or higher", errBadRequest, r.PathValue("id")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := s.n.Store.RemoveNode(ctx, id); err != nil {
		writeError(w, err)
		return
	}
	n, _ := s.n.Store.Node(id)
	writeJSON(w, http.StatusOK, apiNode(n))
}

// elect runs a manual election for one partition: to the given node, which
// must be an alive in-sync replica, or to the policy's choice (the first
// alive in-sync replica in preference order). It is a conditional Raft
// commit and goes into the decision log.
func (s *Server) elect(w http.ResponseWriter, r *http.Request) {
	var req api.ElectRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errBadRequest, err))
		return
	}
	to := max(req.To, req.Leader)
	name := r.PathValue("name")
	part, err := strconv.ParseInt(r.PathValue("partition"), 10, 32)
	if err != nil {
		writeError(w, fmt.Errorf("%w: partition %q: want a number", errBadRequest, r.PathValue("partition")))
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	var t raft.Topic
	var p raft.Partition
	var rec policy.DecisionRecord
	for {
		if err := s.consistent(r, s.n.Store.Groups()...); err != nil {
			writeError(w, err)
			return
		}
		var ok bool
		if t, ok = s.n.Store.Topic(name); !ok {
			writeError(w, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, name))
			return
		}
		if p, ok = s.n.Store.Partition(t.ID, int32(part)); !ok {
			writeError(w, fmt.Errorf("%w: %s-%d", raft.ErrUnknownPartition, name, part))
			return
		}
		rec, err = s.n.Elections.ElectTo(ctx, t, p, to)
		// A commit that timed out (say the partition's Raft group was
		// electing its own leader) may yet apply: read the partition
		// again and retry from what it is, within the request's time.
		if !raft.IsTimeout(err) || ctx.Err() != nil {
			break
		}
		s.n.Log.Info("manual election: commit timed out; reading the partition again", "topic", name, "partition", part)
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		if errors.Is(err, policy.ErrIneligible) {
			err = fmt.Errorf("%w: %v", raft.ErrInvalidUpdate, err)
		}
		writeError(w, err)
		return
	}
	got, _ := s.n.Store.Partition(t.ID, p.Partition)
	if rec.Committed && rec.To != got.Leader {
		got.Leader, got.LeaderEpoch = rec.To, rec.LeaderEpoch // our replica has not applied it yet
	}
	writeJSON(w, http.StatusOK, apiPartition(got))
}

// listElections returns this node's decision log, oldest first.
func (s *Server) listElections(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, apiElections(s.n.Decisions.Records()))
}

// listPolicies answers GET /v1/policies: the rules, what each runs, and
// how often first-isr stood in for a failed policy.
func (s *Server) listPolicies(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, apiPolicies(s.n.Policies.Info(), s.n.Decisions.Fallbacks()))
}
