package admin

import (
	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// The conversions from the node's state to the API's types: the only place
// Raft and policy values become JSON an HTTP client sees.

func apiNode(n raft.Node) api.Node {
	return api.Node{ID: n.ID, RaftAddress: n.RaftAddress, KafkaAddress: n.KafkaAddress, Labels: n.Labels, State: string(n.State)}
}

func apiNodes(ns []raft.Node) []api.Node {
	out := make([]api.Node, len(ns))
	for i, n := range ns {
		out[i] = apiNode(n)
	}
	return out
}

func apiTopic(t raft.Topic) api.Topic {
	return api.Topic{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor,
		Config: t.Config, Assignment: t.Assignment}
}

func apiPartition(p raft.Partition) api.Partition {
	return api.Partition{Topic: p.Topic, TopicID: p.TopicID.String(), Partition: p.Partition, Replicas: p.Replicas,
		Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, ISR: p.ISR, PartitionEpoch: p.PartitionEpoch}
}

func apiPartitionState(p raft.Partition, group uint64) api.PartitionState {
	return api.PartitionState{Topic: p.Topic, TopicID: p.TopicID.String(), Partition: p.Partition, Replicas: p.Replicas,
		Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, ISR: p.ISR, PartitionEpoch: p.PartitionEpoch, Group: group}
}

func apiGroup(id, leader, applied uint64, partitions int, log raft.GroupLog, ob *raft.OutboxStatus) api.Group {
	g := api.Group{ID: id, Leader: leader, AppliedIndex: applied, Partitions: partitions,
		FirstIndex: log.FirstIndex, LastIndex: log.LastIndex, SnapshotIndex: log.SnapshotIndex}
	if ob != nil {
		g.Outbox = &api.Outbox{Pending: ob.Pending, LastSeq: ob.LastSeq, Acked: ob.Acked, Dropped: ob.Dropped}
	}
	return g
}

func apiElection(r policy.DecisionRecord) api.Election {
	return api.Election{Time: r.Time, Topic: r.Topic, Partition: r.Partition, Reason: string(r.Reason), Policy: r.Policy,
		PolicyDigest: r.PolicyDigest, From: r.From, To: r.To, LeaderEpoch: r.LeaderEpoch, Why: r.Why, Input: r.Input,
		LatencyMs: r.LatencyMs, Unclean: r.Unclean, Committed: r.Committed, Error: r.Error,
		FallbackFrom: r.FallbackFrom, FallbackDigest: r.FallbackDigest, FallbackCause: string(r.FallbackCause),
		FallbackError: r.FallbackError}
}

func apiElections(recs []policy.DecisionRecord) []api.Election {
	out := make([]api.Election, len(recs))
	for i, r := range recs {
		out[i] = apiElection(r)
	}
	return out
}

func apiPolicies(info policy.RulesInfo, fallbacks int) api.Policies {
	out := api.Policies{PolicyDir: info.PolicyDir, Rules: make([]api.PolicyRule, len(info.Rules)),
		Loaded: info.Loaded, Refused: info.Refused, Fallbacks: fallbacks}
	for i, r := range info.Rules {
		out.Rules[i] = api.PolicyRule{Topics: r.Topics, Policy: r.Policy, Settings: r.Settings, Digest: r.Digest,
			Running: r.Running, Resets: r.Resets, Error: r.Error}
	}
	return out
}
