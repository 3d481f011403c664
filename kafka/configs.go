package kafka

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// topicConfig is a topic setting reeve understands, with its default and a
// check of the value an operator or client gives.
type topicConfig struct {
	def   func(*Server) string
	check func(string) error
}

func constant(v string) func(*Server) string { return func(*Server) string { return v } }

func integer(minimum, maximum int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < minimum || n > maximum {
			return fmt.Errorf("want an integer from %d to %d", minimum, maximum)
		}
		return nil
	}
}

// maxMillis is the largest millisecond count a time.Duration holds.
const maxMillis = int64(1<<63-1) / int64(1e6)

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(vals, v) {
			return fmt.Errorf("want one of %s", strings.Join(vals, ", "))
		}
		return nil
	}
}

// topicConfigs are the settings a topic may carry. Anything else is refused
// with INVALID_CONFIG rather than stored and silently ignored.
var topicConfigs = map[string]topicConfig{
	"cleanup.policy":         {constant("delete"), oneOf("delete")},
	"compression.type":       {constant("producer"), oneOf("producer")},
	"retention.ms":           {func(s *Server) string { return millis(s.logDefaults().RetentionAge.Milliseconds()) }, integer(-1, maxMillis)},
	"retention.bytes":        {func(s *Server) string { return strconv.FormatInt(s.logDefaults().RetentionBytes, 10) }, integer(-1, 1<<62)},
	"segment.bytes":          {func(s *Server) string { return strconv.FormatInt(s.logDefaults().SegmentBytes, 10) }, integer(1<<20, 1<<31-1)},
	"segment.ms":             {func(s *Server) string { return millis(s.logDefaults().SegmentAge.Milliseconds()) }, integer(1, maxMillis)},
	"max.message.bytes":      {func(s *Server) string { return strconv.Itoa(int(s.cfg.MaxMessageBytes)) }, integer(0, 1<<31-1)},
	"message.timestamp.type": {constant(createTime), oneOf(createTime, logAppendTime)},
	// KIP-937's bounds on CreateTime timestamps, and the single bound they
	// replace (deprecated in Kafka 3.6, removed in 4.0), which reeve still
	// reads for both sides when a topic sets it and not them.
	"message.timestamp.before.max.ms":     {constant(strconv.FormatInt(defaultTimestampBeforeMaxMs, 10)), integer(0, math.MaxInt64)},
	"message.timestamp.after.max.ms":      {constant(strconv.FormatInt(defaultTimestampAfterMaxMs, 10)), integer(0, math.MaxInt64)},
	"message.timestamp.difference.max.ms": {constant(strconv.FormatInt(math.MaxInt64, 10)), integer(0, math.MaxInt64)},
	"min.insync.replicas":                 {constant("1"), integer(1, 7)},
	"unclean.leader.election.enable":      {constant("false"), oneOf("true", "false")},
}

// logDefaults are the partition logs' settings where a topic sets none,
// with storage's defaults in place of the zero values that ask for them
// (so the settings report 7 days, not -1, when the configuration left
// them out).
func (s *Server) logDefaults() LogOptions {
	o := s.cfg.Log
	if o.SegmentBytes == 0 {
		o.SegmentBytes = storage.DefaultSegmentBytes
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = storage.DefaultSegmentAge
	}
	if o.RetentionAge == 0 {
		o.RetentionAge = storage.DefaultRetentionAge
	}
	if o.RetentionBytes <= 0 {
		o.RetentionBytes = -1
	}
	return o
}

func millis(ms int64) string {
	if ms <= 0 {
		return "-1"
	}
	return strconv.FormatInt(ms, 10)
}

// checkTopicConfig validates a topic's settings.
func checkTopicConfig(cfg map[string]string) error {
	for k, v := range cfg {
		c, ok := topicConfigs[k]
		if !ok {
			names := make([]string, 0, len(topicConfigs))
			for n := range topicConfigs {
				names = append(names, n)
			}
			slices.Sort(names)
			return fmt.Errorf("%w: unknown topic config %q; reeve supports %s", kerr.InvalidConfig, k, strings.Join(names, ", "))
		}
		if err := c.check(v); err != nil {
			return fmt.Errorf("%w: %s=%q: %v", kerr.InvalidConfig, k, v, err)
		}
	}
	return nil
}

// The values of message.timestamp.type.
const (
	createTime    = "CreateTime"
	logAppendTime = "LogAppendTime"
)

// Defaults of the bounds on CreateTime timestamps, as Apache Kafka 4's: a
// record may be stamped any time in the past and at most an hour ahead of
// the broker's clock. The past is left open because a bounded default
// would refuse what edge devices buffer while offline and replay, and a
// refused batch is lost (INVALID_TIMESTAMP is not retried); devices
// without a real-time clock want message.timestamp.type=LogAppendTime
// instead (docs/kafka.md). The future is bounded because a segment holding
// a record stamped years ahead would be judged young by retention.
const (
	defaultTimestampBeforeMaxMs = math.MaxInt64
	defaultTimestampAfterMaxMs  = int64(time.Hour / time.Millisecond)
)

// timestampPolicy is how a topic treats the timestamps producers send: with
// LogAppendTime the broker stamps every batch; with CreateTime it keeps
// them and refuses any more than before ms in the past or after ms in the
// future of the broker's clock.
type timestampPolicy struct {
	logAppendTime bool
	before, after int64 // milliseconds, >= 0
}

// topicTimestampPolicy reads a topic's timestamp settings; values were
// checked when the topic was created.
func topicTimestampPolicy(t *Topic) timestampPolicy {
	p := timestampPolicy{logAppendTime: t.Config["message.timestamp.type"] == logAppendTime,
		before: defaultTimestampBeforeMaxMs, after: defaultTimestampAfterMaxMs}
	num := func(k string) (int64, bool) {
		n, err := strconv.ParseInt(t.Config[k], 10, 64)
		return n, err == nil && n >= 0
	}
	if n, ok := num("message.timestamp.difference.max.ms"); ok {
		p.before, p.after = n, n
	}
	if n, ok := num("message.timestamp.before.max.ms"); ok {
		p.before = n
	}
	if n, ok := num("message.timestamp.after.max.ms"); ok {
		p.after = n
	}
	return p
}

// window is the range of CreateTime timestamps accepted at now (Unix
// milliseconds), saturating instead of overflowing.
func (p timestampPolicy) window(now int64) (lo, hi int64) {
	now = max(now, 0)
	lo = now - p.before // cannot underflow: both are >= 0
	hi = math.MaxInt64
	if p.after < math.MaxInt64-now {
		hi = now + p.after
	}
	return lo, hi
}
