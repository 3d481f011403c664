package appliance

import "strings"

// Event subjects: <prefix>.<cluster>.<kind>.<topic>.<partition> for a
// partition's events, <prefix>.<cluster>.node.<id>.<kind> for a node's,
// <prefix>.<cluster>.policy.<kind> for a policy's, so subscribers filter
// with NATS wildcards: "reeve.edge1.leader.>" for every leader change,
// "reeve.*.*.line1~temp.*" for one topic in any cluster.
//
// A Kafka topic name is letters, digits, '.', '_' and '-'. NATS splits
// subjects into tokens at '.', so a topic's '.' is written '~' in its token.
// Kafka never allows '~' in a name, so the encoding is one-to-one and
// decodes back exactly; '_' and '-' stay as they are (NATS allows them).

// TopicToken is a Kafka topic name as one NATS subject token.
func TopicToken(topic string) string { return strings.ReplaceAll(topic, ".", "~") }

// TopicFromToken reverses TopicToken.
func TopicFromToken(token string) string { return strings.ReplaceAll(token, "~", ".") }
