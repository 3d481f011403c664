package raft

import (
	"errors"

	"github.com/lni/dragonboat/v4"
)

// Errors a state machine returns for a rejected command. The proposer gets
// them wrapped with the details, so test them with errors.Is.
var (
	ErrTopicExists        = errors.New("topic already exists")
	ErrUnknownTopic       = errors.New("unknown topic")
	ErrInvalidTopic       = errors.New("invalid topic")
	ErrReplicationFactor  = errors.New("replication factor larger than the live node count")
	ErrStale              = errors.New("stale update: epoch does not match")
	ErrUnknownPartition   = errors.New("unknown partition")
	ErrInvalidUpdate      = errors.New("invalid partition update")
	ErrUnknownNode        = errors.New("unknown node")
	ErrNodeExists         = errors.New("node already exists")
	ErrNodeRemoved        = errors.New("node was removed")
	ErrNotBootstrapped    = errors.New("cluster not bootstrapped")
	ErrBootstrapMismatch  = errors.New("cluster bootstrapped with other settings")
	ErrUnsupportedCommand = errors.New("unsupported command")
	ErrIdentity           = errors.New("data directory belongs to another node or cluster")
	ErrClosed             = errors.New("store closed")
	ErrUnknownGroup       = errors.New("no such raft group on this node")
	// ErrNodeUnreachable refuses to add a node that does not answer at
	// its raft address as a node of this cluster.
	ErrNodeUnreachable = errors.New("no node of this cluster answers at that raft address")
	// ErrLastNode refuses to remove the only member left: the cluster
	// would have no one to hold its state.
	ErrLastNode = errors.New("it is the last node of the cluster")
)

// errCodes gives each sentinel a stable code for the wire between the state
// machine and the proposer; codes are part of the log format and never reused.
var errCodes = map[string]error{
	"topic_exists":        ErrTopicExists,
	"unknown_topic":       ErrUnknownTopic,
	"invalid_topic":       ErrInvalidTopic,
	"replication_factor":  ErrReplicationFactor,
	"stale":               ErrStale,
	"unknown_partition":   ErrUnknownPartition,
	"invalid_update":      ErrInvalidUpdate,
	"unknown_node":        ErrUnknownNode,
	"node_exists":         ErrNodeExists,
	"node_removed":        ErrNodeRemoved,
	"not_bootstrapped":    ErrNotBootstrapped,
	"bootstrap_mismatch":  ErrBootstrapMismatch,
	"unsupported_command": ErrUnsupportedCommand,
}

func codeOf(err error) string {
	for code, e := range errCodes {
		if errors.Is(err, e) {
			return code
		}
	}
	return "unsupported_command"
}

// IsTimeout reports whether err is a proposal that timed out: it may or may
// not have been applied, so the caller re-reads the state before trying
// again (partition updates and deletes are not retried for it).
func IsTimeout(err error) bool { return errors.Is(err, dragonboat.ErrTimeout) }
