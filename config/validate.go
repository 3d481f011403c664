package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	pathpkg "path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	labelKeyRE    = regexp.MustCompile(`^[a-z0-9_.-]{1,63}$`)
	clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"auto", "text", "json", "logfmt"}
	fsyncModes    = []string{"always", "interval", "never"}
)

const (
	maxLabelValue      = 255
	maxPartitionGroups = 64
	minRTT             = time.Millisecond
	maxRTT             = 10 * time.Second
	minFsyncInterval   = time.Millisecond
	maxFsyncInterval   = time.Hour
	minSegmentAge      = time.Minute
	minRetentionBytes  = 1 << 20
)

// intRanges holds the integer keys whose rule is a plain range. The decoder
// reads it too, so that a number too large for the field's Go type gets the
// same advice as one merely outside the range.
var intRanges = map[string]struct{ min, max int64 }{
	"cluster.partition_groups":         {1, maxPartitionGroups},
	"kafka.max_request_bytes":          {1 << 10, 1 << 30},
	"kafka.default_partitions":         {1, 100000},
	"kafka.default_replication_factor": {1, 7},
	"kafka.segment_bytes":              {1 << 20, 1 << 30},
	"kafka.max_connections":            {1, 1_000_000},
	"kafka.max_connections_per_ip":     {1, 1_000_000},
	"kafka.queued_max_request_bytes":   {1 << 20, 64 << 30},
	"kafka.max_message_bytes":          {1 << 10, 1 << 30},
	"kafka.max_partitions":             {0, 1_000_000},
}

// checkRange reports integer key n when it is outside its intRanges range.
func (d *decoder) checkRange(key string, n int64) {
	r, ok := intRanges[key]
	if !ok {
		panic("config: no range for " + key)
	}
	if d.ok(key) && (n < r.min || n > r.max) {
		d.errorf(key, "%d is out of range; use %d to %d", n, r.min, r.max)
	}
}

// defaults fills in the defaults that depend on other keys.
func (d *decoder) defaults(c *Config) {
	if !d.seen["node.id"] && !c.ClusterMode() {
		c.Node.ID = defaultNodeID
	}
	if len(c.Cluster.InitialMembers) == 0 && !c.Cluster.Join && d.ok("cluster.initial_members") {
		c.Cluster.InitialMembers = []string{member(c.Node.ID, c.Raft.Address)}
	}
	// Limits left unset follow the ones set, so that lowering
	// max_request_bytes or max_connections alone stays valid.
	// A limit out of its range is reported as such; nothing follows from it.
	k := &c.Kafka
	inRange := func(key string, n int64) bool { r := intRanges[key]; return n >= r.min && n <= r.max }
	if inRange("kafka.max_request_bytes", k.MaxRequestBytes) {
		if !d.seen["kafka.max_message_bytes"] {
			k.MaxMessageBytes = min(k.MaxMessageBytes, k.MaxRequestBytes)
		}
		if !d.seen["kafka.queued_max_request_bytes"] {
			k.QueuedMaxRequestBytes = max(k.QueuedMaxRequestBytes, k.MaxRequestBytes)
		}
	}
	if inRange("kafka.max_connections", int64(k.MaxConnections)) && !d.seen["kafka.max_connections_per_ip"] {
		k.MaxConnectionsPerIP = min(k.MaxConnectionsPerIP, k.MaxConnections)
	}
}

func (d *decoder) validate(c *Config) {
	d.validateNode(c)
	d.validateCluster(c)
	d.validateRaft(c)
	d.validateMembership(c)
	d.validateListeners(c)
	d.validateKafka(c)
	d.validateElection(c)
	d.validateEvents(c)
	d.validateAdmin(c)
	d.validateTLS(c)
	if d.ok("log.level") && !slices.Contains(logLevels, c.Log.Level) {
		d.errorf("log.level", "unknown level %q%s; use one of %s", c.Log.Level, didYouMean(c.Log.Level, logLevels), strings.Join(logLevels, ", "))
	}
	if d.ok("log.format") && !slices.Contains(logFormats, c.Log.Format) {
		d.errorf("log.format", "unknown format %q%s; use one of %s", c.Log.Format, didYouMean(c.Log.Format, logFormats), strings.Join(logFormats, ", "))
	}
}

func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// maxNodeID is the largest node id: clients see node ids as Kafka broker
// ids, which are int32.
const maxNodeID = 1<<31 - 1

func (d *decoder) validateNode(c *Config) {
	switch {
	case !d.ok("node.id"):
	case d.seen["node.id"] && c.Node.ID == 0:
		d.errorf("node.id", "0 is not a valid node id; use 1 or higher")
	case c.Node.ID > maxNodeID:
		d.errorf("node.id", "%d is too large; Kafka broker ids are 32-bit, use 1 to %d", c.Node.ID, maxNodeID)
	case !d.seen["node.id"] && c.ClusterMode():
		d.errorf("node.id", "required in cluster mode; set it to this node's id (1 or higher)")
	}
	if d.ok("node.data_dir") && c.Node.DataDir == "" {
		d.errorf("node.data_dir", "must not be empty; set it to a directory reeve may write, e.g. \"/var/lib/reeve\"")
	}
	if !d.ok("node.labels") {
		return
	}
	keys := make([]string, 0, len(c.Node.Labels))
	for k := range c.Node.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := path{"node", "labels"}.key(k).String()
		if !labelKeyRE.MatchString(k) {
			d.errorf(key, "label name %q is not valid; use 1 to 63 of a-z, 0-9, '_', '.', '-'", k)
		}
		if v := c.Node.Labels[k]; len(v) > maxLabelValue {
			d.errorf(key, "label value is %d bytes; shorten it to %d or fewer", len(v), maxLabelValue)
		}
	}
}

func (d *decoder) validateCluster(c *Config) {
	if d.ok("cluster.name") && !clusterNameRE.MatchString(c.Cluster.Name) {
		d.errorf("cluster.name", "%q is not a valid cluster name; use 1 to 64 of A-Z, a-z, 0-9, '_', '-'", c.Cluster.Name)
	}
	d.checkRange("cluster.partition_groups", int64(c.Cluster.PartitionGroups))
	const key = "cluster.initial_members"
	if !d.seen[key] || !d.ok(key) {
		return
	}
	if c.Cluster.Join && len(c.Cluster.InitialMembers) > 0 {
		d.errorf(key, "must be empty when cluster.join is true, as the running cluster supplies the members; remove it, or set join = false to bootstrap a new cluster")
		return
	}
	ids := map[uint64]string{}
	addrs := map[string]string{}
	valid := true
	for i, s := range c.Cluster.InitialMembers {
		at := path{"cluster", "initial_members"}.index(i).String()
		if d.bad[at] {
			valid = false
			continue
		}
		id, addr, err := parseMember(s)
		switch {
		case err != nil:
			d.errorAt(key, at, "%q: %v", s, err)
		case ids[id] != "":
			d.errorAt(key, at, "%q: node id %d is also in %q; give each member its own id", s, id, ids[id])
		case addrs[canonAddr(addr)] != "":
			d.errorAt(key, at, "%q: address %s is also in %q; give each member its own address", s, addr, addrs[canonAddr(addr)])
		default:
			ids[id], addrs[canonAddr(addr)] = s, s
		}
	}
	if !valid {
		// Keep the membership rules from guessing at a list with holes.
		d.bad[key] = true
	}
}

func (d *decoder) validateRaft(c *Config) {
	r := c.Raft
	if d.ok("raft.address") {
		if !d.seen["raft.address"] && c.ClusterMode() {
			d.errorf("raft.address", "required in cluster mode; set it to the host:port other nodes dial to reach this node")
		} else if err := checkAddr(r.Address, true); err != nil {
			d.errorf("raft.address", "%v", err)
		}
	}
	if d.ok("raft.listen_address") && r.ListenAddress != "" {
		if err := checkAddr(r.ListenAddress, false); err != nil {
			d.errorf("raft.listen_address", "%v", err)
		}
	}
	if d.ok("raft.rtt") && (r.RTT.Duration < minRTT || r.RTT.Duration > maxRTT) {
		d.errorf("raft.rtt", "%v is out of range; use %v to %v", r.RTT.Duration, minRTT, maxRTT)
	}
	if !d.ok("raft.heartbeat_rtt") {
		return
	}
	if r.HeartbeatRTT == 0 {
		d.errorf("raft.heartbeat_rtt", "0 is too small; use 1 or higher")
		return
	}
	if d.ok("raft.election_rtt") && (r.HeartbeatRTT > math.MaxUint64/2 || r.ElectionRTT <= 2*r.HeartbeatRTT) {
		key := "raft.election_rtt"
		if !d.seen[key] && d.seen["raft.heartbeat_rtt"] {
			key = "raft.heartbeat_rtt"
		}
		d.errorf(key, "election_rtt (%d) must be more than twice heartbeat_rtt (%d); raise raft.election_rtt or lower raft.heartbeat_rtt", r.ElectionRTT, r.HeartbeatRTT)
	}
}

// validateMembership checks that this node is among the initial members,
// under the address it gives other nodes.
func (d *decoder) validateMembership(c *Config) {
	if !d.seen["cluster.initial_members"] || len(c.Cluster.InitialMembers) == 0 ||
		c.Node.ID == 0 || !d.ok("node.id", "cluster.initial_members", "raft.address") {
		return
	}
	members := c.Cluster.Members()
	addr, ok := members[c.Node.ID]
	if !ok {
		ids := make([]string, 0, len(members))
		for id := range members {
			ids = append(ids, strconv.FormatUint(id, 10))
		}
		slices.Sort(ids)
		d.errorf("node.id", "%d is not in cluster.initial_members (ids %s); set node.id to this node's id, or add %q to cluster.initial_members",
			c.Node.ID, strings.Join(ids, ", "), member(c.Node.ID, c.Raft.Address))
		return
	}
	if canonAddr(addr) != canonAddr(c.Raft.Address) {
		d.errorf("raft.address", "%q is not %q, this node's address in cluster.initial_members; set raft.address to %q or correct the entry",
			c.Raft.Address, addr, addr)
	}
}

// validateListeners checks the Kafka and admin addresses, and that no two
// listeners want the same port on the same host.
func (d *decoder) validateListeners(c *Config) {
	for _, l := range []struct {
		key, addr string
		dial      bool
	}{
		{"kafka.listen", c.Kafka.Listen, false},
		{"kafka.advertised_address", c.Kafka.AdvertisedAddress, true},
		{"admin.listen", c.Admin.Listen, false},
	} {
		if !d.ok(l.key) || (l.addr == "" && l.key == "kafka.advertised_address") {
			continue
		}
		if err := checkAddr(l.addr, l.dial); err != nil {
			d.errorf(l.key, "%v", err)
		}
	}
	if c.ClusterMode() && c.Kafka.AdvertisedAddress == "" && d.ok("kafka.listen", "kafka.advertised_address") && isWildcard(c.Kafka.Listen) {
		d.errorf("kafka.listen", "%q listens on every interface, which is no address for clients to dial; set kafka.advertised_address to the address clients dial", c.Kafka.Listen)
	}

	raftKey, raftBind := "raft.address", c.Raft.Address
	if c.Raft.ListenAddress != "" {
		raftKey, raftBind = "raft.listen_address", c.Raft.ListenAddress
	}
	binds := []struct{ key, addr string }{
		{"kafka.listen", c.Kafka.Listen},
		{raftKey, raftBind},
		{"admin.listen", c.Admin.Listen},
	}
	for j, b := range binds {
		if !d.ok(b.key) || checkAddr(b.addr, false) != nil {
			continue
		}
		for _, a := range binds[:j] {
			if d.ok(a.key) && checkAddr(a.addr, false) == nil && collide(a.addr, b.addr) {
				d.errorf(b.key, "%q takes the port of %s (%q); give each listener its own port", b.addr, a.key, a.addr)
				break
			}
		}
	}
}

// validateKafka checks the Kafka protocol and partition log keys. The
// listener addresses are checked with the others in validateListeners.
func (d *decoder) validateKafka(c *Config) {
	k := c.Kafka
	d.checkRange("kafka.max_request_bytes", k.MaxRequestBytes)
	d.checkRange("kafka.default_partitions", int64(k.DefaultPartitions))
	d.checkRange("kafka.default_replication_factor", int64(k.DefaultReplicationFactor))
	d.checkRange("kafka.segment_bytes", k.SegmentBytes)
	if d.ok("kafka.fsync") && !slices.Contains(fsyncModes, k.Fsync) {
		d.errorf("kafka.fsync", "unknown mode %q%s; use one of %s", k.Fsync, didYouMean(k.Fsync, fsyncModes), strings.Join(fsyncModes, ", "))
	}
	// fsync_interval is checked whatever the mode, so that switching to
	// "interval" later does not uncover a bad value.
	if iv := k.FsyncInterval.Duration; d.ok("kafka.fsync_interval") && (iv < minFsyncInterval || iv > maxFsyncInterval) {
		d.errorf("kafka.fsync_interval", "%s is out of range; use %s to %s", durationText(iv), durationText(minFsyncInterval), durationText(maxFsyncInterval))
	}
	if age := k.SegmentAge.Duration; d.ok("kafka.segment_age") && age < minSegmentAge {
		d.errorf("kafka.segment_age", "%s is too short; use %s or longer", durationText(age), durationText(minSegmentAge))
	}
	if gd := k.GroupInitialRebalanceDelay.Duration; d.ok("kafka.group_initial_rebalance_delay") && (gd < 0 || gd > 5*time.Minute) {
		d.errorf("kafka.group_initial_rebalance_delay", "%s is out of range; use 0s to 5m", durationText(gd))
	}
	if lag := k.ReplicaLagTime.Duration; d.ok("kafka.replica_lag_time") && (lag < time.Second || lag > 10*time.Minute) {
		d.errorf("kafka.replica_lag_time", "%s is out of range; use 1s to 10m", durationText(lag))
	}
	if r := k.Retention.Duration; d.ok("kafka.retention") && r < 0 {
		d.errorf("kafka.retention", "%s is negative; use \"0s\" to keep records forever, or a positive duration such as \"168h\"", durationText(r))
	}
	if n := k.RetentionBytes; d.ok("kafka.retention_bytes") && n != -1 && n < minRetentionBytes {
		d.errorf("kafka.retention_bytes", "%d is out of range; use -1 for no limit, or %d (1 MiB) or more", n, minRetentionBytes)
	}
	d.checkRange("kafka.max_connections", int64(k.MaxConnections))
	d.checkRange("kafka.max_connections_per_ip", int64(k.MaxConnectionsPerIP))
	d.checkRange("kafka.queued_max_request_bytes", k.QueuedMaxRequestBytes)
	d.checkRange("kafka.max_message_bytes", k.MaxMessageBytes)
	d.checkRange("kafka.max_partitions", int64(k.MaxPartitions))
	if k.MaxConnectionsPerIP > k.MaxConnections && d.ok("kafka.max_connections_per_ip", "kafka.max_connections") {
		d.errorf("kafka.max_connections_per_ip", "%d is more than kafka.max_connections (%d); use at most that", k.MaxConnectionsPerIP, k.MaxConnections)
	}
	if k.QueuedMaxRequestBytes < k.MaxRequestBytes && d.ok("kafka.queued_max_request_bytes", "kafka.max_request_bytes") {
		d.errorf("kafka.queued_max_request_bytes", "%d is less than kafka.max_request_bytes (%d): a request of the largest allowed size could never be read; raise it or lower max_request_bytes",
			k.QueuedMaxRequestBytes, k.MaxRequestBytes)
	}
	if k.MaxMessageBytes > k.MaxRequestBytes && d.ok("kafka.max_message_bytes", "kafka.max_request_bytes") {
		d.errorf("kafka.max_message_bytes", "%d is more than kafka.max_request_bytes (%d): no produce request could carry such a batch; use at most that",
			k.MaxMessageBytes, k.MaxRequestBytes)
	}
}

// durationText writes d as time.Duration.String does, less the zero minutes
// and seconds of a whole hour or minute: "1h", not "1h0m0s".
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseMember splits an initial_members entry "ID@host:port".
func parseMember(s string) (id uint64, addr string, err error) {
	const how = `write entries as ID@host:port, e.g. "1@10.0.0.1:9093"`
	idText, addr, found := strings.Cut(s, "@")
	if !found {
		return 0, "", errors.New("no node id; " + how)
	}
	id, err = strconv.ParseUint(idText, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("node id %q is not a number; %s", idText, how)
	}
	if id == 0 {
		return 0, "", errors.New("0 is not a valid node id; use 1 or higher")
	}
	if id > maxNodeID {
		return 0, "", fmt.Errorf("node id %d is too large; Kafka broker ids are 32-bit, use 1 to %d", id, maxNodeID)
	}
	if err := checkAddr(addr, true); err != nil {
		return 0, "", err
	}
	return id, addr, nil
}

// checkAddr checks that s is host:port with a port from 1 to 65535. A dial
// address needs a host that is not a wildcard; a listen address may leave
// the host out to mean every interface.
func checkAddr(s string, dial bool) error {
	example := "127.0.0.1:9092"
	if dial {
		example = "10.0.0.1:9092"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port; write it like %q, with IPv6 addresses in brackets", s, example)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	if host == "" {
		if dial {
			return fmt.Errorf("%q has no host; write the host or IP address to dial, e.g. %q", s, example)
		}
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if dial && ip.IsUnspecified() {
			return fmt.Errorf("%q is a wildcard address, which no one can dial; write this host's own name or IP address", s)
		}
		return nil
	}
	if !validHostname(host) {
		return fmt.Errorf("%q: %q is not a valid host name or IP address", s, host)
	}
	return nil
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isBare(c) {
				return false
			}
		}
	}
	return true
}

// canonAddr writes a valid host:port in one form, so that equal addresses
// compare equal.
func canonAddr(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	} else if host == "localhost" {
		host = "127.0.0.1"
	}
	if n, err := strconv.Atoi(port); err == nil {
		port = strconv.Itoa(n)
	}
	return net.JoinHostPort(host, port)
}

// isWildcard reports whether listen address s binds every interface.
func isWildcard(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// collide reports whether listening on a and b would clash: the same port
// on the same host, or on every interface.
func collide(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(canonAddr(a))
	hb, pb, _ := net.SplitHostPort(canonAddr(b))
	return pa == pb && (ha == hb || isWildcard(a) || isWildcard(b))
}

func (d *decoder) validateElection(c *Config) {
	e := c.Election
	if iv := e.HeartbeatInterval.Duration; d.ok("election.heartbeat_interval") && (iv < 100*time.Millisecond || iv > 10*time.Second) {
		d.errorf("election.heartbeat_interval", "%s is out of range; use 100ms to 10s", durationText(iv))
	}
	if ri := e.RebalanceInterval.Duration; d.ok("election.rebalance_interval") && ri != 0 && ri < time.Second {
		d.errorf("election.rebalance_interval", "%s is too short; use 1s or longer, or \"0s\" to turn rebalancing off", durationText(ri))
	}
	if hd := e.HoldDown.Duration; d.ok("election.hold_down") && hd < 0 {
		d.errorf("election.hold_down", "%s is negative; use \"0s\" or more", durationText(hd))
	}
	if to := e.LeaderTimeout.Duration; d.ok("election.leader_timeout", "election.heartbeat_interval") && to < 3*e.HeartbeatInterval.Duration {
		d.errorf("election.leader_timeout", "%s is under three heartbeat intervals (%s); raise it, or lower election.heartbeat_interval",
			durationText(to), durationText(3*e.HeartbeatInterval.Duration))
	}
	if mb := e.PolicyMemoryMiB; d.ok("election.policy_memory_mib") && (mb < 1 || mb > 1024) {
		d.errorf("election.policy_memory_mib", "%d is out of range; use 1 to 1024", mb)
	}
	if pt := e.PolicyTimeout.Duration; d.ok("election.policy_timeout") && (pt < time.Millisecond || pt > 10*time.Second) {
		d.errorf("election.policy_timeout", "%s is out of range; use 1ms to 10s", durationText(pt))
	}
	for _, b := range []struct {
		key       string
		v, lo, hi int
	}{
		{"election.policy_max_module_mib", e.PolicyMaxModuleMiB, 1, 256},
		{"election.policy_max_function_kib", e.PolicyMaxFunctionKiB, 16, 16384},
		{"election.policy_max_table_elements", e.PolicyMaxTableElements, 1024, 1 << 24},
		{"election.policy_max_stack_kib", e.PolicyMaxStackKiB, 64, 65536},
	} {
		if d.ok(b.key) && (b.v < b.lo || b.v > b.hi) {
			d.errorf(b.key, "%d is out of range; use %d to %d", b.v, b.lo, b.hi)
		}
	}
	for i, r := range e.Rules {
		key := fmt.Sprintf("election.rules[%d]", i)
		if !d.ok(key+".topics", key+".policy") {
			continue
		}
		if _, err := pathpkg.Match(r.Topics, ""); err != nil || r.Topics == "" {
			d.errorf(key+".topics", "%q is not a topic pattern; use a glob such as \"sensors.*\" or \"*\"", r.Topics)
		}
		switch {
		case r.Policy == BuiltinPolicy:
		case r.Policy == "":
			d.errorf(key+".policy", "missing; name a .wasm file in election.policy_dir, or %q", BuiltinPolicy)
		case !strings.HasSuffix(r.Policy, ".wasm") || strings.ContainsAny(r.Policy, "/\\"):
			d.errorf(key+".policy", "%q: name a .wasm file inside election.policy_dir (no path), or %q", r.Policy, BuiltinPolicy)
		case e.PolicyDir == "":
			d.errorf(key+".policy", "%q needs election.policy_dir, the folder that holds it", r.Policy)
		}
	}
	// A controller is a Raft group's leader: when it dies with the
	// partition leader, its group elects a new one (election_rtt to twice
	// that) before any partition can fail over. A leader timeout shorter
	// than that worst case would not be the failover time it promises.
	raftElection := 2 * time.Duration(c.Raft.ElectionRTT) * c.Raft.RTT.Duration
	if to := e.LeaderTimeout.Duration; d.ok("election.leader_timeout", "raft.rtt", "raft.election_rtt") && to < raftElection {
		d.errorf("election.leader_timeout", "%s is shorter than a worst-case Raft election (2 × raft.election_rtt × raft.rtt = %s), which a failover of a node that was also a controller waits for; raise it, or lower raft.rtt",
			durationText(to), durationText(raftElection))
	}
}

var subjectTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validateAdmin checks the admin API's protection; the listen address is
// checked with the others in validateListeners.
func (d *decoder) validateAdmin(c *Config) {
	a := c.Admin
	if a.TokenFile != "" && d.ok("admin.token_file") {
		if err := checkTokenFile(a.TokenFile); err != nil {
			d.errorf("admin.token_file", "%v", err)
		}
	}
	if d.ok("admin.allowed_hosts") {
		for _, h := range a.AllowedHosts {
			if h == "" || strings.ContainsAny(h, "/ \t@") {
				d.errorf("admin.allowed_hosts", "%q is not a host name; give names such as \"reeve1.plant.local\" or addresses such as \"10.0.0.5\", without scheme or path", h)
				break
			}
		}
	}
}

// validateTLS checks the node's TLS files: all three or none, readable,
// the key private to its owner, the certificate signed by the CA, matching
// the key, valid now, and naming this node (NodeURI).
func (d *decoder) validateTLS(c *Config) {
	t := c.TLS
	if t == (TLS{}) || !d.ok("tls.ca_file", "tls.cert_file", "tls.key_file") {
		return
	}
	for _, f := range []struct{ key, path string }{{"tls.ca_file", t.CAFile}, {"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
		if f.path == "" {
			d.errorf(f.key, "set tls.ca_file, tls.cert_file and tls.key_file together, or none of them")
			return
		}
	}
	if fi, err := os.Stat(t.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		d.errorf("tls.key_file", "%s is readable by group or others (mode %04o); chmod 600 %s", t.KeyFile, fi.Mode().Perm(), t.KeyFile)
		return
	}
	if _, err := LoadNodeCert(t, c.Cluster.Name, c.Node.ID, time.Now()); err != nil {
		d.errorf("tls.cert_file", "%v", err)
	}
	// With TLS the Kafka listener tells a node's connection by its first
	// byte, 0x16, a TLS handshake; a plaintext request at least this large
	// would start with it too.
	if c.Kafka.MaxRequestBytes >= maxRequestBytesTLS && d.ok("kafka.max_request_bytes") {
		d.errorf("kafka.max_request_bytes", "%d is too large with [tls] set: use less than %d (352 MiB), as the listener tells nodes' TLS connections from clients' by a request's first byte",
			c.Kafka.MaxRequestBytes, maxRequestBytesTLS)
	}
}

// maxRequestBytesTLS bounds kafka.max_request_bytes with [tls]: a frame
// size of 0x16000000 or more starts with the byte of a TLS handshake.
const maxRequestBytesTLS = 0x16000000

// minTokenLength is the shortest admin token accepted.
const minTokenLength = 16

// checkTokenFile checks the admin token file the way sshd checks a key:
// it exists, only its owner may read it, and the token is long enough.
func checkTokenFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%v; create it with a random token, e.g. head -c 32 /dev/urandom | base64 > %s; chmod 600 %s", err, path, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by group or others (mode %04o); chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	token, err := ReadToken(path)
	if err != nil {
		return err
	}
	if len(token) < minTokenLength {
		return fmt.Errorf("%s holds a %d-character token; use at least %d, e.g. head -c 32 /dev/urandom | base64 > %s", path, len(token), minTokenLength, path)
	}
	return nil
}

// ReadToken reads a token file: its first line, without surrounding white
// space. Files larger than 4 KiB are refused.
func ReadToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%s is larger than 4 KiB; it should hold one token", path)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line), nil
}

func (d *decoder) validateEvents(c *Config) {
	e := c.Events
	if d.ok("events.subject_prefix") {
		for _, tok := range strings.Split(e.SubjectPrefix, ".") {
			if !subjectTokenRE.MatchString(tok) {
				d.errorf("events.subject_prefix", "%q is not a NATS subject prefix; use tokens of A-Z, a-z, 0-9, '_', '-' joined by '.', e.g. \"reeve\" or \"site1.reeve\"", e.SubjectPrefix)
				break
			}
		}
	}
	if e.NATSURL == "" && d.ok("events.embedded_listen") {
		addr := e.EmbeddedListen
		if host, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
			addr = net.JoinHostPort(host, "4222") // port 0: any free port
		}
		if err := checkAddr(addr, false); err != nil {
			d.errorf("events.embedded_listen", "%v", err)
		}
	}
	if e.NATSURL != "" && e.EmbeddedJetStream && d.ok("events.embedded_jetstream") {
		d.errorf("events.embedded_jetstream", "applies to the embedded server only; events.nats_url points at an external one, where the stream is the operator's to create")
	}
	if (e.TLSCertFile == "") != (e.TLSKeyFile == "") && d.ok("events.tls_cert_file", "events.tls_key_file") {
		d.errorf("events.tls_cert_file", "set both tls_cert_file and tls_key_file, or neither")
	}
	if e.CredentialsFile != "" && e.NKeySeedFile != "" && d.ok("events.credentials_file", "events.nkey_seed_file") {
		d.errorf("events.nkey_seed_file", "set credentials_file or nkey_seed_file, not both")
	}
}
