package kafka

import (
	"fmt"
	"slices"
	"strings"
)

// Partition logs that failed.
//
// An fsync error fails a partition's log (kafka/internal/storage): it takes
// no more writes, so produce answers KAFKA_STORAGE_ERROR and acks=all
// waiters get the error instead of an acknowledgement, and it serves reads
// only below the offset that was durable before the failure, to consumers
// and followers alike. This node keeps serving its other partitions. The
// Server tells its owner (Config.OnStorageFailed), which moves leadership
// to another in-sync replica and publishes an event; the failure is also
// counted (reeve_kafka_partitions_storage_failed) and listed by
// StorageFailures for /readyz. A restart reopens the log and recovers it
// from what the files hold.

// StorageFailure is a partition whose log failed on this node.
type StorageFailure struct {
	Topic     string
	TopicID   [16]byte
	Partition int32
	Err       error
}

// String describes the failure in one line, for /readyz and logs.
func (f StorageFailure) String() string {
	return fmt.Sprintf("%s-%d: storage failed: %v", f.Topic, f.Partition, f.Err)
}

// storageFailed is the partitions' onFail.
func (s *Server) storageFailed(p *partition, err error) {
	if s.cfg.OnStorageFailed != nil {
		s.cfg.OnStorageFailed(StorageFailure{Topic: p.topic, TopicID: p.id, Partition: p.index, Err: err})
	}
}

// StorageFailures returns the partitions whose log has failed on this node,
// by topic and partition.
func (s *Server) StorageFailures() []StorageFailure {
	ps := s.parts
	ps.mu.Lock()
	var out []StorageFailure
	for _, p := range ps.open {
		if err := p.log.Failed(); err != nil {
			out = append(out, StorageFailure{Topic: p.topic, TopicID: p.id, Partition: p.index, Err: err})
		}
	}
	ps.mu.Unlock()
	slices.SortFunc(out, func(a, b StorageFailure) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}
