package kafka

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// The partition limit (Config.MaxPartitions, kafka.max_partitions). Every
// partition replica a node holds keeps files open, so a creation that
// would place more replicas on a node than the limit is refused with
// POLICY_VIOLATION before anything is asked of Raft: CreateTopics (also
// validate_only), CreatePartitions, and auto-creation.
//
// The check covers every node the new replicas may land on, not only this
// one: placement is round-robin over the live nodes (raft's assign), so each
// gets the new replicas divided by the live node count, rounded up for the
// fullest, whose rotation only the cluster group knows. Each node is held to
// the limit of the node that handles the request, since the limits are not
// shared through Raft: give every node the same limit (or the same
// open-file limit). The check reads the local metadata view and is not
// serialized with other creations, so two creations at once can together
// pass the limit by what one of them adds.

// ErrPartitionLimit is a creation refused by the partition limit; the error
// also wraps kerr.PolicyViolation.
var ErrPartitionLimit = errors.New("partition limit")

const (
	// filesPerPartition is what the derived limit budgets for one replica:
	// a log's fixed files and room for four older segments.
	filesPerPartition = storage.FilesPerLog + 4
	// fileReserve is the descriptors the derived limit leaves, besides the
	// client connections, for everything else: Raft's log database and
	// transport, the embedded NATS server, the admin endpoint, policy
	// modules, checkpoint writes.
	fileReserve = 1024
	// assumedOpenFiles stands in for the open-file limit where it cannot be
	// read.
	assumedOpenFiles = 1 << 16
)

// DerivePartitionLimit is the default kafka.max_partitions for a process
// allowed openFiles descriptors (RLIMIT_NOFILE's soft limit, which Go raises
// to the hard limit at start) that holds maxConnections connections:
// (openFiles - maxConnections - 1024) / 8, at least 1.
func DerivePartitionLimit(openFiles uint64, maxConnections int) int {
	free := int64(min(openFiles, 1<<40)) - int64(maxConnections) - fileReserve
	return int(max(free/filesPerPartition, 1))
}

// partitionLimit resolves Config.MaxPartitions: the configured value, or
// the one derived from the open-file limit, with words saying which.
func partitionLimit(cfg Config) (int, string) {
	if cfg.MaxPartitions > 0 {
		return cfg.MaxPartitions, "kafka.max_partitions"
	}
	files, ok := openFileLimit()
	if !ok {
		files = assumedOpenFiles
	}
	return DerivePartitionLimit(files, cfg.MaxConnections),
		fmt.Sprintf("kafka.max_partitions, derived from the open-file limit %d", files)
}

// CheckNewReplicas reports whether partitions new partitions of
// replicationFactor replicas each fit the partition limit on every live
// node; the error wraps ErrPartitionLimit and kerr.PolicyViolation and names
// the node and the limit. The admin API's topic creation can share it
// through an interface it declares.
func (s *Server) CheckNewReplicas(partitions int32, replicationFactor int16) error {
	nodes := s.cluster.Brokers()
	if len(nodes) == 0 || partitions <= 0 || replicationFactor <= 0 {
		return nil
	}
	held := make(map[int32]int, len(nodes))
	for _, t := range s.cluster.Topics() {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				held[r]++
			}
		}
	}
	live := max(s.cluster.LiveNodes(), 1)
	replicas := int64(partitions) * int64(replicationFactor)
	add := int((replicas + int64(live) - 1) / int64(live))
	// The fullest node first; the lowest id among equals, for a stable message.
	slices.SortFunc(nodes, func(a, b Broker) int {
		if d := held[b.ID] - held[a.ID]; d != 0 {
			return d
		}
		return int(a.ID - b.ID)
	})
	n := nodes[0].ID
	if held[n]+add <= s.partLimit {
		return nil
	}
	whose := "its"
	if self := s.cluster.LocalNode(); n != self {
		whose = fmt.Sprintf("node %d's", self)
	}
	return fmt.Errorf("%w: %w: %d partition(s) of %d replica(s) would put %d more replica(s) on node %d, which holds %d; %s limit is %d (%s); raise it, or the open-file limit, or delete topics",
		kerr.PolicyViolation, ErrPartitionLimit, partitions, replicationFactor, add, n, held[n], whose, s.partLimit, s.partLimitFrom)
}
