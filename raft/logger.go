package raft

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
// reeve's own node state, so they go to Warn, each distinct line at most
// once per repeatWindow.
type dragonboatLogger struct{ pkg string }

func (d dragonboatLogger) log(level slog.Level, format string, args []any) {
	l := dbLog.Load()
	if l == nil || !l.Enabled(context.Background(), level) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	attrs := []any{"component", "dragonboat/" + d.pkg}
	if level >= slog.LevelWarn {
		n, ok := repeats.pass(d.pkg+"\x00"+msg, time.Now())
		if !ok {
			return
		}
		if n > 0 {
			attrs = append(attrs, "repeats_suppressed", n)
		}
	}
	l.Log(context.Background(), level, msg, attrs...)
}

// repeatWindow is how often one Dragonboat warning may be logged: a peer
// that is down makes it retry its connection, and say so, a few times a
// second for as long as the peer stays down.
const repeatWindow = 30 * time.Second

var repeats = &repeatFilter{seen: map[string]*repeat{}}

// repeatFilter lets a message through once per repeatWindow and counts the
// copies it held back.
type repeatFilter struct {
	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	logged     time.Time
	suppressed int
}

// pass reports whether msg may be logged at now, and how many copies were
// held back since it last was.
func (f *repeatFilter) pass(msg string, now time.Time) (suppressed int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.seen[msg]
	if r != nil && now.Sub(r.logged) < repeatWindow {
		r.suppressed++
		return 0, false
	}
	if r == nil {
		if len(f.seen) >= 256 { // messages carry addresses and ids: keep the set small
			for k, old := range f.seen {
				if now.Sub(old.logged) >= repeatWindow {
					delete(f.seen, k)
				}
			}
		}
		r = &repeat{}
		f.seen[msg] = r
	}
	suppressed, r.logged, r.suppressed = r.suppressed, now, 0
	return suppressed, true
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
