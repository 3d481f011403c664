package kafka

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// notLeaderCode is the error for a partition this node does not lead:
// LEADER_NOT_AVAILABLE while it has no leader, else NOT_LEADER_OR_FOLLOWER.
func notLeaderCode(p Partition) int16 {
	if p.Leader < 0 {
		return kerr.LeaderNotAvailable.Code
	}
	return kerr.NotLeaderForPartition.Code
}

// leaderHints collects the leaders named in NOT_LEADER_OR_FOLLOWER answers,
// whose endpoints KIP-951 responses list once at the top level.
type leaderHints map[int32]struct{}

func (h leaderHints) add(p Partition) (int32, int32) {
	if p.Leader >= 0 {
		h[p.Leader] = struct{}{}
	}
	return p.Leader, p.LeaderEpoch
}

func (h leaderHints) brokers(s *Server) []Broker {
	if len(h) == 0 {
		return nil
	}
	var out []Broker
	for _, b := range s.cluster.Brokers() {
		if _, ok := h[b.ID]; ok {
			out = append(out, b)
		}
	}
	return out
}

func (h leaderHints) produceEndpoints(s *Server) []kmsg.ProduceResponseBroker {
	var out []kmsg.ProduceResponseBroker
	for _, b := range h.brokers(s) {
		e := kmsg.NewProduceResponseBroker()
		e.NodeID, e.Host, e.Port, e.Rack = b.ID, b.Host, b.Port, b.Rack
		out = append(out, e)
	}
	return out
}

func (h leaderHints) fetchEndpoints(s *Server) []kmsg.FetchResponseBroker {
	var out []kmsg.FetchResponseBroker
	for _, b := range h.brokers(s) {
		e := kmsg.NewFetchResponseBroker()
		e.NodeID, e.Host, e.Port, e.Rack = b.ID, b.Host, b.Port, b.Rack
		out = append(out, e)
	}
	return out
}

// SplitHostPort parses an advertised address into a Kafka host and port.
func SplitHostPort(addr string) (string, int32, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, int32(n), true
}
