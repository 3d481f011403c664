package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/reeve-edge/reeve/admin"
	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/events"
	"github.com/reeve-edge/reeve/kafka"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// Server is one running reeve node: its metadata store, Kafka listener,
// election controller, event publisher and admin endpoint.
type Server struct {
	cfg   *config.Config
	log   *slog.Logger
	life  *lifecycle
	store *raft.Store
	kafka *kafka.Server
	admin *admin.Server

	elections  *policyMetadata
	controller *policy.Controller
	recorder   *events.Recorder // nil with events off
	policies   *policy.Rules
	live       *policy.Liveness
	decisions  *policy.DecisionLog
	metricSet  *metrics.Set // every part's metrics, served at /metrics
}

// Options are what tests inject into a node to act out faults; a
// production node runs with none.
type Options struct {
	// KafkaAccepted runs after each Kafka connection is accepted; blocking
	// in it acts out a hung acceptor.
	KafkaAccepted func()
	// EventsFault chooses the crash the event publisher acts out.
	EventsFault func() events.Fault
	// BeforeFsync runs before each fsync of a partition log's files; an
	// error it returns is taken as the fsync's (kafka.LogOptions).
	BeforeFsync func(path string) error
}

// Start opens the node's Raft groups and binds the Kafka and admin
// listeners. It does not wait for the cluster to form; Ready tells when it
// has. On an error, what was started is closed again.
func Start(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	s := &Server{cfg: cfg, log: log, life: newLifecycle(), metricSet: newMetricSet(),
		live: policy.NewLiveness(cfg.Node.ID), decisions: policy.NewDecisionLog(decisionLogSize)}
	if err := s.start(opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start starts the parts in dependency order, each registering how it is
// undone; Close undoes them in reverse.
func (s *Server) start(opts Options) error {
	cfg, life := s.cfg, s.life
	var nodeCert *config.NodeCert // node-to-node TLS, nil without [tls]
	if cfg.TLS.Enabled() {
		nc, err := config.LoadNodeCert(cfg.TLS, cfg.Cluster.Name, cfg.Node.ID, time.Now())
		if err != nil {
			return fmt.Errorf("load [tls]: %w", err)
		}
		nodeCert = nc
	}
	store, err := raft.Open(storeConfig(cfg, nodeCert, s.log, s.metricSet))
	if err != nil {
		return err
	}
	s.store = store
	life.onClose(store.Close)

	quorum := newQuorumWatch(store, cfg.Raft.RTT.Duration*time.Duration(cfg.Raft.ElectionRTT))
	kcfg := kafkaConfig(cfg, s.log, s.metricSet)
	kcfg.Heartbeats, kcfg.HeartbeatInterval = s.live, cfg.Election.HeartbeatInterval.Duration
	kcfg.AcceptedHook = opts.KafkaAccepted
	kcfg.NodeCert, kcfg.ClusterName = nodeCert, cfg.Cluster.Name
	kcfg.SourceIP = sourceIP(cfg.Kafka.AdvertisedAddress, cfg.Kafka.Listen)
	kcfg.Log.BeforeFsync = opts.BeforeFsync
	kcfg.OnStorageFailed = func(f kafka.StorageFailure) { s.storageFailed(life.ctx, f) }
	ks, err := kafka.New(kcfg, kafkaCluster{store: store, quorum: quorum})
	if err != nil {
		return err
	}
	s.kafka = ks
	// Closed once, by the serving loop's stop or, when Start fails before
	// that, by this step; the error is logged either way.
	closeKafka := sync.OnceFunc(func() {
		if err := ks.Close(); err != nil {
			s.log.Error("kafka: close partition logs", "err", err)
		}
	})
	life.onClose(closeKafka)
	if err := ks.Listen(); err != nil {
		return err
	}
	s.elections = newPolicyMetadata(store, ks)

	rules, rt, err := newPolicies(life.ctx, cfg, store, s.log.With("component", "policy"))
	if err != nil {
		return err
	}
	s.policies = rules
	life.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rules.Close(ctx)
		if rt != nil {
			rt.Close(ctx)
		}
	})

	var recorder *events.Recorder
	var published func() uint64
	if cfg.Events.EventsEnabled() {
		elog := s.log.With("component", "events")
		link, err := events.Connect(life.ctx, cfg, elog)
		if err != nil {
			return err
		}
		life.onClose(link.Close)
		pub := events.NewPublisher(store, link.Conn(), cfg.Events.SubjectPrefix, elog,
			events.PublisherOptions{Fault: opts.EventsFault})
		published = pub.Published
		life.run(pub.Run)
		recorder = events.NewRecorder(store, s.live, cfg.Election.HeartbeatInterval.Duration,
			cfg.Election.LeaderTimeout.Duration, elog)
		s.recorder = recorder
		life.run(recorder.Run)
		rules.OnLoad = func(file, digest string, err error, topics string) {
			recorder.Record(events.PolicyLoad(file, digest, err, topics))
		}
	} else {
		life.run(func(ctx context.Context) { events.Discard(ctx, store) })
	}
	rules.Reload(life.ctx)

	ctl := policy.NewController(s.elections, s.live, rules, cfg.Node.ID, cfg.Election.LeaderTimeout.Duration,
		s.log.With("component", "controller"))
	// Each rule's module gets its own deadline; the controller allows a
	// batch that spans every rule (policyRules.DecideBound).
	ctl.Decisions, ctl.Metrics = s.decisions, s.metricSet
	if recorder != nil {
		ctl.OnFallback = func(r policy.FallbackReport) { recorder.Record(events.PolicyFellBack(r)) }
		ctl.BeforeLeaderTimeout = recorder.ReportDown
	}
	ctl.RebalanceInterval, ctl.HoldDown = cfg.Election.RebalanceInterval.Duration, cfg.Election.HoldDown.Duration
	s.controller = ctl

	token, err := adminToken(cfg.Admin)
	if err != nil {
		return err
	}
	ad, err := admin.Listen(cfg.Admin.Listen, admin.Node{
		Store: store, Elections: electionsAPI{s.elections, ctl}, Partitions: partitionLimit{ks, cfg.Kafka},
		Decisions: s.decisions, Liveness: s.live,
		Policies: rules, Metrics: s.metricSet, EventsPublished: published,
		LeaderTimeout: cfg.Election.LeaderTimeout.Duration, Version: Version, Log: s.log,
		Token: token, PublicReads: cfg.Admin.PublicReads, AllowedHosts: cfg.Admin.AllowedHosts,
		StorageFailures: func() []string {
			var out []string
			for _, f := range ks.StorageFailures() {
				out = append(out, f.String())
			}
			return out
		},
	})
	if err != nil {
		return err
	}
	s.admin = ad
	life.serve(ad.Serve, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ad.Close(ctx)
	})
	life.serve(ks.Serve, closeKafka)
	life.run(s.followChanges)
	life.run(quorum.run)
	life.run(s.elections.wake)
	life.run(ctl.Run)
	life.run(func(ctx context.Context) { rules.Watch(ctx, policyScanInterval) })
	return nil
}

// adminToken reads admin.token_file now, at start or on a reload: the
// file may have changed since config.Load checked it. "" when none is
// configured.
func adminToken(a config.Admin) (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	token, err := config.ReadToken(a.TokenFile)
	if err == nil && token == "" {
		err = fmt.Errorf("%s holds no token", a.TokenFile)
	}
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w; the file must hold the admin token and be readable by the user reeve runs as "+
			"(e.g. head -c 32 /dev/urandom | base64 > %s; chmod 600 %[2]s)", err, a.TokenFile)
	}
	return token, nil
}

// newMetricSet returns the set a node's parts write their metrics into
// (admin serves it at /metrics): one per node, not the library's global
// one, so several nodes in one process keep apart.
func newMetricSet() *metrics.Set {
	// TYPE lines let Prometheus read the histograms as histograms; the
	// switch is the library's, global, and only adds lines.
	metrics.ExposeMetadata(true)
	return metrics.NewSet()
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
		MaxConnections:           k.MaxConnections,
		MaxConnectionsPerIP:      k.MaxConnectionsPerIP,
		QueuedMaxRequestBytes:    k.QueuedMaxRequestBytes,
		MaxMessageBytes:          int32(k.MaxMessageBytes), // at most max_request_bytes, by config
		MaxPartitions:            k.MaxPartitions,
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

// storeConfig is the Store's configuration from cfg; nodeCert, the node's
// [tls] certificate (nil without), makes the Raft transport mutual TLS.
func storeConfig(cfg *config.Config, nodeCert *config.NodeCert, log *slog.Logger, mset *metrics.Set) raft.Config {
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
		SourceIP:           sourceIP(cfg.Raft.Address, cfg.Raft.ListenAddress),
		NodeCert:           nodeCert,
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
func (s *Server) AdminAddr() string { return s.admin.Addr() }

// Store returns the node's metadata store.
func (s *Server) Store() *raft.Store { return s.store }

// Close stops everything Start started, in reverse order, and returns
// once every goroutine it started has ended; state stays on disk. It may
// be called more than once.
func (s *Server) Close() { s.life.close() }

// serve runs a node until SIGINT or SIGTERM, telling systemd (when it
// started the process) when the node is ready, reloading and stopping.
// level is the logger's level, which a reload may change.
func serve(cfg *config.Config, log *slog.Logger, level *slog.LevelVar, opts Options) error {
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
	s, err := Start(cfg, log, opts)
	if err != nil {
		sys.send(status("failed to start: " + err.Error()))
		return err
	}
	// The systemd announcer and watchdog belong to serve: they end, and are
	// waited for, before the node closes.
	ctx, cancel := context.WithCancel(context.Background())
	var notifiers sync.WaitGroup
	notifiers.Go(func() { s.announce(ctx, sys) })
	notifiers.Go(func() { s.watchdog(ctx, sys) })
	stop := func() {
		cancel()
		notifiers.Wait()
		s.Close()
	}
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
					sys.send(daemon.SdNotifyReady, status(line+s.admin.Status().Summary()))
				}
				continue
			}
			log.Info("reeve stopping", "signal", got.String())
			sys.send(daemon.SdNotifyStopping, status("stopping: moving leadership to other nodes"))
			if got == syscall.SIGTERM && s.store.Ready() {
				s.controlledShutdown()
			}
			stop()
			return nil
		case err := <-s.life.failed:
			sys.send(daemon.SdNotifyStopping, status("stopping: a listener failed"))
			stop()
			return err
		case err := <-s.store.Fatal():
			sys.send(daemon.SdNotifyStopping, status("stopping: "+err.Error()))
			stop()
			return configError{err}
		}
	}
}

// configError is a failure caused by this node's configuration (a
// partition_groups the cluster was not bootstrapped with): reeve serve
// exits with status 2, as for a file that does not validate (systemd's
// StartLimitBurst then ends the unit's restarts).
type configError struct{ error }

func (e configError) ExitCode() int { return 2 }
func (e configError) Unwrap() error { return e.error }
