package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// threeNodes is node 2 of a valid three-node cluster.
const threeNodes = `
[node]
id = 2
data_dir = "/var/lib/reeve"
labels = { power = "battery", "rack.row" = "3" }

[cluster]
name = "plant-1"
initial_members = [
  "1@10.0.0.1:9093",
  "2@10.0.0.2:9093",
  "3@10.0.0.3:9093",
]
partition_groups = 8

[raft]
address = "10.0.0.2:9093"
listen_address = "0.0.0.0:9093"
rtt = "100ms"
election_rtt = 10
heartbeat_rtt = 1

[kafka]
listen = "0.0.0.0:9092"
advertised_address = "10.0.0.2:9092"
`

// cluster3 is the least a three-node cluster needs, for tests to add to.
const cluster3 = `[cluster]
initial_members = ["1@10.0.0.1:9093", "2@10.0.0.2:9093", "3@10.0.0.3:9093"]
`

// thisNode completes a cluster file whose members are in error, so that
// only those errors are reported.
const thisNode = "[node]\nid = 1\n[raft]\naddress = \"127.0.0.1:9093\"\n"

func TestParse_errors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown key with suggestion",
			src:  "[raft]\nrt = \"50ms\"\n",
			want: []string{`t.toml:2:1: raft.rt: unknown key; did you mean "rtt"?`},
		},
		{
			name: "misspelt key indented",
			src:  "[kafka]\n  listne = \"127.0.0.1:9092\"\n",
			want: []string{`t.toml:2:3: kafka.listne: unknown key; did you mean "listen"?`},
		},
		{
			name: "shortened key",
			src:  "[raft]\nelection = 20\n",
			want: []string{`t.toml:2:1: raft.election: unknown key; did you mean "election_rtt"?`},
		},
		{
			name: "group rebalance delay out of range",
			src:  "[kafka]\ngroup_initial_rebalance_delay = \"10m\"\n",
			want: []string{`t.toml:2:1: kafka.group_initial_rebalance_delay: 10m is out of range; use 0s to 5m`},
		},
		{
			name: "replica lag out of range",
			src:  "[kafka]\nreplica_lag_time = \"100ms\"\n",
			want: []string{`t.toml:2:1: kafka.replica_lag_time: 100ms is out of range; use 1s to 10m`},
		},
		{
			name: "leader timeout under three heartbeats",
			src:  "[election]\nheartbeat_interval = \"1s\"\nleader_timeout = \"2s\"\n",
			want: []string{`t.toml:3:1: election.leader_timeout: 2s is under three heartbeat intervals (3s); raise it, or lower election.heartbeat_interval`},
		},
		{
			name: "leader timeout under a worst-case Raft election",
			src:  "[election]\nheartbeat_interval = \"200ms\"\nleader_timeout = \"1s\"\n",
			want: []string{`t.toml:3:1: election.leader_timeout: 1s is shorter than a worst-case Raft election (2 × raft.election_rtt × raft.rtt = 2s), which a failover of a node that was also a controller waits for; raise it, or lower raft.rtt`},
		},
		{
			name: "node id beyond int32",
			src:  "[node]\nid = 2147483648\n",
			want: []string{`t.toml:2:1: node.id: 2147483648 is too large; Kafka broker ids are 32-bit, use 1 to 2147483647`},
		},
		{
			name: "unknown key without suggestion",
			src:  "[admin]\ntls = true\n",
			want: []string{`t.toml:2:1: admin.tls: unknown key; use one of listen, token_file, public_reads, allowed_hosts`},
		},
		{
			name: "key outside its table",
			src:  "id = 2\n",
			want: []string{`t.toml:1:1: id: unknown key; did you mean "node.id" (under [node])?`},
		},
		{
			name: "unknown table",
			src:  "[rafts]\nrtt = \"1s\"\n",
			want: []string{`t.toml:1:2: rafts: unknown key; did you mean "raft"?`},
		},
		{
			name: "wrong type quoted integer",
			src:  "[raft]\nelection_rtt = \"20\"\n",
			want: []string{`t.toml:2:1: raft.election_rtt: want an integer, got string; write 20 without quotes`},
		},
		{
			name: "wrong type string for integer",
			src:  "[raft]\nheartbeat_rtt = \"two\"\n",
			want: []string{`t.toml:2:1: raft.heartbeat_rtt: want an integer, got string`},
		},
		{
			name: "wrong type float for integer",
			src:  "[cluster]\npartition_groups = 4.0\n",
			want: []string{`t.toml:2:1: cluster.partition_groups: want an integer, got float`},
		},
		{
			name: "wrong type boolean",
			src:  "[cluster]\njoin = \"yes\"\n",
			want: []string{`t.toml:2:1: cluster.join: want a boolean, got string`},
		},
		{
			name: "wrong type duration",
			src:  "[raft]\nrtt = 50\n",
			want: []string{`t.toml:2:1: raft.rtt: want a duration such as "50ms", got integer; write it with a unit, e.g. "50ms"`},
		},
		{
			name: "wrong type table",
			src:  "raft = 5\n",
			want: []string{`t.toml:1:1: raft: want a table, got integer`},
		},
		{
			name: "wrong type array",
			src:  "[cluster]\ninitial_members = \"1@10.0.0.1:9093\"\n",
			want: []string{`t.toml:2:1: cluster.initial_members: want an array of strings, got string`},
		},
		{
			name: "wrong type array element",
			src:  "[cluster]\ninitial_members = [\n  \"1@127.0.0.1:9093\",\n  2,\n]\n" + thisNode,
			want: []string{`t.toml:4:3: cluster.initial_members[1]: want a string, got integer`},
		},
		{
			name: "wrong type label value",
			src:  "[node.labels]\npower = 5\n",
			want: []string{`t.toml:2:1: node.labels.power: want a string, got integer`},
		},
		{
			name: "negative integer",
			src:  "[raft]\nsnapshot_entries = -1\n",
			want: []string{`t.toml:2:1: raft.snapshot_entries: want a non-negative integer, got -1`},
		},
		{
			name: "array of tables",
			src:  "[node]\nid = 1\n\n[[raft]]\nrtt = \"1s\"\n",
			want: []string{`t.toml:4:3: raft: want a table, got array of tables`},
		},
		{
			name: "key in inline table",
			src:  "kafka = { listen = \"127.0.0.1:9092\", advertized_address = \"10.0.0.1:9092\" }\n",
			want: []string{`t.toml:1:38: kafka.advertized_address: unknown key; did you mean "advertised_address"?`},
		},
		{
			name: "key in nested inline table",
			src:  "node = { id = 1, labels = { Power = \"mains\" } }\n",
			want: []string{`t.toml:1:29: node.labels.Power: label name "Power" is not valid; use 1 to 63 of a-z, 0-9, '_', '.', '-'`},
		},
		{
			name: "bad duration",
			src:  "[raft]\nrtt = \"10x\"\n",
			want: []string{`t.toml:2:1: raft.rtt: bad duration "10x": write a number with a unit, e.g. "10s"`},
		},
		{
			name: "duration out of range",
			src:  "[raft]\nrtt = \"20s\"\n",
			want: []string{`t.toml:2:1: raft.rtt: 20s is out of range; use 1ms to 10s`},
		},
		{
			name: "address without port",
			src:  "[kafka]\nlisten = \"localhost\"\n",
			want: []string{`t.toml:2:1: kafka.listen: "localhost" is not host:port; write it like "127.0.0.1:9092", with IPv6 addresses in brackets`},
		},
		{
			name: "address port out of range",
			src:  "[admin]\nlisten = \"127.0.0.1:70000\"\n",
			want: []string{`t.toml:2:1: admin.listen: "127.0.0.1:70000": port "70000" is not a number from 1 to 65535`},
		},
		{
			name: "address port zero",
			src:  "[admin]\nlisten = \"127.0.0.1:0\"\n",
			want: []string{`t.toml:2:1: admin.listen: "127.0.0.1:0": port "0" is not a number from 1 to 65535`},
		},
		{
			name: "address named port",
			src:  "[admin]\nlisten = \"127.0.0.1:http\"\n",
			want: []string{`t.toml:2:1: admin.listen: "127.0.0.1:http": port "http" is not a number from 1 to 65535`},
		},
		{
			name: "address bad host",
			src:  "[raft]\naddress = \"node_1!:9093\"\n",
			want: []string{`t.toml:2:1: raft.address: "node_1!:9093": "node_1!" is not a valid host name or IP address`},
		},
		{
			name: "advertised wildcard",
			src:  "[kafka]\nadvertised_address = \"0.0.0.0:9092\"\n",
			want: []string{`t.toml:2:1: kafka.advertised_address: "0.0.0.0:9092" is a wildcard address, which no one can dial; write this host's own name or IP address`},
		},
		{
			name: "raft address without host",
			src:  "[raft]\naddress = \":9093\"\n",
			want: []string{`t.toml:2:1: raft.address: ":9093" has no host; write the host or IP address to dial, e.g. "10.0.0.1:9092"`},
		},
		{
			name: "node id missing in cluster mode",
			src:  cluster3 + "[raft]\naddress = \"10.0.0.1:9093\"\n",
			want: []string{`t.toml: node.id: required in cluster mode; set it to this node's id (1 or higher)`},
		},
		{
			name: "raft address missing in cluster mode",
			src:  "[node]\nid = 1\n" + cluster3,
			want: []string{`t.toml: raft.address: required in cluster mode; set it to the host:port other nodes dial to reach this node`},
		},
		{
			name: "node id missing when joining",
			src:  "[cluster]\njoin = true\n[raft]\naddress = \"10.0.0.4:9093\"\n",
			want: []string{`t.toml: node.id: required in cluster mode; set it to this node's id (1 or higher)`},
		},
		{
			name: "node id zero",
			src:  "[node]\nid = 0\n",
			want: []string{`t.toml:2:1: node.id: 0 is not a valid node id; use 1 or higher`},
		},
		{
			name: "node id not a member",
			src:  "[node]\nid = 4\n" + cluster3 + "[raft]\naddress = \"10.0.0.4:9093\"\n",
			want: []string{`t.toml:2:1: node.id: 4 is not in cluster.initial_members (ids 1, 2, 3); set node.id to this node's id, or add "4@10.0.0.4:9093" to cluster.initial_members`},
		},
		{
			name: "raft address differs from member entry",
			src:  "[node]\nid = 2\n" + cluster3 + "[raft]\naddress = \"10.0.0.9:9093\"\n",
			want: []string{`t.toml:6:1: raft.address: "10.0.0.9:9093" is not "10.0.0.2:9093", this node's address in cluster.initial_members; set raft.address to "10.0.0.2:9093" or correct the entry`},
		},
		{
			name: "default raft address differs from single member",
			src:  "[cluster]\ninitial_members = [\"1@10.0.0.1:9093\"]\n",
			want: []string{`t.toml: raft.address: "127.0.0.1:9093" is not "10.0.0.1:9093", this node's address in cluster.initial_members; set raft.address to "10.0.0.1:9093" or correct the entry`},
		},
		{
			name: "join with members",
			src:  "[node]\nid = 1\n" + cluster3 + "join = true\n[raft]\naddress = \"10.0.0.1:9093\"\n",
			want: []string{`t.toml:4:1: cluster.initial_members: must be empty when cluster.join is true, as the running cluster supplies the members; remove it, or set join = false to bootstrap a new cluster`},
		},
		{
			name: "bad member entries",
			src: "[cluster]\ninitial_members = [\n" +
				"  \"x@10.0.0.1:9093\",\n" +
				"  \"10.0.0.2:9093\",\n" +
				"  \"0@10.0.0.3:9093\",\n" +
				"  \"1@10.0.0.4\",\n" +
				"  \"1@127.0.0.1:9093\",\n" +
				"  \"1@10.0.0.6:9093\",\n" +
				"  \"2@127.0.0.1:9093\",\n" +
				"]\n" + thisNode,
			want: []string{
				`t.toml:3:3: cluster.initial_members: "x@10.0.0.1:9093": node id "x" is not a number; write entries as ID@host:port, e.g. "1@10.0.0.1:9093"`,
				`t.toml:4:3: cluster.initial_members: "10.0.0.2:9093": no node id; write entries as ID@host:port, e.g. "1@10.0.0.1:9093"`,
				`t.toml:5:3: cluster.initial_members: "0@10.0.0.3:9093": 0 is not a valid node id; use 1 or higher`,
				`t.toml:6:3: cluster.initial_members: "1@10.0.0.4": "10.0.0.4" is not host:port; write it like "10.0.0.1:9092", with IPv6 addresses in brackets`,
				`t.toml:8:3: cluster.initial_members: "1@10.0.0.6:9093": node id 1 is also in "1@127.0.0.1:9093"; give each member its own id`,
				`t.toml:9:3: cluster.initial_members: "2@127.0.0.1:9093": address 127.0.0.1:9093 is also in "1@127.0.0.1:9093"; give each member its own address`,
			},
		},
		{
			name: "election not above twice heartbeat",
			src:  "[raft]\nelection_rtt = 4\nheartbeat_rtt = 2\n",
			want: []string{`t.toml:2:1: raft.election_rtt: election_rtt (4) must be more than twice heartbeat_rtt (2); raise raft.election_rtt or lower raft.heartbeat_rtt`},
		},
		{
			name: "heartbeat raised past default election",
			src:  "[raft]\nheartbeat_rtt = 10\n",
			want: []string{`t.toml:2:1: raft.heartbeat_rtt: election_rtt (20) must be more than twice heartbeat_rtt (10); raise raft.election_rtt or lower raft.heartbeat_rtt`},
		},
		{
			name: "heartbeat zero",
			src:  "[raft]\nheartbeat_rtt = 0\n",
			want: []string{`t.toml:2:1: raft.heartbeat_rtt: 0 is too small; use 1 or higher`},
		},
		{
			name: "port collision",
			src:  "[kafka]\nlisten = \"0.0.0.0:9092\"\n[admin]\nlisten = \"127.0.0.1:9092\"\n",
			want: []string{`t.toml:4:1: admin.listen: "127.0.0.1:9092" takes the port of kafka.listen ("0.0.0.0:9092"); give each listener its own port`},
		},
		{
			name: "port collision with raft listen address",
			src:  "[raft]\nlisten_address = \"[::]:9092\"\n",
			want: []string{`t.toml:2:1: raft.listen_address: "[::]:9092" takes the port of kafka.listen ("127.0.0.1:9092"); give each listener its own port`},
		},
		{
			name: "wildcard kafka listener in cluster mode",
			src:  "[node]\nid = 1\n" + cluster3 + "[raft]\naddress = \"10.0.0.1:9093\"\n[kafka]\nlisten = \":9092\"\n",
			want: []string{`t.toml:8:1: kafka.listen: ":9092" listens on every interface, which is no address for clients to dial; set kafka.advertised_address to the address clients dial`},
		},
		{
			name: "cluster name",
			src:  "[cluster]\nname = \"plant 1\"\n",
			want: []string{`t.toml:2:1: cluster.name: "plant 1" is not a valid cluster name; use 1 to 64 of A-Z, a-z, 0-9, '_', '-'`},
		},
		{
			name: "partition groups",
			src:  "[cluster]\npartition_groups = 65\n",
			want: []string{`t.toml:2:1: cluster.partition_groups: 65 is out of range; use 1 to 64`},
		},
		{
			name: "label value too long",
			src:  "[node.labels]\n\"rack.row\" = \"" + strings.Repeat("x", 256) + "\"\n",
			want: []string{`t.toml:2:1: node.labels."rack.row": label value is 256 bytes; shorten it to 255 or fewer`},
		},
		{
			name: "empty data dir",
			src:  "[node]\ndata_dir = \"\"\n",
			want: []string{`t.toml:2:1: node.data_dir: must not be empty; set it to a directory reeve may write, e.g. "/var/lib/reeve"`},
		},
		{
			name: "log level and format",
			src:  "[log]\nlevel = \"warning\"\nformat = \"xml\"\n",
			want: []string{
				`t.toml:2:1: log.level: unknown level "warning" (did you mean "warn"?); use one of debug, info, warn, error`,
				`t.toml:3:1: log.format: unknown format "xml"; use one of auto, text, json, logfmt`,
			},
		},
		{
			name: "fsync mode with suggestion",
			src:  "[kafka]\nfsync = \"alway\"\n",
			want: []string{`t.toml:2:1: kafka.fsync: unknown mode "alway" (did you mean "always"?); use one of always, interval, never`},
		},
		{
			name: "fsync mode without suggestion",
			src:  "[kafka]\nfsync = \"sometimes\"\n",
			want: []string{`t.toml:2:1: kafka.fsync: unknown mode "sometimes"; use one of always, interval, never`},
		},
		{
			name: "fsync wrong type",
			src:  "[kafka]\nfsync = true\n",
			want: []string{`t.toml:2:1: kafka.fsync: want a string, got boolean`},
		},
		{
			name: "auto create topics quoted",
			src:  "[kafka]\nauto_create_topics = \"false\"\n",
			want: []string{`t.toml:2:1: kafka.auto_create_topics: want a boolean, got string; write false without quotes`},
		},
		{
			name: "max request bytes too small",
			src:  "[kafka]\nmax_request_bytes = 512\n",
			want: []string{`t.toml:2:1: kafka.max_request_bytes: 512 is out of range; use 1024 to 1073741824`},
		},
		{
			name: "max request bytes too large",
			src:  "[kafka]\nmax_request_bytes = 1073741825\n",
			want: []string{`t.toml:2:1: kafka.max_request_bytes: 1073741825 is out of range; use 1024 to 1073741824`},
		},
		{
			name: "default partitions zero",
			src:  "[kafka]\ndefault_partitions = 0\n",
			want: []string{`t.toml:2:1: kafka.default_partitions: 0 is out of range; use 1 to 100000`},
		},
		{
			name: "default partitions beyond int32",
			src:  "[kafka]\ndefault_partitions = 3000000000\n",
			want: []string{`t.toml:2:1: kafka.default_partitions: 3000000000 is out of range; use 1 to 100000`},
		},
		{
			name: "default partitions wrong type",
			src:  "[kafka]\ndefault_partitions = \"12\"\n",
			want: []string{`t.toml:2:1: kafka.default_partitions: want an integer, got string; write 12 without quotes`},
		},
		{
			name: "replication factor out of range",
			src:  "[kafka]\nfsync = \"always\"\ndefault_replication_factor = 9\n",
			want: []string{`t.toml:3:1: kafka.default_replication_factor: 9 is out of range; use 1 to 7`},
		},
		{
			name: "replication factor zero",
			src:  "kafka = { default_replication_factor = 0 }\n",
			want: []string{`t.toml:1:11: kafka.default_replication_factor: 0 is out of range; use 1 to 7`},
		},
		{
			name: "replication factor beyond int16",
			src:  "[kafka]\ndefault_replication_factor = 70000\n",
			want: []string{`t.toml:2:1: kafka.default_replication_factor: 70000 is out of range; use 1 to 7`},
		},
		{
			name: "replication factor below int16",
			src:  "[kafka]\ndefault_replication_factor = -40000\n",
			want: []string{`t.toml:2:1: kafka.default_replication_factor: -40000 is out of range; use 1 to 7`},
		},
		{
			name: "replication factor float",
			src:  "[kafka]\ndefault_replication_factor = 3.0\n",
			want: []string{`t.toml:2:1: kafka.default_replication_factor: want an integer, got float`},
		},
		{
			name: "fsync interval bad duration",
			src:  "[kafka]\nfsync = \"interval\"\nfsync_interval = \"often\"\n",
			want: []string{`t.toml:3:1: kafka.fsync_interval: bad duration "often": write a number with a unit, e.g. "10s"`},
		},
		{
			name: "fsync interval zero",
			src:  "[kafka]\nfsync = \"interval\"\nfsync_interval = \"0s\"\n",
			want: []string{`t.toml:3:1: kafka.fsync_interval: 0s is out of range; use 1ms to 1h`},
		},
		{
			name: "fsync interval too long under another mode",
			src:  "[kafka]\nfsync_interval = \"2h\"\n",
			want: []string{`t.toml:2:1: kafka.fsync_interval: 2h is out of range; use 1ms to 1h`},
		},
		{
			name: "fsync interval without unit",
			src:  "[kafka]\nfsync_interval = 100\n",
			want: []string{`t.toml:2:1: kafka.fsync_interval: want a duration such as "50ms", got integer; write it with a unit, e.g. "100ms"`},
		},
		{
			name: "segment bytes too small",
			src:  "[kafka]\nsegment_bytes = 1048575\n",
			want: []string{`t.toml:2:1: kafka.segment_bytes: 1048575 is out of range; use 1048576 to 1073741824`},
		},
		{
			name: "segment bytes too large",
			src:  "[kafka]\nsegment_bytes = 2147483648\n",
			want: []string{`t.toml:2:1: kafka.segment_bytes: 2147483648 is out of range; use 1048576 to 1073741824`},
		},
		{
			name: "segment age too short",
			src:  "[kafka]\nsegment_age = \"59s\"\n",
			want: []string{`t.toml:2:1: kafka.segment_age: 59s is too short; use 1m or longer`},
		},
		{
			name: "segment age negative",
			src:  "[kafka]\nsegment_age = \"-1h30m\"\n",
			want: []string{`t.toml:2:1: kafka.segment_age: -1h30m is too short; use 1m or longer`},
		},
		{
			name: "retention negative",
			src:  "[kafka]\nretention = \"-1h\"\n",
			want: []string{`t.toml:2:1: kafka.retention: -1h is negative; use "0s" to keep records forever, or a positive duration such as "168h"`},
		},
		{
			name: "retention in days",
			src:  "[kafka]\nretention = \"7d\"\n",
			want: []string{`t.toml:2:1: kafka.retention: bad duration "7d": there is no unit for days; write "168h"`},
		},
		{
			name: "retention in fractional days",
			src:  "[kafka]\nretention = \"1.5d\"\n",
			want: []string{`t.toml:2:1: kafka.retention: bad duration "1.5d": there is no unit for days; write "36h"`},
		},
		{
			name: "retention bad duration",
			src:  "[kafka]\nretention = \"forever\"\n",
			want: []string{`t.toml:2:1: kafka.retention: bad duration "forever": write a number with a unit, e.g. "10s"`},
		},
		{
			name: "retention bytes zero",
			src:  "[kafka]\nretention_bytes = 0\n",
			want: []string{`t.toml:2:1: kafka.retention_bytes: 0 is out of range; use -1 for no limit, or 1048576 (1 MiB) or more`},
		},
		{
			name: "retention bytes below minus one",
			src:  "[kafka]\nretention_bytes = -2\n",
			want: []string{`t.toml:2:1: kafka.retention_bytes: -2 is out of range; use -1 for no limit, or 1048576 (1 MiB) or more`},
		},
		{
			name: "retention bytes too small",
			src:  "[kafka]\nretention_bytes = 1048575\n",
			want: []string{`t.toml:2:1: kafka.retention_bytes: 1048575 is out of range; use -1 for no limit, or 1048576 (1 MiB) or more`},
		},
		{
			name: "unknown kafka key",
			src:  "[kafka]\nretention_ms = 1000\n",
			want: []string{`t.toml:2:1: kafka.retention_ms: unknown key; did you mean "retention"?`},
		},
		{
			name: "several kafka errors together",
			src: "[kafka]\nmax_request_bytes = 0\nauto_create_topics = 1\ndefault_partitions = -1\n" +
				"default_replication_factor = 8\nfsync = \"nevr\"\nfsync_interval = \"1x\"\n" +
				"segment_bytes = 0\nsegment_age = \"0s\"\nretention = \"-168h\"\nretention_bytes = 1\n",
			want: []string{
				`t.toml:2:1: kafka.max_request_bytes: 0 is out of range; use 1024 to 1073741824`,
				`t.toml:3:1: kafka.auto_create_topics: want a boolean, got integer`,
				`t.toml:4:1: kafka.default_partitions: -1 is out of range; use 1 to 100000`,
				`t.toml:5:1: kafka.default_replication_factor: 8 is out of range; use 1 to 7`,
				`t.toml:6:1: kafka.fsync: unknown mode "nevr" (did you mean "never"?); use one of always, interval, never`,
				`t.toml:7:1: kafka.fsync_interval: bad duration "1x": write a number with a unit, e.g. "10s"`,
				`t.toml:8:1: kafka.segment_bytes: 0 is out of range; use 1048576 to 1073741824`,
				`t.toml:9:1: kafka.segment_age: 0s is too short; use 1m or longer`,
				`t.toml:10:1: kafka.retention: -168h is negative; use "0s" to keep records forever, or a positive duration such as "168h"`,
				`t.toml:11:1: kafka.retention_bytes: 1 is out of range; use -1 for no limit, or 1048576 (1 MiB) or more`,
			},
		},
		{
			name: "syntax error",
			src:  "[raft]\nrtt = = \"1s\"\n",
			want: []string{`t.toml:2:7: expected value but found '=' instead`},
		},
		{
			name: "syntax error after CRLF in a string",
			src:  "a = 1\nb = \"x\r\n",
			want: []string{`t.toml:2:7: strings cannot contain newlines`},
		},
		{
			name: "several errors together",
			src: "[node]\nid = 7\n" +
				"\n[cluster]\ninitial_members = [\"1@10.0.0.1:9093\", \"2@10.0.0.2:9093\", \"3@10.0.0.3:9093\"]\n" +
				"\n[raft]\naddress = \"10.0.0.1\"\nrt = \"50ms\"\nelection_rtt = \"20\"\n" +
				"\n[kafka]\nlisten = \"0.0.0.0:9092\"\n" +
				"\n[log]\nlevel = \"loud\"\n",
			want: []string{
				`t.toml:8:1: raft.address: "10.0.0.1" is not host:port; write it like "10.0.0.1:9092", with IPv6 addresses in brackets`,
				`t.toml:9:1: raft.rt: unknown key; did you mean "rtt"?`,
				`t.toml:10:1: raft.election_rtt: want an integer, got string; write 20 without quotes`,
				`t.toml:13:1: kafka.listen: "0.0.0.0:9092" listens on every interface, which is no address for clients to dial; set kafka.advertised_address to the address clients dial`,
				`t.toml:16:1: log.level: unknown level "loud"; use one of debug, info, warn, error`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.src))
			if c != nil {
				t.Errorf("Parse(%q) = %+v, want nil", tt.src, c)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse(%q) error = %v, want Errors", tt.src, err)
			}
			got := make([]string, len(es))
			for i, e := range es {
				got[i] = e.Error()
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) errors =\n\t%s\nwant\n\t%s", tt.src, strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Parse(%q) error = %q, want %q", tt.src, err.Error(), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParse_valid(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	single := Default()
	single.Source = "t.toml"

	tests := []struct {
		name string
		src  string
		want func(*Config)
	}{
		{name: "empty file is the defaults", src: "", want: func(c *Config) {}},
		{name: "comments only", src: "# nothing\n\n", want: func(c *Config) {}},
		{
			name: "three-node cluster",
			src:  threeNodes,
			want: func(c *Config) {
				c.Node = Node{ID: 2, DataDir: "/var/lib/reeve", Labels: map[string]string{"power": "battery", "rack.row": "3"}}
				c.Cluster = Cluster{
					Name:            "plant-1",
					InitialMembers:  []string{"1@10.0.0.1:9093", "2@10.0.0.2:9093", "3@10.0.0.3:9093"},
					PartitionGroups: 8,
				}
				c.Raft.Address = "10.0.0.2:9093"
				c.Raft.ListenAddress = "0.0.0.0:9093"
				c.Raft.RTT = Duration{100 * time.Millisecond}
				c.Raft.ElectionRTT = 10
				c.Raft.HeartbeatRTT = 1
				c.Kafka.Listen = "0.0.0.0:9092"
				c.Kafka.AdvertisedAddress = "10.0.0.2:9092"
			},
		},
		{
			name: "single node elsewhere",
			src:  "[node]\nid = 5\n[raft]\naddress = \"edge-1.local:7000\"\n[kafka]\nlisten = \"[::1]:7001\"\n",
			want: func(c *Config) {
				c.Node.ID = 5
				c.Raft.Address = "edge-1.local:7000"
				c.Cluster.InitialMembers = []string{"5@edge-1.local:7000"}
				c.Kafka.Listen = "[::1]:7001"
			},
		},
		{
			name: "single listed member",
			src:  "[cluster]\ninitial_members = [\"1@LOCALHOST:9093\"]\n",
			want: func(c *Config) { c.Cluster.InitialMembers = []string{"1@LOCALHOST:9093"} },
		},
		{
			name: "joining node",
			src:  "[node]\nid = 4\n[cluster]\njoin = true\n[raft]\naddress = \"10.0.0.4:9093\"\n",
			want: func(c *Config) {
				c.Node.ID = 4
				c.Cluster.Join = true
				c.Cluster.InitialMembers = nil
				c.Raft.Address = "10.0.0.4:9093"
			},
		},
		{
			name: "wildcard kafka listener outside cluster mode",
			src:  "[kafka]\nlisten = \"0.0.0.0:9092\"\n",
			want: func(c *Config) { c.Kafka.Listen = "0.0.0.0:9092" },
		},
		{
			name: "same port on other hosts",
			src:  "[kafka]\nlisten = \"127.0.0.1:9000\"\n[admin]\nlisten = \"127.0.0.2:9000\"\n",
			want: func(c *Config) {
				c.Kafka.Listen = "127.0.0.1:9000"
				c.Admin.Listen = "127.0.0.2:9000"
			},
		},
		{
			name: "kafka log tuned",
			src: "[kafka]\nmax_request_bytes = 1048576\nauto_create_topics = false\ndefault_partitions = 12\n" +
				"default_replication_factor = 1\nfsync = \"interval\"\nfsync_interval = \"200ms\"\n" +
				"segment_bytes = 1073741824\nsegment_age = \"1h\"\nretention = \"0s\"\nretention_bytes = 10485760\n",
			want: func(c *Config) {
				c.Kafka.MaxRequestBytes = 1 << 20
				c.Kafka.AutoCreateTopics = false
				c.Kafka.DefaultPartitions = 12
				c.Kafka.DefaultReplicationFactor = 1
				c.Kafka.Fsync = "interval"
				c.Kafka.FsyncInterval = Duration{200 * time.Millisecond}
				c.Kafka.SegmentBytes = 1 << 30
				c.Kafka.SegmentAge = Duration{time.Hour}
				c.Kafka.Retention = Duration{0}
				c.Kafka.RetentionBytes = 10 << 20
				c.Kafka.MaxMessageBytes = 1 << 20 // follows max_request_bytes down
			},
		},
		{
			name: "kafka range edges",
			src: "[kafka]\nmax_request_bytes = 1024\ndefault_partitions = 100000\ndefault_replication_factor = 7\n" +
				"fsync = \"never\"\nfsync_interval = \"1ms\"\nsegment_bytes = 1048576\nsegment_age = \"1m\"\n" +
				"retention = \"1ns\"\nretention_bytes = 1048576\n",
			want: func(c *Config) {
				c.Kafka.MaxRequestBytes = 1024
				c.Kafka.DefaultPartitions = 100000
				c.Kafka.DefaultReplicationFactor = 7
				c.Kafka.Fsync = "never"
				c.Kafka.FsyncInterval = Duration{time.Millisecond}
				c.Kafka.SegmentBytes = 1 << 20
				c.Kafka.SegmentAge = Duration{time.Minute}
				c.Kafka.Retention = Duration{1}
				c.Kafka.RetentionBytes = 1 << 20
				c.Kafka.MaxMessageBytes = 1024
			},
		},
		{
			name: "kafka upper edges",
			src:  "[kafka]\nmax_request_bytes = 1073741824\ndefault_partitions = 1\nfsync_interval = \"1h\"\nretention_bytes = -1\n",
			want: func(c *Config) {
				c.Kafka.MaxRequestBytes = 1 << 30
				c.Kafka.FsyncInterval = Duration{time.Hour}
				c.Kafka.QueuedMaxRequestBytes = 1 << 30 // follows max_request_bytes up
			},
		},
		{
			name: "connection and memory limits",
			src: "[kafka]\nmax_connections = 50\nqueued_max_request_bytes = 1073741824\nmax_message_bytes = 2097152\n" +
				"max_partitions = 2000\n",
			want: func(c *Config) {
				c.Kafka.MaxConnections = 50
				c.Kafka.MaxConnectionsPerIP = 50 // follows max_connections down
				c.Kafka.QueuedMaxRequestBytes = 1 << 30
				c.Kafka.MaxMessageBytes = 2 << 20
				c.Kafka.MaxPartitions = 2000
			},
		},
		{
			name: "snapshots off",
			src:  "[raft]\nsnapshot_entries = 0\ncompaction_overhead = 0\n",
			want: func(c *Config) {
				c.Raft.SnapshotEntries = 0
				c.Raft.CompactionOverhead = 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := *single
			want.Cluster.InitialMembers = append([]string(nil), single.Cluster.InitialMembers...)
			want.Node.Labels = map[string]string{}
			tt.want(&want)
			got, err := Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("Parse(%q) =\n\t%+v\nwant\n\t%+v", tt.src, got, &want)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	c := Default()
	want := &Config{
		Node:    Node{ID: 1, DataDir: "reeve-data", Labels: map[string]string{}},
		Cluster: Cluster{Name: "reeve", InitialMembers: []string{"1@127.0.0.1:9093"}, PartitionGroups: 4},
		Raft: Raft{
			Address:            "127.0.0.1:9093",
			RTT:                Duration{50 * time.Millisecond},
			ElectionRTT:        20,
			HeartbeatRTT:       2,
			SnapshotEntries:    1000,
			CompactionOverhead: 500,
		},
		Kafka: Kafka{
			Listen:                     "127.0.0.1:9092",
			MaxRequestBytes:            104857600,
			AutoCreateTopics:           true,
			DefaultPartitions:          1,
			DefaultReplicationFactor:   3,
			Fsync:                      "always",
			FsyncInterval:              Duration{time.Second},
			SegmentBytes:               67108864,
			SegmentAge:                 Duration{168 * time.Hour},
			GroupInitialRebalanceDelay: Duration{3 * time.Second},
			ReplicaLagTime:             Duration{10 * time.Second},
			Retention:                  Duration{168 * time.Hour},
			RetentionBytes:             -1,
			MaxConnections:             1000,
			MaxConnectionsPerIP:        100,
			QueuedMaxRequestBytes:      128 << 20,
			MaxMessageBytes:            1048588,
		},
		Admin: Admin{Listen: "127.0.0.1:9644"},
		Log:   Log{Level: "info", Format: "auto"},
		Election: Election{HeartbeatInterval: Duration{time.Second}, LeaderTimeout: Duration{10 * time.Second},
			RebalanceInterval: Duration{5 * time.Minute}, HoldDown: Duration{30 * time.Second},
			PolicyMemoryMiB: 16, PolicyTimeout: Duration{50 * time.Millisecond},
			PolicyMaxModuleMiB: 8, PolicyMaxFunctionKiB: 1024, PolicyMaxTableElements: 65536, PolicyMaxStackKiB: 1024},
		Events: Events{SubjectPrefix: "reeve", EmbeddedListen: "127.0.0.1:4222"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() =\n\t%+v\nwant\n\t%+v", c, want)
	}
	if c.ClusterMode() {
		t.Errorf("Default().ClusterMode() = true, want false")
	}
	if got, want := c.Cluster.Members(), map[uint64]string{1: "127.0.0.1:9093"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Default().Cluster.Members() = %v, want %v", got, want)
	}
	parsed, err := Parse("", nil)
	if err != nil {
		t.Fatalf("Parse(\"\", nil) error = %v", err)
	}
	if !reflect.DeepEqual(parsed, c) {
		t.Errorf("Parse(\"\", nil) = %+v, want Default() %+v", parsed, c)
	}
}

func TestDefault_stateDirectory(t *testing.T) {
	tests := []struct {
		name, env, want string
	}{
		{name: "unset", env: "", want: "reeve-data"},
		{name: "one directory", env: "/var/lib/reeve", want: "/var/lib/reeve"},
		{name: "several directories", env: "/var/lib/reeve:/var/lib/other", want: "/var/lib/reeve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("STATE_DIRECTORY", tt.env)
			if got := Default().Node.DataDir; got != tt.want {
				t.Errorf("Default().Node.DataDir with STATE_DIRECTORY=%q = %q, want %q", tt.env, got, tt.want)
			}
		})
	}
}

func TestConfig_ClusterMode(t *testing.T) {
	tests := []struct {
		name    string
		cluster Cluster
		want    bool
	}{
		{name: "one member", cluster: Cluster{InitialMembers: []string{"1@127.0.0.1:9093"}}, want: false},
		{name: "three members", cluster: Cluster{InitialMembers: []string{"1@a:1", "2@b:1", "3@c:1"}}, want: true},
		{name: "join", cluster: Cluster{Join: true}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Cluster: tt.cluster}
			if got := c.ClusterMode(); got != tt.want {
				t.Errorf("Config{Cluster: %+v}.ClusterMode() = %v, want %v", tt.cluster, got, tt.want)
			}
		})
	}
}

func TestCluster_Members(t *testing.T) {
	c, err := Parse("t.toml", []byte(threeNodes))
	if err != nil {
		t.Fatalf("Parse(threeNodes) error = %v", err)
	}
	want := map[uint64]string{1: "10.0.0.1:9093", 2: "10.0.0.2:9093", 3: "10.0.0.3:9093"}
	if got := c.Cluster.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("Cluster.Members() = %v, want %v", got, want)
	}
	if !c.ClusterMode() {
		t.Errorf("ClusterMode() = false, want true")
	}
}

func TestError_Error(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{name: "full", err: Error{File: "reeve.toml", Line: 12, Col: 3, Key: "raft.rtt", Msg: "bad"}, want: "reeve.toml:12:3: raft.rtt: bad"},
		{name: "no position", err: Error{File: "reeve.toml", Key: "node.id", Msg: "required"}, want: "reeve.toml: node.id: required"},
		{name: "no column", err: Error{File: "reeve.toml", Line: 2, Key: "k", Msg: "m"}, want: "reeve.toml:2: k: m"},
		{name: "no key", err: Error{File: "reeve.toml", Line: 2, Col: 7, Msg: "syntax"}, want: "reeve.toml:2:7: syntax"},
		{name: "no file", err: Error{Line: 2, Col: 7, Key: "k", Msg: "m"}, want: "2:7: k: m"},
		{name: "message only", err: Error{Msg: "m"}, want: "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("%+v.Error() = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrors_unwrap(t *testing.T) {
	_, err := Parse("t.toml", []byte("[raft]\nrt = 1\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(%v, *Error) = false, want true", err)
	}
	if e.Key != "raft.rt" || e.Line != 2 || e.Col != 1 {
		t.Errorf("errors.As(...) = %+v, want raft.rt at 2:1", e)
	}
}

func TestLoad_systemdSample(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "")
	c, err := Load("../systemd/reeve.toml")
	if err != nil {
		t.Fatalf("Load(../systemd/reeve.toml) error = %v", err)
	}
	if c.Source != "../systemd/reeve.toml" {
		t.Errorf("Load(...).Source = %q, want %q", c.Source, "../systemd/reeve.toml")
	}
	if c.Node.DataDir != "/var/lib/reeve" {
		t.Errorf("Load(...).Node.DataDir = %q, want /var/lib/reeve", c.Node.DataDir)
	}
	if !c.ClusterMode() {
		t.Errorf("Load(...).ClusterMode() = false, want true")
	}
}

func TestLoad_missingFile(t *testing.T) {
	c, err := Load("testdata/does-not-exist.toml")
	if c != nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(testdata/does-not-exist.toml) = %v, %v, want nil, os.ErrNotExist", c, err)
	}
}

func TestDuration_text(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("UnmarshalText(1m30s) = %v, %v, want 1m30s, nil", d.Duration, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText() = %q, want %q", b, "1m30s")
	}
}

func TestDuration_days(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{text: "7d", want: `bad duration "7d": there is no unit for days; write "168h"`},
		{text: "0.5d", want: `bad duration "0.5d": there is no unit for days; write "12h"`},
		{text: "1e300d", want: `bad duration "1e300d": write a number with a unit, e.g. "10s"`},
		{text: "NaNd", want: `bad duration "NaNd": write a number with a unit, e.g. "10s"`},
		{text: "d", want: `bad duration "d": write a number with a unit, e.g. "10s"`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var d Duration
			if err := d.UnmarshalText([]byte(tt.text)); err == nil || err.Error() != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, want %s", tt.text, err, tt.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{d: 0, want: "0s"},
		{d: time.Millisecond, want: "1ms"},
		{d: time.Minute, want: "1m"},
		{d: 90 * time.Minute, want: "1h30m"},
		{d: 168 * time.Hour, want: "168h"},
		{d: -time.Hour, want: "-1h"},
		{d: time.Hour + time.Second, want: "1h0m1s"},
	}
	for _, tt := range tests {
		if got := durationText(tt.d); got != tt.want {
			t.Errorf("durationText(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestIntRange(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		typ    reflect.Type
		lo, hi int64
	}{
		{name: "ranged key", key: "kafka.default_replication_factor", typ: reflect.TypeFor[int16](), lo: 1, hi: 7},
		{name: "int16 key without a range", key: "x", typ: reflect.TypeFor[int16](), lo: -32768, hi: 32767},
		{name: "int32 key without a range", key: "x", typ: reflect.TypeFor[int32](), lo: -1 << 31, hi: 1<<31 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if lo, hi := intRange(tt.key, tt.typ); lo != tt.lo || hi != tt.hi {
				t.Errorf("intRange(%q, %v) = %d, %d, want %d, %d", tt.key, tt.typ, lo, hi, tt.lo, tt.hi)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"address", "listen_address", "rtt", "election_rtt", "heartbeat_rtt"}
	tests := []struct {
		word, want string
	}{
		{word: "rt", want: "rtt"},
		{word: "RTT", want: "rtt"},
		{word: "adress", want: "address"},
		{word: "electon_rtt", want: "election_rtt"},
		{word: "heartbeat", want: "heartbeat_rtt"},
		{word: "tls", want: ""},
		{word: "x", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.word, func(t *testing.T) {
			if got := suggest(tt.word, keys); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.word, got, tt.want)
			}
		})
	}
}

// TestDocs keeps docs/configuration.md in step with the code: its examples
// parse, and its reference names every key.
func TestDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatalf("ReadFile(../docs/configuration.md) error = %v", err)
	}
	examples := 0
	for i, block := range strings.Split(string(doc), "```toml\n")[1:] {
		src, _, _ := strings.Cut(block, "```")
		if _, err := Parse("example", []byte(src)); err != nil {
			t.Errorf("Parse(example %d) error = %v", i+1, err)
		}
		examples++
	}
	if examples < 2 {
		t.Errorf("docs/configuration.md has %d TOML examples, want at least 2", examples)
	}
	top := reflect.TypeFor[Config]()
	tables, _ := fields(top)
	for _, table := range tables {
		if !strings.Contains(string(doc), "### `["+table+"]`") {
			t.Errorf("docs/configuration.md has no section for [%s]", table)
		}
		keys, _ := fields(top.Field(mustIndex(top, table)).Type)
		for _, key := range keys {
			if !strings.Contains(string(doc), "| `"+key+"` |") {
				t.Errorf("docs/configuration.md has no row for %s.%s", table, key)
			}
		}
	}
}
