package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// Node is the running node as the admin endpoint reads and acts on it.
type Node struct {
	Store     *raft.Store
	Elections Elections
	Decisions *policy.DecisionLog // the node's election records
	Liveness  *policy.Liveness    // heartbeats: who is alive
	Policies  *policy.Rules
	// Metrics is the set every part of the node writes its metrics into,
	// served at /metrics with the state read at scrape time.
	Metrics *metrics.Set
	// EventsPublished counts the events NATS confirmed; nil with events
	// off.
	EventsPublished func() uint64
	// LeaderTimeout is how long a node may go without a heartbeat before
	// it counts as dead (election.leader_timeout).
	LeaderTimeout time.Duration
	Version       string
	Log           *slog.Logger
}

// Elections is what the admin API needs of the node's election machinery.
type Elections interface {
	// ElectTo elects node to lead partition p of topic t (0: the policy's
	// choice) as a manual election, and records it.
	ElectTo(ctx context.Context, t raft.Topic, p raft.Partition, node uint64) (policy.DecisionRecord, error)
	// LogEndOffsets asks the replicas of parts where their logs end.
	policy.OffsetSource
}

// Server is the admin endpoint, bound and ready to serve.
type Server struct {
	n    Node
	ln   net.Listener
	http *http.Server
}

// Listen binds the admin endpoint to addr; Serve serves it.
func Listen(addr string, n Node) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w (set admin.listen to a free address)", addr, err)
	}
	s := &Server{n: n, ln: ln}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the endpoint's routes, compressed for clients that accept
// gzip.
func (s *Server) Handler() http.Handler { return gzipped(s.routes()) }

// Serve answers requests until Close; it returns nil after Close.
func (s *Server) Serve() error {
	if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve on %s: %w", s.Addr(), err)
	}
	return nil
}

// Close stops accepting, lets requests in flight finish until ctx ends,
// then closes what is left.
func (s *Server) Close(ctx context.Context) {
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	s.ln.Close() // when Serve never ran
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
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
	writeJSON(w, status, api.Error{Error: err.Error()})
}

var errBadRequest = errors.New("bad request")

func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 15*time.Second)
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
		if err := s.n.Store.Barrier(ctx, g); err != nil {
			return fmt.Errorf("%w; add ?stale=true to read this node's possibly stale view", err)
		}
	}
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.n.Store.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: fmt.Sprintf("node %d has not joined the cluster yet", s.n.Store.NodeID())})
		return
	}
	w.Write([]byte("ready\n"))
}
