package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// The admin endpoint's JSON API. The CLI is its first client; its shapes
// are documented in docs/admin-api.md.

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /livez", livez)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	mux.HandleFunc("GET /v1/cluster", s.getCluster)
	mux.HandleFunc("GET /v1/topics", s.listTopics)
	mux.HandleFunc("POST /v1/topics", s.createTopic)
	mux.HandleFunc("GET /v1/topics/{name}", s.describeTopic)
	mux.HandleFunc("DELETE /v1/topics/{name}", s.deleteTopic)
	mux.HandleFunc("POST /v1/topics/{name}/partitions/{partition}/leader", s.elect)
	mux.HandleFunc("POST /v1/topics/{name}/partitions/{partition}/elect", s.elect)
	mux.HandleFunc("GET /v1/elections", s.listElections)
	mux.HandleFunc("GET /v1/status", s.getStatus)
	mux.HandleFunc("GET /v1/partitions", s.listPartitions)
	mux.HandleFunc("GET /v1/policies", s.listPolicies)
	mux.HandleFunc("GET /v1/nodes", s.listNodes)
	mux.HandleFunc("POST /v1/nodes", s.addNode)
	mux.HandleFunc("DELETE /v1/nodes/{id}", s.removeNode)
	mux.Handle("GET /{$}", statusPage) // the status page (statuspage.go)
	mux.Handle("GET /ui/", statusPage)
	return mux
}

// apiError is the body of every non-2xx answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	printJSON(w, v)
}

// writeError maps store errors to HTTP statuses; the message is the error's
// own text, which already says what to do.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, raft.ErrTopicExists), errors.Is(err, raft.ErrNodeExists), errors.Is(err, raft.ErrNodeRemoved),
		errors.Is(err, raft.ErrStale):
		status = http.StatusConflict
	case errors.Is(err, raft.ErrUnknownTopic), errors.Is(err, raft.ErrUnknownNode), errors.Is(err, raft.ErrUnknownPartition):
		status = http.StatusNotFound
	case errors.Is(err, raft.ErrInvalidTopic), errors.Is(err, raft.ErrReplicationFactor), errors.Is(err, raft.ErrInvalidUpdate),
		errors.Is(err, errBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, raft.ErrNotBootstrapped), errors.Is(err, context.DeadlineExceeded), errors.Is(err, raft.ErrClosed):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

var errBadRequest = errors.New("bad request")

func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.store.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: fmt.Sprintf("node %d has not joined the cluster yet", s.store.NodeID())})
		return
	}
	w.Write([]byte("ready\n"))
}

// ClusterInfo is the body of GET /v1/cluster.
type ClusterInfo struct {
	Cluster         string      `json:"cluster"`
	NodeID          uint64      `json:"node_id"`
	Version         string      `json:"version"`
	Ready           bool        `json:"ready"`
	PartitionGroups int         `json:"partition_groups"`
	Nodes           []raft.Node `json:"nodes"`
	Groups          []GroupInfo `json:"groups"`
}

// GroupInfo describes one Raft group as this node sees it.
type GroupInfo struct {
	ID           uint64 `json:"id"`
	Leader       uint64 `json:"leader"` // 0 when unknown
	AppliedIndex uint64 `json:"applied_index"`
	Partitions   int    `json:"partitions"`
	raft.GroupLog
	// Outbox is the group's event outbox: pending, published mark, drops.
	Outbox *raft.OutboxStatus `json:"outbox,omitempty"`
}

func (s *Server) getCluster(w http.ResponseWriter, _ *http.Request) {
	st := s.store
	info := ClusterInfo{
		Cluster: st.ClusterName(), NodeID: st.NodeID(), Version: Version, Ready: st.Ready(),
		PartitionGroups: st.PartitionGroups(), Nodes: st.Nodes(),
	}
	for _, g := range st.Groups() {
		leader, _ := st.GroupLeader(g)
		gi := GroupInfo{ID: g, Leader: leader, AppliedIndex: st.AppliedIndex(g)}
		gi.GroupLog, _ = st.Log(g)
		if ob, ok := st.Outbox(g); ok {
			gi.Outbox = &ob
		}
		if g != raft.ClusterGroup {
			gi.Partitions = len(st.GroupPartitions(g))
		}
		info.Groups = append(info.Groups, gi)
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) listTopics(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, raft.ClusterGroup); err != nil {
		writeError(w, err)
		return
	}
	topics := s.store.Topics()
	if topics == nil {
		topics = []raft.Topic{}
	}
	writeJSON(w, http.StatusOK, topics)
}

// consistent makes the read that follows linearizable unless the caller
// asked for ?stale=true (useful when the node has lost its quorum).
func (s *Server) consistent(r *http.Request, groups ...uint64) error {
	if r.URL.Query().Get("stale") == "true" {
		return nil
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	for _, g := range groups {
		if err := s.store.Barrier(ctx, g); err != nil {
			return fmt.Errorf("%w; add ?stale=true to read this node's possibly stale view", err)
		}
	}
	return nil
}

// CreateTopicRequest is the body of POST /v1/topics.
type CreateTopicRequest struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Config            map[string]string `json:"config,omitempty"`
}

func (s *Server) createTopic(w http.ResponseWriter, r *http.Request) {
	var req CreateTopicRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, fmt.Errorf("%w: body: %v", errBadRequest, err))
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	t, err := s.store.CreateTopic(ctx, raft.TopicSpec{Name: req.Name, Partitions: req.Partitions,
		ReplicationFactor: req.ReplicationFactor, Config: req.Config})
	if err != nil && t.Name == "" {
		writeError(w, err)
		return
	}
	if err != nil {
		// Recorded; the cluster leader's reconciler finishes the rest.
		s.log.Warn("topic created, partitions still being created", "topic", t.Name, "err", err)
	}
	s.log.Info("topic created", "topic", t.Name, "topic_id", t.ID.String(), "partitions", t.Partitions,
		"replication_factor", t.ReplicationFactor)
	writeJSON(w, http.StatusCreated, t)
}

// TopicDescription is the body of GET /v1/topics/{name}.
type TopicDescription struct {
	raft.Topic
	PartitionStates []PartitionState `json:"partition_states"`
}

// PartitionState is one partition's replicated state and its Raft group.
type PartitionState struct {
	raft.Partition
	Group uint64 `json:"group"`
}

func (s *Server) describeTopic(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, s.store.Groups()...); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	t, ok := s.store.Topic(name)
	if !ok {
		writeError(w, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, name))
		return
	}
	d := TopicDescription{Topic: t, PartitionStates: []PartitionState{}}
	for _, p := range s.store.Partitions(t) {
		d.PartitionStates = append(d.PartitionStates, PartitionState{Partition: p, Group: s.store.GroupOf(t.ID, p.Partition)})
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	t, err := s.store.DeleteTopic(ctx, r.PathValue("name"))
	if err != nil && t.Name == "" {
		writeError(w, err)
		return
	}
	if err != nil {
		// Deleted; the cluster leader's reconciler drops what is left.
		s.log.Warn("topic deleted, partitions still being dropped", "topic", t.Name, "err", err)
	}
	s.log.Info("topic deleted", "topic", t.Name, "topic_id", t.ID.String())
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r, raft.ClusterGroup); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.store.Nodes())
}

// AddNodeRequest is the body of POST /v1/nodes.
type AddNodeRequest struct {
	ID          uint64 `json:"id"`
	RaftAddress string `json:"raft_address"`
}

func (s *Server) addNode(w http.ResponseWriter, r *http.Request) {
	var req AddNodeRequest
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
	if err := s.store.AddNode(ctx, req.ID, req.RaftAddress); err != nil {
		writeError(w, err)
		return
	}
	n, _ := s.store.Node(req.ID)
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, fmt.Errorf("%w: node id %q: want a number, 1 or higher", errBadRequest, r.PathValue("id")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	if err := s.store.RemoveNode(ctx, id); err != nil {
		writeError(w, err)
		return
	}
	n, _ := s.store.Node(id)
	writeJSON(w, http.StatusOK, n)
}

// ElectRequest is the body of POST /v1/topics/{name}/partitions/{p}/elect
// (and of .../leader, its older name).
type ElectRequest struct {
	To     uint64 `json:"to"`     // the node to elect; 0 lets the policy choose
	Leader uint64 `json:"leader"` // the same, as .../leader takes it
}

// elect runs a manual election for one partition: to the given node, which
// must be an alive in-sync replica, or to the policy's choice (the first
// alive in-sync replica in preference order). It is a conditional Raft
// commit and goes into the decision log.
func (s *Server) elect(w http.ResponseWriter, r *http.Request) {
	var req ElectRequest
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
		if err := s.consistent(r, s.store.Groups()...); err != nil {
			writeError(w, err)
			return
		}
		var ok bool
		if t, ok = s.store.Topic(name); !ok {
			writeError(w, fmt.Errorf("%w: %q", raft.ErrUnknownTopic, name))
			return
		}
		if p, ok = s.store.Partition(t.ID, int32(part)); !ok {
			writeError(w, fmt.Errorf("%w: %s-%d", raft.ErrUnknownPartition, name, part))
			return
		}
		rec, err = s.controller.ElectTo(ctx, partitionState(p, allowsUnclean(t)), to)
		// A commit that timed out (say the partition's Raft group was
		// electing its own leader) may yet apply: read the partition
		// again and retry from what it is, within the request's time.
		if !raft.IsTimeout(err) || ctx.Err() != nil {
			break
		}
		s.log.Info("manual election: commit timed out; reading the partition again", "topic", name, "partition", part)
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		if errors.Is(err, policy.ErrIneligible) {
			err = fmt.Errorf("%w: %v", raft.ErrInvalidUpdate, err)
		}
		writeError(w, err)
		return
	}
	got, _ := s.store.Partition(t.ID, p.Partition)
	if rec.Committed && rec.To != got.Leader {
		got.Leader, got.LeaderEpoch = rec.To, rec.LeaderEpoch // our replica has not applied it yet
	}
	writeJSON(w, http.StatusOK, got)
}

// listElections returns this node's decision log, oldest first.
func (s *Server) listElections(w http.ResponseWriter, _ *http.Request) {
	recs := s.decisions.Records()
	if recs == nil {
		recs = []policy.DecisionRecord{}
	}
	writeJSON(w, http.StatusOK, recs)
}
