// Package kafka is reeve's Kafka wire protocol: the listener (server.go),
// one file per API (NN_api_name.go, dispatched by the apis table in
// api.go), the partition logs (package kafka/internal/storage),
// replication on both sides (replication.go: what a leader knows of its
// followers, and the high watermark; fetcher.go: the follower's fetch
// loop, and the leader's ISR changes), idempotent producers, the consumer
// group coordinator (groups.go), and the BrokerHeartbeat exchange between
// nodes that feeds the election controller's liveness table. docs/kafka.md
// lists the APIs and versions.
//
// It reads and changes metadata through the Cluster interface it declares,
// which appliance implements over raft.Store, so this package never
// imports raft; a test of it needs no Raft. Heartbeats from other nodes go
// to a HeartbeatSink (policy.Liveness in a running node).
//
// Usage:
//
//	s, err := kafka.New(kafka.Config{Listen: "127.0.0.1:9092", DataDir: dir,
//		Heartbeats: live, HeartbeatInterval: time.Second, Logger: log}, cluster)
//	if err != nil { ... }
//	if err := s.Listen(); err != nil { ... }
//	go s.Serve()        // also sends heartbeats and keeps the ISRs of the partitions it leads
//	s.MetadataChanged() // after every committed metadata change
//	defer s.Close()
package kafka
