package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/kafka"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
	"github.com/reeve-edge/reeve/wasm"
)

// Server is one running reeve node: its metadata store, Kafka listener and
// admin endpoint.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	store *raft.Store
	kafka *kafka.Server
	admin *http.Server
	ln    net.Listener
	done  chan error // the first of the admin and Kafka servers to exit
	stop  context.CancelFunc

	elections  *policyMetadata
	controller *policy.Controller
	policies   *policy.Rules
	policyRT   *wasm.Runtime // nil without a policy folder
	nats       *natsLink     // nil with events off
	live       *policy.Liveness
	decisions  *policy.DecisionLog
	metricSet  *metrics.Set // every part's metrics, served at /metrics (metrics.go)
	publisher  *publisher   // nil with events off
}

// Start opens the node's Raft groups and binds the Kafka and admin
// listeners. It does not wait for the cluster to form; Ready tells when it
// has.
func Start(cfg *config.Config, log *slog.Logger) (*Server, error) {
	mset := newMetricSet()
	store, err := raft.Open(storeConfig(cfg, log, mset))
	if err != nil {
		return nil, err
	}
	quorum := newQuorumWatch(store, cfg.Raft.RTT.Duration*time.Duration(cfg.Raft.ElectionRTT))
	live := policy.NewLiveness(cfg.Node.ID)
	kcfg := kafkaConfig(cfg, log, mset)
	kcfg.Heartbeats, kcfg.HeartbeatInterval = live, cfg.Election.HeartbeatInterval.Duration
	if path := os.Getenv("REEVE_TEST_KAFKA_WEDGE"); path != "" {
		kcfg.AcceptedHook = wedgeWhileExists(path)
	}
	ks, err := kafka.New(kcfg, kafkaCluster{store: store, quorum: quorum})
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := ks.Listen(); err != nil {
		ks.Close()
		store.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ks.Close()
		store.Close()
		return nil, fmt.Errorf("admin: listen on %s: %w (set admin.listen to a free address)", cfg.Admin.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: log, store: store, kafka: ks, ln: ln, done: make(chan error, 2), stop: cancel,
		live: live, decisions: policy.NewDecisionLog(decisionLogSize), elections: newPolicyMetadata(store, ks), metricSet: mset}
	s.admin = &http.Server{
		Handler:           gzipped(s.routes()),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	rules, rt, err := newPolicies(ctx, cfg, store, log.With("component", "policy"))
	if err != nil {
		cancel()
		ln.Close()
		ks.Close()
		store.Close()
		return nil, err
	}
	s.policies, s.policyRT = rules, rt
	if cfg.Events.EventsEnabled() {
		link, err := connectNATS(ctx, cfg, log.With("component", "events"))
		if err != nil {
			s.closePolicies(ctx)
			cancel()
			ln.Close()
			ks.Close()
			store.Close()
			return nil, err
		}
		s.nats = link
		pub := &publisher{store: store, conn: link.conn, prefix: cfg.Events.SubjectPrefix, log: log.With("component", "events"),
			testHook: os.Getenv("REEVE_TEST_EVENTS_HOOK")}
		s.publisher = pub
		go pub.run(ctx)
		go s.watchNodes(ctx)
		rules.OnLoad = func(file, digest string, err error, topics string) {
			ev := policyLoadEvent(file, digest, err, topics)
			ev.Node = cfg.Node.ID
			go s.emit(ctx, ev)
		}
	} else {
		go discardEvents(ctx, store)
	}
	rules.Reload(ctx)
	ctl := policy.NewController(s.elections, live, rules, cfg.Node.ID, cfg.Election.LeaderTimeout.Duration,
		log.With("component", "controller"))
	// Each rule's module gets its own deadline; the controller allows a
	// batch that spans every rule (policyRules.DecideBound).
	ctl.Decisions, ctl.Metrics = s.decisions, mset
	if cfg.Events.EventsEnabled() {
		ctl.OnFallback = func(r policy.FallbackReport) {
			ev := policyFallbackEvent(r)
			ev.Node = cfg.Node.ID
			go s.emit(ctx, ev)
		}
	}
	ctl.RebalanceInterval, ctl.HoldDown = cfg.Election.RebalanceInterval.Duration, cfg.Election.HoldDown.Duration
	s.controller = ctl
	go func() { s.done <- s.admin.Serve(ln) }()
	go func() { s.done <- ks.Serve() }()
	go s.followChanges(ctx)
	go quorum.run(ctx)
	go s.elections.wake(ctx)
	go ctl.Run(ctx)
	go rules.Watch(ctx, policyScanInterval)
	return s, nil
}

// policyScanInterval is how often the policy folder is checked for new
// or changed modules.
const policyScanInterval = 2 * time.Second

// decisionLogSize is how many elections the decision log keeps.
const decisionLogSize = 200

// followChanges tells the Kafka layer about every committed metadata change.
func (s *Server) followChanges(ctx context.Context) {
	sub := s.store.Changes()
	defer sub.Close()
	for {
		if _, err := sub.Next(ctx); err != nil {
			return
		}
		s.kafka.MetadataChanged()
		s.elections.notify()
	}
}

func kafkaConfig(cfg *config.Config, log *slog.Logger, mset *metrics.Set) kafka.Config {
	k := cfg.Kafka
	fsync, _ := kafka.ParseFsyncMode(k.Fsync) // validated by config
	retention := k.Retention.Duration
	if retention == 0 { // "0s" keeps records forever; storage reads 0 as its default
		retention = -1
	}
	return kafka.Config{
		Listen:                   k.Listen,
		MaxRequestBytes:          int32(k.MaxRequestBytes),
		DataDir:                  filepath.Join(cfg.Node.DataDir, "kafka"),
		AutoCreateTopics:         k.AutoCreateTopics,
		DefaultPartitions:        k.DefaultPartitions,
		DefaultReplicationFactor: k.DefaultReplicationFactor,
		InitialRebalanceDelay:    k.GroupInitialRebalanceDelay.Duration,
		ReplicaLagTime:           k.ReplicaLagTime.Duration,
		Log: kafka.LogOptions{
			SegmentBytes:   k.SegmentBytes,
			SegmentAge:     k.SegmentAge.Duration,
			Fsync:          fsync,
			FsyncInterval:  k.FsyncInterval.Duration,
			RetentionBytes: k.RetentionBytes,
			RetentionAge:   retention,
		},
		Logger:  log,
		Metrics: mset,
	}
}

func storeConfig(cfg *config.Config, log *slog.Logger, mset *metrics.Set) raft.Config {
	kafka := cfg.Kafka.AdvertisedAddress
	if kafka == "" {
		kafka = cfg.Kafka.Listen
	}
	var members map[uint64]string
	if !cfg.Cluster.Join {
		members = cfg.Cluster.Members()
	}
	return raft.Config{
		NodeID:             cfg.Node.ID,
		ClusterName:        cfg.Cluster.Name,
		RaftAddress:        cfg.Raft.Address,
		ListenAddr:         cfg.Raft.ListenAddress,
		KafkaAddress:       kafka,
		Labels:             cfg.Node.Labels,
		DataDir:            cfg.Node.DataDir,
		InitialMembers:     members,
		Join:               cfg.Cluster.Join,
		PartitionGroups:    cfg.Cluster.PartitionGroups,
		RTT:                cfg.Raft.RTT.Duration,
		ElectionRTT:        cfg.Raft.ElectionRTT,
		HeartbeatRTT:       cfg.Raft.HeartbeatRTT,
		SnapshotEntries:    cfg.Raft.SnapshotEntries,
		CompactionOverhead: cfg.Raft.CompactionOverhead,
		Logger:             log,
		Metrics:            mset,
	}
}

// KafkaAddr returns the address the Kafka listener is bound to.
func (s *Server) KafkaAddr() string { return s.kafka.Addr().String() }

// AdminAddr returns the address the admin endpoint listens on.
func (s *Server) AdminAddr() string { return s.ln.Addr().String() }

// Store returns the node's metadata store.
func (s *Server) Store() *raft.Store { return s.store }

// Close stops the admin endpoint and the Raft groups; state stays on disk.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.admin.Shutdown(ctx)
	s.stop()
	if err := s.kafka.Close(); err != nil {
		s.log.Error("kafka: close partition logs", "err", err)
	}
	s.store.Close()
	s.closePolicies(ctx)
	s.nats.close()
}

// serve runs a node until SIGINT or SIGTERM, telling systemd (when it
// started the process) when the node is ready, reloading and stopping.
// level is the logger's level, which a reload may change.
func serve(cfg *config.Config, log *slog.Logger, level *slog.LevelVar) error {
	source := cfg.Source
	if source == "" {
		source = "embedded defaults"
	}
	log.Info("reeve starting", "version", Version, "config", source, "node_id", cfg.Node.ID,
		"cluster", cfg.Cluster.Name, "data_dir", cfg.Node.DataDir, "raft_address", cfg.Raft.Address,
		"kafka_address", cfg.Kafka.Listen, "admin_address", cfg.Admin.Listen)
	// Signals are caught before anything serves: a SIGHUP sent as soon as
	// the admin API answers must not kill the process (its default action).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	sys := newNotifier(log)
	s, err := Start(cfg, log)
	if err != nil {
		sys.send(status("failed to start: " + err.Error()))
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.announce(ctx, sys)
	go s.watchdog(ctx, sys)
	for {
		select {
		case got := <-sig:
			if got == syscall.SIGHUP {
				log.Info("reeve reloading", "signal", got.String())
				sys.send(daemon.SdNotifyReloading, strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"),
					status("reloading configuration and election policies"))
				line := "reloaded; "
				if err := s.reload(ctx, level); err != nil {
					line = "reload failed (" + err.Error() + "); "
				}
				if sys.ready.Load() {
					sys.send(daemon.SdNotifyReady, status(line+s.status().summary()))
				}
				continue
			}
			log.Info("reeve stopping", "signal", got.String())
			sys.send(daemon.SdNotifyStopping, status("stopping: moving leadership to other nodes"))
			if got == syscall.SIGTERM && s.store.Ready() {
				s.controlledShutdown()
			}
			s.Close()
			return nil
		case err := <-s.done:
			sys.send(daemon.SdNotifyStopping, status("stopping: a listener failed"))
			s.Close()
			if err == nil || errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		}
	}
}
