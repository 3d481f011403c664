package kafka

import "github.com/twmb/franz-go/pkg/kmsg"

// api is one Kafka API that reeve answers: the versions it implements and
// its handler. ApiVersions advertises exactly this table, so a client never
// sees an API that is not implemented here.
type api struct {
	min, max int16
	handle   func(*Server, *conn, kmsg.Request) kmsg.Response
}

// apis is the dispatch table, one entry per NN_name.go file. The ranges
// are contiguous and Kafka-shaped: they keep the old versions older clients
// still send (kafka-python 2.0.2 uses Metadata v0-1, Fetch v4, Produce v3),
// and start where Kafka stopped writing v0/v1 message sets (Produce v3,
// Fetch v4), since reeve stores v2 record batches only.
var apis map[int16]api

func init() {
	apis = map[int16]api{
		int16(kmsg.Produce):              {3, 11, handleProduce},
		int16(kmsg.Fetch):                {4, 16, handleFetch},
		int16(kmsg.ListOffsets):          {0, 8, handleListOffsets},
		int16(kmsg.Metadata):             {0, 12, handleMetadata},
		int16(kmsg.ApiVersions):          {0, 4, handleApiVersions},
		int16(kmsg.CreateTopics):         {0, 7, handleCreateTopics},
		int16(kmsg.DeleteTopics):         {0, 6, handleDeleteTopics},
		int16(kmsg.OffsetForLeaderEpoch): {0, 4, handleOffsetForLeaderEpoch},
		int16(kmsg.DescribeConfigs):      {0, 4, handleDescribeConfigs},
		int16(kmsg.CreatePartitions):     {0, 3, handleCreatePartitions},
		int16(kmsg.DescribeCluster):      {0, 1, handleDescribeCluster},
	}
}
