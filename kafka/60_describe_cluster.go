package kafka

// DescribeCluster, v0-v1 (v1 adds the endpoint type, always brokers here).

import (
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeCluster(s *Server, _ *conn, r kmsg.Request) kmsg.Response {
	req := r.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = s.cluster.ClusterID()
	resp.ControllerID = s.cluster.ControllerID()
	resp.EndpointType = 1
	resp.ClusterAuthorizedOperations = math.MinInt32
	for _, b := range s.cluster.Brokers() {
		mb := kmsg.NewDescribeClusterResponseBroker()
		mb.NodeID, mb.Host, mb.Port, mb.Rack = b.ID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, mb)
	}
	return resp
}
