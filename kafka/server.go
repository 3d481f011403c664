package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// LogOptions are the partition logs' storage settings.
type LogOptions = storage.Options

// FsyncMode says when a partition log forces its writes to disk.
type FsyncMode = storage.FsyncMode

// ParseFsyncMode parses "always", "interval" or "never".
func ParseFsyncMode(s string) (FsyncMode, error) { return storage.ParseFsyncMode(s) }

// Config is what a Server needs; appliance fills it from the TOML file.
type Config struct {
	Listen string // host:port to bind
	// MaxRequestBytes caps one request frame; a larger length prefix closes
	// the connection before anything is allocated for it.
	MaxRequestBytes int32
	DataDir         string // partition logs live in DataDir/<topic>-<partition>-<topic id>

	AutoCreateTopics         bool
	DefaultPartitions        int32
	DefaultReplicationFactor int16

	// Log holds the storage defaults; topic configs override some of them.
	Log LogOptions
	// RequestTimeout bounds a Raft change made for a client (CreateTopics).
	RequestTimeout time.Duration
	// InitialRebalanceDelay is how long the first rebalance of an empty
	// group waits for more members (Kafka's
	// group.initial.rebalance.delay.ms, 3 s by default).
	InitialRebalanceDelay time.Duration
	// ReplicaLagTime is how long a follower may go without catching up
	// before the leader drops it from the ISR (default 10 s).
	ReplicaLagTime time.Duration
	// Heartbeats receives the heartbeats of other nodes; HeartbeatInterval
	// is how often this node sends its own (0: it sends none).
	Heartbeats        HeartbeatSink
	HeartbeatInterval time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// (Kafka's connections.max.idle.ms, 10 minutes by default).
	IdleTimeout time.Duration
	// MaxConnections caps the connections held at once (default 1000) and
	// MaxConnectionsPerIP those from one IP address (default 100, at most
	// MaxConnections); a connection past either is closed as soon as it is
	// accepted. Connections from other nodes count too.
	MaxConnections      int
	MaxConnectionsPerIP int
	// QueuedMaxRequestBytes is the budget of request bytes all connections
	// hold at once (default 128 MiB, at least MaxRequestBytes): memory is
	// taken from it as a request's bytes arrive, and a connection waits
	// before reading more while it is spent.
	QueuedMaxRequestBytes int64
	// MaxMessageBytes is the largest record batch a topic accepts, before
	// and after decompression, unless the topic's max.message.bytes says
	// otherwise (default 1048588, at most MaxRequestBytes).
	MaxMessageBytes int32
	// MaxPartitions caps the partition replicas a node may hold; creations
	// that would pass it are refused. 0 derives it from RLIMIT_NOFILE
	// (DerivePartitionLimit).
	MaxPartitions int
	// NodeCert, when set, turns on node-to-node TLS ([tls]): the listener
	// takes a connection that opens with a TLS handshake for another
	// node's, which must present a certificate from NodeCert.CAs naming a
	// node of ClusterName; only such a connection may fetch as a replica or
	// heartbeat as a node, and this node's own requests to other nodes go
	// over TLS with NodeCert.Cert (conns.go, peer.go). nil: node traffic
	// is plain.
	NodeCert    *config.NodeCert
	ClusterName string
	// SourceIP, when set, is the source address of this node's
	// connections to other nodes (heartbeats, replica fetches), so each
	// node is a distinct endpoint even when several share a host; nil lets
	// the kernel choose.
	SourceIP net.IP
	// OnStorageFailed, if set, is told (on its own goroutine) of each
	// partition whose log failed on this node (storage_failures.go).
	OnStorageFailed func(StorageFailure)

	Logger *slog.Logger
	// AcceptedHook, if set, runs on the accept loop after each accepted
	// connection, before it is served. Tests block in it to wedge the
	// acceptor; production leaves it nil.
	AcceptedHook func()
	// Metrics receives the listener's request, record and ISR metrics
	// (docs/metrics.md); nil keeps them in a set nobody reads.
	Metrics *metrics.Set
}

// Server is the Kafka listener of one node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	cluster  Cluster
	parts    *partitions
	groups   *groups
	replicas *replicas
	metrics  *serverMetrics
	budget   *budget      // request bytes held by all connections
	cutOff   *cutOffWatch // closes a channel when the Raft quorum is lost (cutoff.go)
	// partLimit is the partition replicas a node may hold; partLimitFrom
	// says where it comes from, for messages.
	partLimit     int
	partLimitFrom string
	nodeTLS       *nodeTLS // nil without [tls]

	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	perIP  map[string]int // connections held per remote IP, under mu
	closed bool
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New opens the node's partition logs directory; Serve starts listening.
func New(cfg Config, cluster Cluster) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 100 << 20
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.ReplicaLagTime <= 0 {
		cfg.ReplicaLagTime = 10 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 1000
	}
	if cfg.MaxConnectionsPerIP <= 0 {
		cfg.MaxConnectionsPerIP = 100
	}
	cfg.MaxConnectionsPerIP = min(cfg.MaxConnectionsPerIP, cfg.MaxConnections)
	if cfg.QueuedMaxRequestBytes <= 0 {
		cfg.QueuedMaxRequestBytes = 128 << 20
	}
	cfg.QueuedMaxRequestBytes = max(cfg.QueuedMaxRequestBytes, int64(cfg.MaxRequestBytes))
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 1048588 // Kafka's message.max.bytes: 1 MiB and a batch's log overhead
	}
	cfg.MaxMessageBytes = min(cfg.MaxMessageBytes, cfg.MaxRequestBytes)
	if cfg.DefaultPartitions <= 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.DefaultReplicationFactor <= 0 {
		cfg.DefaultReplicationFactor = 3
	}
	if cfg.NodeCert != nil && cfg.MaxRequestBytes >= tlsFirstByteFrame {
		return nil, fmt.Errorf("kafka: kafka.max_request_bytes %d is too large with [tls]: a request of %d bytes or more "+
			"starts with the byte of a TLS handshake, so node and client connections could not be told apart; use at most %d",
			cfg.MaxRequestBytes, tlsFirstByteFrame, tlsFirstByteFrame-1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		cluster: cluster,
		metrics: newServerMetrics(cfg.Metrics),
		budget:  newBudget(cfg.QueuedMaxRequestBytes, int64(cfg.MaxRequestBytes)),
		conns:   make(map[net.Conn]struct{}),
		perIP:   make(map[string]int),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.nodeTLS = newNodeTLS(cfg)
	s.partLimit, s.partLimitFrom = partitionLimit(cfg)
	s.log.Info("kafka: partition limit", "max_partitions", s.partLimit, "from", s.partLimitFrom)
	parts, err := newPartitions(cfg.DataDir, cfg.Log, cluster, s.log)
	if err != nil {
		cancel()
		return nil, err
	}
	s.parts = parts
	parts.onFail = s.storageFailed
	s.cutOff = newCutOffWatch(cluster.QuorumFresh)
	s.metrics.set.NewGauge("reeve_kafka_partitions_storage_failed", func() float64 { return float64(len(s.StorageFailures())) })
	s.metrics.set.NewGauge("reeve_kafka_connections", func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.conns))
	})
	s.metrics.set.NewGauge("reeve_kafka_request_bytes_queued", func() float64 { return float64(s.budget.inUse()) })
	s.groups = newGroups(s)
	s.replicas = newReplicas(s)
	parts.onChange = s.replicas.reconcile
	return s, nil
}

// Listen binds the configured address.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("kafka: listen on %s: %w (set kafka.listen to a free address)", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address (after Listen).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. After Close it returns at once.
func (s *Server) Serve() error {
	// Close may come first (a node closed as soon as it started); its Wait
	// must not miss the goroutines below, so they are counted under mu and
	// only while the server is open.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(4)
	if s.cfg.HeartbeatInterval > 0 {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if s.cfg.HeartbeatInterval > 0 {
		go func() {
			defer s.wg.Done()
			s.heartbeats(s.ctx, s.cfg.HeartbeatInterval)
		}()
	}
	go func() {
		defer s.wg.Done()
		s.parts.maintain(s.ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.cutOff.run(s.ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.replicas.maintainISR(s.ctx, s.cfg.ReplicaLagTime)
	}()
	go func() {
		defer s.wg.Done()
		s.groups.run(s.ctx.Done())
	}()
	var backoff acceptBackoff
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("kafka: accept: %w", err)
			}
			// Out of file descriptors, or another passing failure: ending
			// Serve would take the node down for what a moment's wait cures.
			s.metrics.acceptErrors.Inc()
			if !backoff.wait(s.ctx, s.log, err) {
				return nil
			}
			continue
		}
		backoff.reset()
		if s.cfg.AcceptedHook != nil {
			s.cfg.AcceptedHook()
		}
		ip := remoteIP(c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		if reason := s.admitLocked(ip); reason != "" {
			s.mu.Unlock()
			c.Close()
			s.metrics.refused(reason)
			backoff.refused(s.log, reason, ip, s.cfg)
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// clientTimeout is the context of a change a client asked for with its own
// timeout (admin requests carry one); 0 or less takes the server's.
func (s *Server) clientTimeout(millis int32) (context.Context, context.CancelFunc) {
	timeout := time.Duration(millis) * time.Millisecond
	if timeout <= 0 {
		timeout = s.cfg.RequestTimeout
	}
	return context.WithTimeout(s.ctx, timeout)
}

// MetadataChanged tells the server the cluster's metadata changed, so it
// opens logs for new partitions and deletes those of deleted topics.
func (s *Server) MetadataChanged() { s.parts.changed() }

// Close stops accepting, closes every connection and the partition logs.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.replicas.close()
	return s.parts.close()
}

// conn is one client connection's state.
type conn struct {
	net.Conn
	clientID   string
	remote     string
	closeAfter bool // an unanswered request failed: close to tell the client
	// node is the node a TLS connection's certificate names (classify),
	// 0 on a client's connection.
	node int32
}

// requestHeader is the part of a request before its body.
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

// minFrame is the smallest valid request: key, version, correlation id and
// a null client id.
const minFrame = 2 + 2 + 4 + 2

// serveConn answers one connection's requests in order. Kafka clients may
// pipeline; like Apache Kafka, reeve handles one request of a connection at
// a time, which keeps answers in order by construction.
func (s *Server) serveConn(nc net.Conn) {
	defer nc.Close()
	c := &conn{Conn: nc, remote: nc.RemoteAddr().String()}
	log := s.log.With("remote", c.remote)
	br, err := s.classify(c, bufio.NewReaderSize(nc, 32<<10))
	if err != nil {
		return // logged by classify, if worth it
	}
	nc = c.Conn // the TLS connection of a node
	if c.node != 0 {
		log = log.With("node_id", c.node)
	}
	bw := bufio.NewWriterSize(nc, 32<<10)
	var sizeBuf [4]byte
	for {
		nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			return // closed by the client, idle too long, or Close
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < minFrame || size > s.cfg.MaxRequestBytes {
			log.Warn("kafka: closing connection: request size out of range",
				"size", size, "max", s.cfg.MaxRequestBytes, "client_id", c.clientID)
			return
		}
		// The rest of a frame must follow promptly: a client that stalls
		// mid-request holds its part of the memory budget hostage.
		deadline := time.Now().Add(s.cfg.RequestTimeout)
		nc.SetReadDeadline(deadline)
		frame, held, pooled, err := s.readFrame(br, size, deadline)
		if err != nil {
			s.budget.release(held)
			log.Debug("kafka: connection closed mid-request", "size", size, "err", err)
			return
		}
		resp, hdr, err := s.handleFrame(c, frame)
		if pooled {
			releaseFrame(frame)
		}
		s.budget.release(held)
		if err != nil {
			log.Warn("kafka: closing connection: bad request", "err", err, "client_id", c.clientID,
				"api_key", hdr.key, "api_version", hdr.version)
			return
		}
		if c.closeAfter {
			log.Debug("kafka: closing connection after a failed acks=0 produce", "client_id", c.clientID)
			return
		}
		if resp == nil { // acks=0 produce: no answer
			continue
		}
		// A client that stops reading must not pin its answers in memory.
		nc.SetWriteDeadline(time.Now().Add(s.cfg.RequestTimeout))
		if err := writeResponse(bw, hdr, resp); err != nil {
			return
		}
		if br.Buffered() == 0 { // nothing pipelined behind: send now
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

func writeResponse(w *bufio.Writer, hdr requestHeader, resp kmsg.Response) error {
	buf := make([]byte, 8, 256+sizeHint(resp))
	binary.BigEndian.PutUint32(buf[4:], uint32(hdr.correlationID))
	// Flexible responses carry a header tag buffer, except ApiVersions,
	// whose response header stays v0 so any client can read it.
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err := w.Write(buf)
	return err
}

// sizeHint estimates the record bytes of a response, so a fetch answer of
// many megabytes is encoded into one allocation instead of a doubling chain.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 0
	for _, t := range f.Topics {
		for _, p := range t.Partitions {
			n += len(p.RecordBatches) + 128
		}
	}
	return n
}

// handleFrame decodes one request and answers it. A nil response with a
// nil error means no answer is due; an error closes the connection.
func (s *Server) handleFrame(c *conn, frame []byte) (kmsg.Response, requestHeader, error) {
	var hdr requestHeader
	hdr.key = int16(binary.BigEndian.Uint16(frame[0:]))
	hdr.version = int16(binary.BigEndian.Uint16(frame[2:]))
	hdr.correlationID = int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return nil, hdr, fmt.Errorf("client id of %d bytes in a %d-byte frame", idLen, len(frame))
		}
		hdr.clientID = string(rest[:idLen])
		rest = rest[idLen:]
	}
	if c.clientID == "" {
		c.clientID = hdr.clientID
	}

	api, ok := apis[hdr.key]
	if !ok {
		return nil, hdr, fmt.Errorf("unknown or unsupported API key %d (%s)", hdr.key, kmsg.NameForKey(hdr.key))
	}
	if hdr.version < api.min || hdr.version > api.max {
		if hdr.key == int16(kmsg.ApiVersions) {
			return s.apiVersionsUnsupported(hdr), hdr, nil
		}
		return nil, hdr, fmt.Errorf("%s v%d is not supported; reeve supports v%d to v%d",
			kmsg.NameForKey(hdr.key), hdr.version, api.min, api.max)
	}
	req := kmsg.RequestForKey(hdr.key)
	req.SetVersion(hdr.version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, hdr, fmt.Errorf("request header tags: %w", err)
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return nil, hdr, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(hdr.key), hdr.version, err)
	}
	start := time.Now()
	resp := api.handle(s, c, req)
	s.metrics.request(hdr.key, req, resp, time.Since(start))
	if resp != nil {
		resp.SetVersion(hdr.version)
	}
	return resp, hdr, nil
}

// skipTags skips a tagged-field section: an unsigned varint count, then per
// field a tag and a length-prefixed value.
func skipTags(b []byte) ([]byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[w:]
	for range n {
		_, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[w:]
		size, w := binary.Uvarint(b)
		if w <= 0 || size > uint64(len(b)-w) {
			return nil, errors.New("bad tag length")
		}
		b = b[w+int(size):]
	}
	return b, nil
}
