package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is a validated reeve configuration.
type Config struct {
	Node     Node     `toml:"node"`
	Cluster  Cluster  `toml:"cluster"`
	Raft     Raft     `toml:"raft"`
	Kafka    Kafka    `toml:"kafka"`
	Admin    Admin    `toml:"admin"`
	Log      Log      `toml:"log"`
	Election Election `toml:"election"`
	Events   Events   `toml:"events"`
	TLS      TLS      `toml:"tls"`
	// Source is the file the config came from, or "" for embedded defaults.
	Source string `toml:"-"`
}

// Node describes this node.
type Node struct {
	// ID is this node's Raft id. It defaults to 1 outside cluster mode and
	// must be set (1 or higher) in cluster mode.
	ID uint64 `toml:"id"`
	// DataDir holds the Raft log, snapshots and partition data. It defaults
	// to $STATE_DIRECTORY when systemd sets it, else "reeve-data".
	DataDir string `toml:"data_dir"`
	// Labels are free-form facts about the node, e.g. power = "mains". Keys
	// match [a-z0-9_.-]{1,63}; values are at most 255 bytes.
	Labels map[string]string `toml:"labels"`
}

// Cluster describes the Raft cluster this node belongs to.
type Cluster struct {
	// Name names the cluster, [A-Za-z0-9_-]{1,64}; default "reeve".
	Name string `toml:"name"`
	// InitialMembers lists the voters at bootstrap as "ID@host:port" Raft
	// addresses, like Kafka's controller.quorum.voters. It defaults to this
	// node alone: "<node.id>@<raft.address>".
	InitialMembers []string `toml:"initial_members"`
	// Join is true when this node joins a running cluster: it starts, waits
	// to be added with `reeve node add`, and joins as a non-voter until it
	// has caught up; InitialMembers must then be empty.
	Join bool `toml:"join"`
	// PartitionGroups is the number of Raft groups partitions are spread
	// over, 1..64, default 4. It is fixed at bootstrap.
	PartitionGroups int `toml:"partition_groups"`
}

// Raft tunes the Raft transport and timing.
type Raft struct {
	// Address is the host:port other nodes dial; default "127.0.0.1:9093".
	// It is required in cluster mode.
	Address string `toml:"address"`
	// ListenAddress is the bind address when it differs from Address, e.g.
	// "0.0.0.0:9093"; "" means Address.
	ListenAddress string `toml:"listen_address"`
	// RTT is one Raft tick, 1ms..10s, default 50ms.
	RTT Duration `toml:"rtt"`
	// ElectionRTT is the election timeout in ticks, default 20; it must be
	// greater than 2*HeartbeatRTT.
	ElectionRTT uint64 `toml:"election_rtt"`
	// HeartbeatRTT is the heartbeat interval in ticks, default 2, at least 1.
	HeartbeatRTT uint64 `toml:"heartbeat_rtt"`
	// SnapshotEntries is the number of log entries between automatic
	// snapshots, default 1000; 0 disables automatic snapshots.
	SnapshotEntries uint64 `toml:"snapshot_entries"`
	// CompactionOverhead is the number of entries kept after a snapshot
	// compacts the log, default 500.
	CompactionOverhead uint64 `toml:"compaction_overhead"`
}

// Kafka configures the Kafka protocol listener.
type Kafka struct {
	// Listen is the bind address, default "127.0.0.1:9092".
	Listen string `toml:"listen"`
	// AdvertisedAddress is the host:port clients are told to dial; "" means
	// Listen. It must not have a wildcard host.
	AdvertisedAddress string `toml:"advertised_address"`
	// MaxRequestBytes caps the size of one request, as Kafka's
	// socket.request.max.bytes does, 1024..1073741824, default 100 MiB. A
	// request is refused before its buffer is allocated.
	MaxRequestBytes int64 `toml:"max_request_bytes"`
	// AutoCreateTopics creates a topic on the first produce or metadata
	// request that names it, as Kafka's auto.create.topics.enable; default
	// true.
	AutoCreateTopics bool `toml:"auto_create_topics"`
	// DefaultPartitions is the partition count of an auto-created topic, or
	// of one created without a count, 1..100000, default 1.
	DefaultPartitions int32 `toml:"default_partitions"`
	// DefaultReplicationFactor is the replica count of a topic created
	// without one, 1..7, default 3. When fewer nodes are live it is lowered
	// to their number.
	DefaultReplicationFactor int16 `toml:"default_replication_factor"`
	// Fsync is when partition logs are synced to disk: "always" before an
	// acks=all produce is answered (one sync for the requests waiting
	// together), "interval" every FsyncInterval, or "never", leaving it to
	// the operating system. Default "always".
	//
	// # Notes
	//
	// Written data is in the page cache, which outlives the process, so a
	// crash of reeve loses nothing under any mode; a power loss can lose
	// what was not yet synced under "interval" and "never".
	Fsync string `toml:"fsync"`
	// FsyncInterval is the time between background syncs when Fsync is
	// "interval", 1ms..1h, default 1s. Other modes ignore it.
	FsyncInterval Duration `toml:"fsync_interval"`
	// SegmentBytes is the size at which a partition log rolls to a new
	// segment, 1 MiB..1 GiB, default 64 MiB.
	SegmentBytes int64 `toml:"segment_bytes"`
	// SegmentAge is the age at which a partition log rolls to a new segment
	// even when it is not full, at least 1m, default 168h.
	SegmentAge Duration `toml:"segment_age"`
	// Retention is how long records are kept, default 168h; 0 keeps them
	// forever.
	Retention Duration `toml:"retention"`
	// GroupInitialRebalanceDelay is how long the first rebalance of an
	// empty consumer group waits for more members, 0..5m, default 3s
	// (Kafka's group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelay Duration `toml:"group_initial_rebalance_delay"`
	// ReplicaLagTime is how long a follower may go without catching up
	// before its leader drops it from the ISR, 1s..10m, default 10s
	// (Kafka's replica.lag.time.max.ms is 30s).
	ReplicaLagTime Duration `toml:"replica_lag_time"`
	// RetentionBytes is the most a partition log keeps before its oldest
	// segments are deleted: -1 (the default) for no limit, else at least
	// 1 MiB.
	RetentionBytes int64 `toml:"retention_bytes"`
	// MaxConnections caps the client connections the listener holds at
	// once, as Kafka's max.connections; past it a new connection is closed
	// at once. 1..1000000, default 1000.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP caps the connections from one IP address, as
	// Kafka's max.connections.per.ip; 1..max_connections, default 100.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// QueuedMaxRequestBytes bounds the request bytes all connections hold
	// at once, as Kafka's queued.max.request.bytes: a connection waits
	// before reading more when the budget is spent. At least
	// max_request_bytes; default 128 MiB.
	QueuedMaxRequestBytes int64 `toml:"queued_max_request_bytes"`
	// MaxMessageBytes is the largest record batch a topic accepts, as
	// Kafka's message.max.bytes (a topic's max.message.bytes overrides it);
	// 1 KiB..max_request_bytes, default 1048588.
	MaxMessageBytes int64 `toml:"max_message_bytes"`
	// MaxPartitions caps the partition replicas this node holds; a topic
	// or partition creation that would pass it is refused. 0 (the default)
	// derives it from the open-file limit, as each replica keeps files open.
	MaxPartitions int `toml:"max_partitions"`
}

// Election configures leader election.
type Election struct {
	// HeartbeatInterval is how often every node sends a heartbeat to every
	// other node, 100ms..10s, default 1s.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// LeaderTimeout is how long a partition leader's heartbeats may be
	// missing before its controller elects another, at least three
	// heartbeat intervals, default 10s.
	LeaderTimeout Duration `toml:"leader_timeout"`
	// RebalanceInterval is how often partitions are moved back to their
	// preferred replica, default 5m; "0s" turns it off.
	RebalanceInterval Duration `toml:"rebalance_interval"`
	// HoldDown is how long a replica must have been in sync before a
	// rebalance makes it leader, and how often at most a rebalance moves a
	// partition, default 30s. Failover elections never wait for it.
	HoldDown Duration `toml:"hold_down"`
	// PolicyDir is the folder of election policy modules (.wasm), watched
	// for new and changed files; "" uses only the built-in first-isr.
	PolicyDir string `toml:"policy_dir"`
	// PolicyMemoryMiB caps each policy module's memory, 1..1024, default 16.
	PolicyMemoryMiB int `toml:"policy_memory_mib"`
	// PolicyTimeout bounds every call into a policy module, 1ms..10s,
	// default 50ms.
	PolicyTimeout Duration `toml:"policy_timeout"`
	// PolicyMaxModuleMiB refuses a module file larger than this before it
	// is read, 1..256, default 8.
	PolicyMaxModuleMiB int `toml:"policy_max_module_mib"`
	// PolicyMaxFunctionKiB refuses a module with a function body larger
	// than this before it is compiled (compiling takes memory and time in
	// proportion to a function's size), 16..16384, default 1024.
	PolicyMaxFunctionKiB int `toml:"policy_max_function_kib"`
	// PolicyMaxTableElements bounds the elements of all of a module's
	// tables together, 1024..16777216, default 65536: a table declared
	// larger is refused, and table.grow past it fails as the WebAssembly
	// spec allows.
	PolicyMaxTableElements int `toml:"policy_max_table_elements"`
	// PolicyMaxStackKiB bounds a module's call stack, 64..65536, default
	// 1024: a call nested deeper traps.
	PolicyMaxStackKiB int `toml:"policy_max_stack_kib"`
	// Rules choose a policy per topic: the first rule whose pattern matches
	// the topic wins; topics no rule matches use first-isr.
	Rules []PolicyRule `toml:"rules"`
}

// BuiltinPolicy names the built-in first-ISR policy in a rule.
const BuiltinPolicy = "first-isr"

// PolicyRule maps topics to an election policy.
type PolicyRule struct {
	// Topics is a glob pattern (path.Match syntax: *, ?, [a-z]) on topic
	// names.
	Topics string `toml:"topics"`
	// Policy is a module file in PolicyDir (e.g. "prefer-label.wasm"), or
	// "first-isr" for the built-in.
	Policy string `toml:"policy"`
	// Settings are handed to the module's reeve_init, values as strings.
	Settings map[string]string `toml:"settings"`
}

// Events configures the NATS events: leader changes, offline partitions,
// ISR changes, nodes up and down, policy loads and fallbacks.
type Events struct {
	// Enabled publishes events, default true.
	Enabled *bool `toml:"enabled"`
	// NATSURL is the NATS server(s) to publish to, comma-separated
	// ("nats://host:4222,nats://host2:4222"); "" starts an embedded server.
	NATSURL string `toml:"nats_url"`
	// SubjectPrefix is the first subject token(s), default "reeve".
	SubjectPrefix string `toml:"subject_prefix"`
	// CredentialsFile is a NATS .creds file (JWT and nkey seed).
	CredentialsFile string `toml:"credentials_file"`
	// NKeySeedFile is a file holding an nkey seed ("SU...").
	NKeySeedFile string `toml:"nkey_seed_file"`
	// TLSCAFile, TLSCertFile and TLSKeyFile set up TLS to the server.
	TLSCAFile   string `toml:"tls_ca_file"`
	TLSCertFile string `toml:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file"`
	// EmbeddedListen is where the embedded server listens, default
	// "127.0.0.1:4222"; port 0 picks a free one.
	EmbeddedListen string `toml:"embedded_listen"`
	// EmbeddedJetStream turns on JetStream in the embedded server, with a
	// stream capturing the events (file storage, synced on every write).
	EmbeddedJetStream bool `toml:"embedded_jetstream"`
}

// EventsEnabled reports whether events are published.
func (e Events) EventsEnabled() bool { return e.Enabled == nil || *e.Enabled }

// Admin configures the admin HTTP listener.
type Admin struct {
	// Listen is the bind address, default "127.0.0.1:9644".
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token every state-changing request must
	// carry (Authorization: Bearer <token>); "" requires none. The file
	// must not be readable by group or others, and the token is at least
	// 16 characters.
	TokenFile string `toml:"token_file"`
	// PublicReads leaves the read-only endpoints (GET) and the status page
	// open without the token; default false. Health probes are always open.
	PublicReads bool `toml:"public_reads"`
	// AllowedHosts are the names, besides the listen address's host,
	// localhost and loopback addresses, a request's Host header (and a
	// browser's Origin) may carry: the names operators reach the node by.
	AllowedHosts []string `toml:"allowed_hosts"`
}

// TLS secures the traffic between nodes: the Raft transport and the
// node-to-node Kafka requests (replica fetches, heartbeats, offset
// lookups) use mutual TLS, and a node believes such a request only from
// the node its certificate names. All three files or none; without them
// (the default, for one host on loopback) node traffic is plain.
type TLS struct {
	// CAFile is the cluster CA's certificate (PEM): the one CA that signs
	// every node's certificate.
	CAFile string `toml:"ca_file"`
	// CertFile is this node's certificate (PEM), signed by the CA, with
	// the URI SAN reeve://<cluster.name>/node/<node.id> naming it.
	CertFile string `toml:"cert_file"`
	// KeyFile is the certificate's private key (PEM); only its owner may
	// read it.
	KeyFile string `toml:"key_file"`
}

// Enabled reports whether node-to-node TLS is configured.
func (t TLS) Enabled() bool { return t.CAFile != "" }

// NodeURI is the URI SAN a node's certificate carries: it names the
// cluster and the node id.
func NodeURI(cluster string, id uint64) string {
	return "reeve://" + cluster + "/node/" + strconv.FormatUint(id, 10)
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error; default info.
	Level string `toml:"level"`
	// Format is auto, text, json or logfmt; default auto.
	Format string `toml:"format"`
}

// Duration is a time.Duration written in TOML as a string such as "50ms" or
// "10s".
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "50ms".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		// Days are the commonest slip in a retention period.
		if n, err := strconv.ParseFloat(strings.TrimSuffix(string(text), "d"), 64); err == nil && strings.HasSuffix(string(text), "d") {
			hours := strconv.FormatFloat(n*24, 'f', -1, 64) + "h"
			if _, err := time.ParseDuration(hours); err == nil {
				return fmt.Errorf("bad duration %q: there is no unit for days; write %q", text, hours)
			}
		}
		return fmt.Errorf("bad duration %q: write a number with a unit, e.g. \"10s\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Defaults.
const (
	defaultNodeID            = 1
	defaultDataDir           = "reeve-data"
	defaultClusterName       = "reeve"
	defaultPartitionGroups   = 4
	defaultRaftAddress       = "127.0.0.1:9093"
	defaultRTT               = 50 * time.Millisecond
	defaultElectionRTT       = 20
	defaultHeartbeatRTT      = 2
	defaultSnapshotEntries   = 1000
	defaultCompaction        = 500
	defaultKafkaListen       = "127.0.0.1:9092"
	defaultMaxRequestBytes   = 100 << 20 // Kafka's socket.request.max.bytes
	defaultAutoCreateTopics  = true
	defaultPartitions        = 1
	defaultReplicationFactor = 3
	defaultFsync             = "always"
	defaultFsyncInterval     = time.Second
	defaultSegmentBytes      = 64 << 20
	defaultSegmentAge        = 7 * 24 * time.Hour
	defaultGroupDelay        = 3 * time.Second
	defaultReplicaLag        = 10 * time.Second
	defaultRetention         = 7 * 24 * time.Hour
	defaultRetentionBytes    = -1 // no limit
	defaultMaxConnections    = 1000
	defaultMaxConnsPerIP     = 100
	defaultQueuedMaxRequest  = 128 << 20
	defaultMaxMessageBytes   = 1048588 // Kafka's message.max.bytes
	defaultAdminListen       = "127.0.0.1:9644"
	defaultLogLevel          = "info"
	defaultLogFormat         = "auto"
)

// Default returns the embedded defaults: a one-node cluster on 127.0.0.1.
// It passes validation as it is.
func Default() *Config {
	c := base()
	c.Node.ID = defaultNodeID
	c.Cluster.InitialMembers = []string{member(c.Node.ID, c.Raft.Address)}
	return c
}

// base is Default without the values that depend on other keys: node.id,
// which is required in cluster mode, and cluster.initial_members, which
// defaults to this node.
func base() *Config {
	return &Config{
		Node: Node{
			DataDir: defaultDataDirectory(),
			Labels:  map[string]string{},
		},
		Cluster: Cluster{
			Name:            defaultClusterName,
			PartitionGroups: defaultPartitionGroups,
		},
		Raft: Raft{
			Address:            defaultRaftAddress,
			RTT:                Duration{defaultRTT},
			ElectionRTT:        defaultElectionRTT,
			HeartbeatRTT:       defaultHeartbeatRTT,
			SnapshotEntries:    defaultSnapshotEntries,
			CompactionOverhead: defaultCompaction,
		},
		Kafka: Kafka{
			Listen:                     defaultKafkaListen,
			MaxRequestBytes:            defaultMaxRequestBytes,
			AutoCreateTopics:           defaultAutoCreateTopics,
			DefaultPartitions:          defaultPartitions,
			DefaultReplicationFactor:   defaultReplicationFactor,
			Fsync:                      defaultFsync,
			FsyncInterval:              Duration{defaultFsyncInterval},
			SegmentBytes:               defaultSegmentBytes,
			SegmentAge:                 Duration{defaultSegmentAge},
			GroupInitialRebalanceDelay: Duration{defaultGroupDelay},
			ReplicaLagTime:             Duration{defaultReplicaLag},
			Retention:                  Duration{defaultRetention},
			RetentionBytes:             defaultRetentionBytes,
			MaxConnections:             defaultMaxConnections,
			MaxConnectionsPerIP:        defaultMaxConnsPerIP,
			QueuedMaxRequestBytes:      defaultQueuedMaxRequest,
			MaxMessageBytes:            defaultMaxMessageBytes,
		},
		Admin: Admin{Listen: defaultAdminListen},
		Election: Election{
			HeartbeatInterval:      Duration{time.Second},
			LeaderTimeout:          Duration{10 * time.Second},
			PolicyMemoryMiB:        16,
			PolicyTimeout:          Duration{50 * time.Millisecond},
			PolicyMaxModuleMiB:     8,
			PolicyMaxFunctionKiB:   1024,
			PolicyMaxTableElements: 65536,
			PolicyMaxStackKiB:      1024,
			RebalanceInterval:      Duration{5 * time.Minute},
			HoldDown:               Duration{30 * time.Second},
		},
		Log:    Log{Level: defaultLogLevel, Format: defaultLogFormat},
		Events: Events{SubjectPrefix: "reeve", EmbeddedListen: "127.0.0.1:4222"},
	}
}

// defaultDataDirectory is the first directory systemd passes in
// $STATE_DIRECTORY (StateDirectory=), so a unit needs no data_dir.
func defaultDataDirectory() string {
	if dir, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); dir != "" {
		return dir
	}
	return defaultDataDir
}

// ClusterMode reports whether this node is one of several: it has more than
// one initial member or joins a running cluster.
func (c *Config) ClusterMode() bool {
	return len(c.Cluster.InitialMembers) > 1 || c.Cluster.Join
}

// Members returns initial_members parsed as node id -> raft address. It is
// only meaningful on a validated Config; entries that do not parse are left
// out.
func (c Cluster) Members() map[uint64]string {
	m := make(map[uint64]string, len(c.InitialMembers))
	for _, s := range c.InitialMembers {
		id, addr, err := parseMember(s)
		if err == nil {
			m[id] = addr
		}
	}
	return m
}

func member(id uint64, addr string) string {
	return strconv.FormatUint(id, 10) + "@" + addr
}
