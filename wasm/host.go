package wasm

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// guestOutput takes a module's log calls and its stdout and stderr, and
// writes them to the daemon's log with the module's name, at most a
// number of lines a second; dropped lines are counted and reported.
type guestOutput struct {
	log   *slog.Logger
	name  string
	limit int

	mu      sync.Mutex
	window  time.Time
	lines   int
	dropped int
	partial []byte
}

func newGuestOutput(log *slog.Logger, name string, limit int) *guestOutput {
	return &guestOutput{log: log.With("policy", name), name: name, limit: limit}
}

// Write implements io.Writer for the guest's stdout and stderr: one log
// line per line of output.
func (g *guestOutput) Write(b []byte) (int, error) {
	g.mu.Lock()
	data := append(g.partial, b...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, data[:i])
		data = data[i+1:]
	}
	if len(data) > 4096 { // a line that never ends is logged in pieces
		lines, data = append(lines, data), nil
	}
	g.partial = append([]byte(nil), data...)
	g.mu.Unlock()
	for _, l := range lines {
		g.line(slog.LevelInfo, string(l))
	}
	return len(b), nil
}

// line logs one line if the module is within its rate.
func (g *guestOutput) line(level slog.Level, msg string) {
	g.mu.Lock()
	now := time.Now()
	if now.Sub(g.window) >= time.Second {
		if g.dropped > 0 {
			g.log.Warn("policy module logged too much; lines dropped", "dropped", g.dropped)
		}
		g.window, g.lines, g.dropped = now, 0, 0
	}
	if g.lines >= g.limit {
		g.dropped++
		g.mu.Unlock()
		return
	}
	g.lines++
	g.mu.Unlock()
	if len(msg) > 1024 {
		msg = msg[:1024] + "…"
	}
	g.log.Log(context.Background(), level, "policy: "+msg)
}

type outputKey struct{}

// withGuestOutput lets the host functions, which wazero shares between all
// modules of a runtime, find the calling policy's output.
func withGuestOutput(ctx context.Context, g *guestOutput) context.Context {
	return context.WithValue(ctx, outputKey{}, g)
}

// hostLog is reeve.log(level, ptr, len).
func hostLog(ctx context.Context, m api.Module, level, ptr, n uint32) {
	g, _ := ctx.Value(outputKey{}).(*guestOutput)
	if g == nil {
		return
	}
	msg, ok := m.Memory().Read(ptr, min(n, 4096))
	if !ok {
		g.line(slog.LevelWarn, "log call with a message outside the module's memory")
		return
	}
	lv := slog.LevelInfo
	switch level {
	case 0:
		lv = slog.LevelDebug
	case 2:
		lv = slog.LevelWarn
	case 3:
		lv = slog.LevelError
	}
	g.line(lv, string(msg))
}

// hostNow is reeve.now_unix_ms().
func hostNow() int64 { return time.Now().UnixMilli() }

// hostFuelFunc is hostFuel as wazero calls it without the reflection
// WithFunc costs: a module calls it every megabyte of code.
var hostFuelFunc = api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
	stack[0] = uint64(hostFuel(ctx, m))
})

// hostStackFunc is reeve.stack(), which instrument calls when a call
// would take the module past its stack budget: it ends the call as a trap.
var hostStackFunc = api.GoModuleFunc(func(ctx context.Context, m api.Module, _ []uint64) {
	m.CloseWithExitCode(ctx, exitCodeStack)
	panic(sys.NewExitError(exitCodeStack))
})

// exitCodeStack is the exit code of a call reeve.stack ended.
const exitCodeStack = 0x57ac4

// hostFuel is reeve.fuel(), which instrument adds to every module and
// which the module calls when its budget of work runs out: it stops the
// call if the call's context is done or its deadline has passed, and
// otherwise returns the next budget. It looks at the clock rather than
// waiting for ctx.Done, so that a module that keeps every thread busy
// still meets its deadline: the timer that would close the context needs
// a thread to run on.
func hostFuel(ctx context.Context, m api.Module) int64 {
	code := uint32(0)
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	} else if ctx.Err() != nil {
		code = sys.ExitCodeContextCanceled
	}
	if code != 0 {
		// As WASI's proc_exit ends a module: closed, so nothing runs in
		// it again, and the call unwound with the exit code.
		m.CloseWithExitCode(ctx, code)
		panic(sys.NewExitError(code))
	}
	return fuelPerCheck
}
