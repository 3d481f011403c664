// Package logging builds the process logger of reeve serve and its tools
// from the configuration's log section ([config.Log]): text for a person,
// logfmt or JSON, syslog priorities for the systemd journal, and a level a
// reload can change. Package appliance builds it and passes it to every
// part.
//
// Usage:
//
//	log, level := logging.New(cfg.Log, os.Stderr)
//	log.Info("reeve starting", "node_id", cfg.Node.ID)
//	if l, err := logging.ParseLevel("debug"); err == nil {
//		level.Set(l) // as a reload does: takes effect at once
//	}
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-isatty"

	"github.com/reeve-edge/reeve/config"
)

// New builds the process logger from the [log] section and returns it
// with the level it logs at, which a reload may change while it runs.
//
// Formats: "text" is a line for a person (time, level, message,
// key=value attributes), with the level coloured when w is a terminal and
// NO_COLOR is unset; "logfmt" is slog's TextHandler; "json" is slog's
// JSONHandler; "auto" is text on a terminal and logfmt otherwise.
//
// # Notes
//
// When w is the stream systemd connected to the journal (JOURNAL_STREAM
// names its device and inode), every line starts with its syslog priority
// ("<3>" error, "<4>" warning, "<6>" info, "<7>" debug), which journald
// strips and stores as the entry's PRIORITY, and the time is left out, as
// journald stamps each entry itself.
func New(c config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	if l, err := ParseLevel(c.Level); err == nil {
		level.Set(l)
	} // config.Validate refuses an unknown level; info stands in for one.
	terminal := isTerminal(w)
	journal := toJournal(w)
	format := c.Format
	if format == "" || format == "auto" {
		format = "logfmt"
		if terminal {
			format = "text"
		}
	}
	build := func(w io.Writer) slog.Handler {
		return newFormatHandler(format, w, level, !journal, terminal && os.Getenv("NO_COLOR") == "")
	}
	if journal {
		return slog.New(newJournalHandler(w, build)), level
	}
	return slog.New(build(w)), level
}

// ParseLevel reads a [log] level: debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return slog.LevelInfo, fmt.Errorf("log level %q: use debug, info, warn or error", s)
}

// newFormatHandler returns the handler for one [log] format ("text",
// "logfmt" or "json"; auto is resolved by the caller).
func newFormatHandler(format string, w io.Writer, level slog.Leveler, withTime, colour bool) slog.Handler {
	switch format {
	case "text":
		return &textHandler{out: &lockedWriter{w: w}, level: level, time: withTime, colour: colour}
	case "json":
		return slog.NewJSONHandler(w, slogOptions(level, withTime))
	default:
		// logfmt: key=value pairs that every log collector parses.
		return slog.NewTextHandler(w, slogOptions(level, withTime))
	}
}

func slogOptions(level slog.Leveler, withTime bool) *slog.HandlerOptions {
	opts := &slog.HandlerOptions{Level: level}
	if !withTime {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return opts
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// toJournal reports whether w is the stream systemd connected to the
// journal: JOURNAL_STREAM holds that stream's "DEVICE:INODE" in decimal
// (systemd.exec(5)), and it still names w only if w was not redirected
// since (a child given another stderr inherits the variable too).
func toJournal(w io.Writer) bool {
	env := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if env == "" || !ok {
		return false
	}
	devText, inoText, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devText, 10, 64)
	ino, err2 := strconv.ParseUint(inoText, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// journalHandler starts each line with its syslog priority (sd-daemon(3)).
// It holds one handler per priority, each writing through its own prefix,
// so the prefix and the line leave in one write.
type journalHandler struct {
	// byPriority is indexed err, warning, info, debug.
	byPriority [4]slog.Handler
}

func newJournalHandler(w io.Writer, build func(io.Writer) slog.Handler) *journalHandler {
	var h journalHandler
	mu := new(sync.Mutex)
	for i, p := range []string{"<3>", "<4>", "<6>", "<7>"} {
		h.byPriority[i] = build(&lockedWriter{w: w, prefix: p, mu: mu})
	}
	return &h
}

func (h *journalHandler) pick(l slog.Level) slog.Handler {
	switch {
	case l >= slog.LevelError:
		return h.byPriority[0]
	case l >= slog.LevelWarn:
		return h.byPriority[1]
	case l >= slog.LevelInfo:
		return h.byPriority[2]
	}
	return h.byPriority[3]
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var next journalHandler
	for i, inner := range h.byPriority {
		next.byPriority[i] = inner.WithAttrs(attrs)
	}
	return &next
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	var next journalHandler
	for i, inner := range h.byPriority {
		next.byPriority[i] = inner.WithGroup(name)
	}
	return &next
}

// lockedWriter writes each line whole, after an optional prefix, under a
// mutex that handlers sharing one output share.
type lockedWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex // nil: the writer's own
	own    sync.Mutex
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	mu := lw.mu
	if mu == nil {
		mu = &lw.own
	}
	line := p
	if lw.prefix != "" {
		line = make([]byte, 0, len(lw.prefix)+len(p))
		line = append(append(line, lw.prefix...), p...)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, err := lw.w.Write(line); err != nil {
		return 0, err
	}
	return len(p), nil
}

// textHandler writes a line for a person:
//
//	15:04:05.000 INFO  reeve ready node_id=1 partition_groups=4
//
// Attributes of groups are qualified with the group's name (raft.group=3).
type textHandler struct {
	out    io.Writer // one Write per line
	level  slog.Leveler
	time   bool
	colour bool
	prefix string // the open groups, each followed by "."
	attrs  []byte // attributes from WithAttrs, formatted, each after a space
}

// ANSI SGR colours for the level names.
var levelColours = map[slog.Level]string{
	slog.LevelDebug: "\x1b[36m",   // cyan
	slog.LevelInfo:  "\x1b[32m",   // green
	slog.LevelWarn:  "\x1b[33m",   // yellow
	slog.LevelError: "\x1b[1;31m", // bold red
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	if h.time && !r.Time.IsZero() {
		b.WriteString(r.Time.Format("15:04:05.000 "))
	}
	name := r.Level.String()
	if h.colour {
		b.WriteString(levelColours[levelBand(r.Level)])
		fmt.Fprintf(&b, "%-5s", name)
		b.WriteString("\x1b[0m")
	} else {
		fmt.Fprintf(&b, "%-5s", name)
	}
	b.WriteByte(' ')
	// A message is text for a person, spaces and all; one that would break
	// the line (a newline) or the terminal (a control character) is quoted.
	if strings.ContainsFunc(r.Message, func(c rune) bool { return !unicode.IsPrint(c) }) {
		b.WriteString(strconv.Quote(r.Message))
	} else {
		b.WriteString(r.Message)
	}
	b.Write(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.prefix, a)
		return true
	})
	b.WriteByte('\n')
	_, err := h.out.Write(b.Bytes())
	return err
}

func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := *h
	var b bytes.Buffer
	b.Write(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.prefix, a)
	}
	next.attrs = b.Bytes()
	return &next
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	next := *h
	next.prefix = h.prefix + name + "."
	return &next
}

// levelBand rounds a level down to the nearest named one.
func levelBand(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return slog.LevelError
	case l >= slog.LevelWarn:
		return slog.LevelWarn
	case l >= slog.LevelInfo:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// appendAttr writes " key=value", flattening groups into dotted keys.
func appendAttr(b *bytes.Buffer, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, prefix, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix)
	b.WriteString(a.Key)
	b.WriteByte('=')
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		s = fmt.Sprint(a.Value.Any())
	default:
		s = a.Value.String()
	}
	if needsQuote(s) {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}

// needsQuote reports whether s would not read back as one value: empty, or
// holding a space, '=', '"' or a character that does not print.
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '=' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
