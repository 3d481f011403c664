package storage

import (
	"fmt"
	"time"
)

// Time-based roll. An append rolls the active segment once it is
// SegmentAge old (shouldRoll in log.go), but a partition nobody writes to
// never appends, so its active segment would never roll and, retention
// deleting whole non-active segments only, its records would never expire.
// So EnforceRetention, which the kafka package runs on a timer, first does
// the same check without an append (rollAged), and also rolls an active
// segment that is itself past retention (rollExpired), as Kafka's
// retention does.
//
// A segment's age for rolling is the broker's wall clock since its first
// append (segment.created), never a producer's timestamp: a device without
// a clock (timestamps in 1970) would otherwise roll a segment at every
// append, and one with a clock in the future would never roll. After a
// restart the first batch's timestamp stands in for the lost wall clock
// when it is in the past (firstAppendTime), so a segment may roll early
// once after a restart; it never rolls late.
//
// Neither ever rolls an empty active segment, so running them on a timer
// on an idle partition makes one roll and then nothing: no empty segments.

// rollAged rolls the active segment when it holds batches and its first
// was appended SegmentAge or longer ago, as the next append would. It
// reports whether it rolled. The caller holds wmu.
func (l *Log) rollAged() (bool, error) {
	s := l.active()
	if s.size == 0 || l.opts.Now().Sub(s.created) < l.opts.SegmentAge {
		return false, nil
	}
	if err := l.roll(); err != nil {
		return false, fmt.Errorf("roll segment %s older than %s: %w", s.name(), l.opts.SegmentAge, err)
	}
	return true, nil
}

// rollExpired rolls the active segment for EnforceRetention when it holds
// batches, its records are older than cutoff (Unix milliseconds) by
// segmentTime, and it was last written before cutoff by the broker's
// clock. It reports whether it rolled. The caller holds wmu and has found
// every older segment expired.
//
// # Notes
//
// The second condition is reeve's, not Kafka's: it keeps records a
// producer stamped long ago (a device that believes it is 1970) from being
// deleted within a retention check of their append, before a consumer or a
// follower has read them. An idle partition meets it once retention has
// passed, which is when its records are meant to go.
func (l *Log) rollExpired(cutoff int64) (bool, error) {
	s := l.active()
	if s.size == 0 || l.segmentTime(s) >= cutoff {
		return false, nil
	}
	if w, ok := lastWrite(s); !ok || w.UnixMilli() >= cutoff {
		return false, nil
	}
	if err := l.roll(); err != nil {
		return false, fmt.Errorf("roll expired segment %s: %w", s.name(), err)
	}
	return true, nil
}

// lastWrite is when a segment's .log file was last written, by the
// broker's clock (its modification time).
func lastWrite(s *segment) (time.Time, bool) {
	fi, err := s.log.Stat()
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}
