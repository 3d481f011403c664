package appliance

import "strings"

// Event subjects (EventSubject builds them): the event type always comes
// third, <prefix>.<cluster>.<type>.<topic>.<partition> for a partition's
// events, <prefix>.<cluster>.<type>.<node> for a node's and
// <prefix>.<cluster>.<type>.<policy> for a policy's, so subscribers filter
// with NATS wildcards: "reeve.edge1.leader_changed.>" for every leader
// change, "reeve.*.*.line1~temp.*" for every event of one topic's
// partitions in any cluster.
//
// A Kafka topic name is letters, digits, '.', '_' and '-'. NATS splits
// subjects into tokens at '.', so a topic's '.' is written '~' in its token.
// Kafka never allows '~' in a name, so the encoding is one-to-one and
// decodes back exactly; '_' and '-' stay as they are (NATS allows them).

// TopicToken is a Kafka topic name as one NATS subject token.
func TopicToken(topic string) string { return strings.ReplaceAll(topic, ".", "~") }

// TopicFromToken reverses TopicToken.
func TopicFromToken(token string) string { return strings.ReplaceAll(token, "~", ".") }
