package raft

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	dblogger "github.com/lni/dragonboat/v4/logger"
)

// Dragonboat logs through one process-wide factory that may be set only
// once, so its messages go to whichever slog.Logger the newest Store was given.
var (
	dbLog     atomic.Pointer[slog.Logger]
	dbLogOnce sync.Once
)

func installLogger(l *slog.Logger) {
	dbLog.Store(l)
	dbLogOnce.Do(func() {
		dblogger.SetLoggerFactory(func(pkg string) dblogger.ILogger { return dragonboatLogger{pkg: pkg} })
	})
}

// dragonboatLogger adapts Dragonboat's printf-style logger to slog. Its Info
// and Warning lines narrate routine Raft work (elections, dropped proposals
// while there is no leader, snapshots), so they go to Debug; its Error lines
// are mostly a peer being unreachable, which the operator learns from
// reeve's own node state, so they go to Warn.
type dragonboatLogger struct{ pkg string }

func (d dragonboatLogger) log(level slog.Level, format string, args []any) {
	l := dbLog.Load()
	if l == nil || !l.Enabled(context.Background(), level) {
		return
	}
	l.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "dragonboat/"+d.pkg)
}

func (dragonboatLogger) SetLevel(dblogger.LogLevel) {}
func (d dragonboatLogger) Debugf(format string, args ...any) {
	d.log(slog.LevelDebug, format, args)
}
func (d dragonboatLogger) Infof(format string, args ...any) {
	d.log(slog.LevelDebug, format, args)
}
func (d dragonboatLogger) Warningf(format string, args ...any) {
	d.log(slog.LevelDebug, format, args)
}
func (d dragonboatLogger) Errorf(format string, args ...any) {
	d.log(slog.LevelWarn, format, args)
}
func (d dragonboatLogger) Panicf(format string, args ...any) {
	d.log(slog.LevelError, format, args)
	panic(fmt.Sprintf(format, args...))
}
