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
	// Partitions refuses topics past the partition limit; nil checks none.
	Partitions PartitionLimit
	Decisions  *policy.DecisionLog // the node's election records
	Liveness   *policy.Liveness    // heartbeats: who is alive
	Policies   *policy.Rules
	// Metrics is the set every part of the node writes its metrics into,
	// served at /metrics with the state read at scrape time.
	Metrics *metrics.Set
	// EventsPublished counts the events NATS confirmed; nil with events
	// off.
	EventsPublished func() uint64
	// StorageFailures lists, a line each, the partitions whose log failed
	// on this node (nil: none); /readyz reports them.
	StorageFailures func() []string
	// LeaderTimeout is how long a node may go without a heartbeat before
	// it counts as dead (election.leader_timeout).
	LeaderTimeout time.Duration
	Version       string
	Log           *slog.Logger

	// Token is the bearer token requests must carry (admin.token_file's);
	// "" requires none. See guard.go for which requests need it.
	Token string
	// PublicReads leaves GET requests open without the token.
	PublicReads bool
	// AllowedHosts are the names, besides the listen address's host,
	// localhost and loopback addresses, that a request's Host header and
	// a browser's Origin may carry.
	AllowedHosts []string
}

// PartitionLimit checks a topic creation against the partition replicas
// each node may hold (kafka.max_partitions), as the Kafka API's
// CreateTopics does; 0 partitions or replication factor mean the defaults.
type PartitionLimit interface {
	CheckNewTopic(partitions int32, replicationFactor int16) error
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
	n     Node
	ln    net.Listener
	http  *http.Server
	guard *guard // who may ask what (guard.go)
}

// Listen binds the admin endpoint to addr; Serve serves it.
func Listen(addr string, n Node) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w (set admin.listen to a free address)", addr, err)
	}
	s := &Server{n: n, ln: ln, guard: newGuard(addr, n)}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // a body is 1 MiB at most
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.Log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// longestRequest is the most time a handler gives its Raft work: adding
// or removing a node waits up to 60 s (handlers.go).
const longestRequest = 60 * time.Second

// writeTimeout bounds a request from the end of its headers to the end of
// its answer: the longest request, and 15 s to write the answer.
const writeTimeout = longestRequest + 15*time.Second

// SetToken replaces the token requests must carry ("" requires none), as a
// reload that re-read admin.token_file does; requests after it are checked
// against the new one.
func (s *Server) SetToken(token string) { s.guard.setToken(token) }

// Addr is the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Handler is the endpoint's routes behind its guard (Host, browser and
// token checks, guard.go), compressed for clients that accept gzip.
func (s *Server) Handler() http.Handler { return s.guard.wrap(gzipped(s.routes())) }

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

// route is one pattern the endpoint serves and its handler.
type route struct {
	pattern string
	h       http.HandlerFunc
}

// routeList is every route of the endpoint; docs/admin-api.md documents
// each. The guard's tests walk it, so a new route is covered by them.
func (s *Server) routeList() []route {
	return []route{
		{"GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }},
		{"GET /readyz", s.readyz},
		{"GET /livez", livez},
		{"GET /metrics", s.serveMetrics},
		{"GET /v1/cluster", s.getCluster},
		{"GET /v1/topics", s.listTopics},
		{"POST /v1/topics", s.createTopic},
		{"GET /v1/topics/{name}", s.describeTopic},
		{"DELETE /v1/topics/{name}", s.deleteTopic},
		{"POST /v1/topics/{name}/partitions/{partition}/leader", s.elect},
		{"POST /v1/topics/{name}/partitions/{partition}/elect", s.elect},
		{"GET /v1/elections", s.listElections},
		{"GET /v1/status", s.getStatus},
		{"GET /v1/partitions", s.listPartitions},
		{"GET /v1/policies", s.listPolicies},
		{"GET /v1/nodes", s.listNodes},
		{"POST /v1/nodes", s.addNode},
		{"DELETE /v1/nodes/{id}", s.removeNode},
		{"GET /{$}", statusPage.ServeHTTP}, // the status page (statuspage.go)
		{"GET /ui/", statusPage.ServeHTTP},
	}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range s.routeList() {
		mux.HandleFunc(r.pattern, r.h)
	}
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
		errors.Is(err, raft.ErrStale), errors.Is(err, raft.ErrLastNode), errors.Is(err, raft.ErrNodeUnreachable):
		status = http.StatusConflict
	case errors.Is(err, raft.ErrUnknownTopic), errors.Is(err, raft.ErrUnknownNode), errors.Is(err, raft.ErrUnknownPartition):
		status = http.StatusNotFound
	case errors.Is(err, raft.ErrInvalidTopic), errors.Is(err, raft.ErrReplicationFactor), errors.Is(err, raft.ErrInvalidUpdate),
		errors.Is(err, errBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, raft.ErrNotBootstrapped), errors.Is(err, context.DeadlineExceeded), errors.Is(err, raft.ErrClosed),
		raft.IsTimeout(err):
		// The cluster could not commit in time (no quorum, a leader
		// election): the request may succeed if tried again.
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

// readyz answers 200 "ready" once the node has joined and serves
// clients. A node with failed partition logs still serves its other
// partitions, so it stays ready, and lists them after a "degraded:" line.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if !s.n.Store.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: fmt.Sprintf("node %d has not joined the cluster yet", s.n.Store.NodeID())})
		return
	}
	w.Write([]byte("ready\n"))
	if s.n.StorageFailures == nil {
		return
	}
	if failed := s.n.StorageFailures(); len(failed) > 0 {
		fmt.Fprintf(w, "degraded: %d partition log(s) failed on this node; they take no writes until it restarts:\n", len(failed))
		for _, f := range failed {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}
