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
// still send (kafka-python 2.0.2 uses Metadata v0-1, Fetch v4, Produce v3).
// Fetch starts at v4, where v2 record batches begin, since reeve stores
// nothing else. Produce is advertised from v0 although v0-v2 requests are
// refused (UNSUPPORTED_VERSION on every partition): librdkafka 2.0 enables
// gzip and snappy only when it sees Produce v0 advertised (librdkafka
// #4956), so Apache Kafka 4.0 does the same (KAFKA-18659).
var apis map[int16]api

func init() {
	apis = map[int16]api{
		int16(kmsg.Produce):              {0, 11, handleProduce},
		int16(kmsg.Fetch):                {4, 16, handleFetch},
		int16(kmsg.ListOffsets):          {0, 8, handleListOffsets},
		int16(kmsg.Metadata):             {0, 12, handleMetadata},
		int16(kmsg.ApiVersions):          {0, 4, handleApiVersions},
		int16(kmsg.CreateTopics):         {0, 7, handleCreateTopics},
		int16(kmsg.DeleteTopics):         {0, 6, handleDeleteTopics},
		int16(kmsg.InitProducerID):       {0, 4, handleInitProducerID},
		int16(kmsg.OffsetForLeaderEpoch): {0, 4, handleOffsetForLeaderEpoch},
		int16(kmsg.DescribeConfigs):      {0, 4, handleDescribeConfigs},
		int16(kmsg.CreatePartitions):     {0, 3, handleCreatePartitions},
		int16(kmsg.DescribeCluster):      {0, 1, handleDescribeCluster},
		int16(kmsg.FindCoordinator):      {0, 4, handleFindCoordinator},
		int16(kmsg.JoinGroup):            {0, 9, handleJoinGroup},
		int16(kmsg.SyncGroup):            {0, 5, handleSyncGroup},
		int16(kmsg.Heartbeat):            {0, 4, handleHeartbeat},
		int16(kmsg.LeaveGroup):           {0, 5, handleLeaveGroup},
		int16(kmsg.OffsetCommit):         {0, 8, handleOffsetCommit},
		int16(kmsg.OffsetFetch):          {0, 8, handleOffsetFetch},
		int16(kmsg.ListGroups):           {0, 5, handleListGroups},
		int16(kmsg.DescribeGroups):       {0, 5, handleDescribeGroups},
		int16(kmsg.DeleteGroups):         {0, 2, handleDeleteGroups},
		int16(kmsg.BrokerHeartbeat):      {0, 1, handleBrokerHeartbeat},
	}
}
