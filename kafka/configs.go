package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
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
	"cleanup.policy":                 {constant("delete"), oneOf("delete")},
	"compression.type":               {constant("producer"), oneOf("producer")},
	"retention.ms":                   {func(s *Server) string { return millis(s.cfg.Log.RetentionAge.Milliseconds()) }, integer(-1, maxMillis)},
	"retention.bytes":                {func(s *Server) string { return strconv.FormatInt(s.cfg.Log.RetentionBytes, 10) }, integer(-1, 1<<62)},
	"segment.bytes":                  {func(s *Server) string { return strconv.FormatInt(s.cfg.Log.SegmentBytes, 10) }, integer(1<<20, 1<<31-1)},
	"segment.ms":                     {func(s *Server) string { return millis(s.cfg.Log.SegmentAge.Milliseconds()) }, integer(1, maxMillis)},
	"max.message.bytes":              {func(s *Server) string { return strconv.Itoa(int(s.cfg.MaxMessageBytes)) }, integer(0, 1<<31-1)},
	"message.timestamp.type":         {constant("CreateTime"), oneOf("CreateTime")},
	"min.insync.replicas":            {constant("1"), integer(1, 7)},
	"unclean.leader.election.enable": {constant("false"), oneOf("true", "false")},
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
