package sdk

import (
	"fmt"
	"time"
)

// Level is the severity of a log line.
type Level int32

// Log levels; the values are the ABI's.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("level(%d)", int32(l))
}

// Log writes msg to reeve's log at level, attributed to the policy. reeve
// rate limits a policy's lines, so a handler should not log once per
// partition in a large batch.
func Log(level Level, msg string) { hostLog(int32(level), msg) }

// Debugf logs a formatted line at LevelDebug.
func Debugf(format string, args ...any) { Log(LevelDebug, fmt.Sprintf(format, args...)) }

// Infof logs a formatted line at LevelInfo.
func Infof(format string, args ...any) { Log(LevelInfo, fmt.Sprintf(format, args...)) }

// Warnf logs a formatted line at LevelWarn.
func Warnf(format string, args ...any) { Log(LevelWarn, fmt.Sprintf(format, args...)) }

// Errorf logs a formatted line at LevelError.
func Errorf(format string, args ...any) { Log(LevelError, fmt.Sprintf(format, args...)) }

// Now returns the wall-clock time as reeve reports it, to the millisecond.
// A decision that depends on it is still safe: only the controller
// decides, and its decisions are committed through Raft.
func Now() time.Time { return time.UnixMilli(hostNow()) }
