package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/slogtest"
	"time"
	"unsafe"

	"github.com/reeve-edge/reeve/config"
)

// logFile is a real file for a logger to write to, with its device and
// inode as systemd writes them into JOURNAL_STREAM.
func logFile(t *testing.T, name string) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func logLines(t *testing.T, f *os.File) []string {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// logEachLevel logs one line at each level, lowest first.
func logEachLevel(l *slog.Logger) {
	l.Debug("debug line", "node_id", 1)
	l.Info("info line", "node_id", 1)
	l.Warn("warn line", "node_id", 1)
	l.Error("error line", "err", errors.New("disk full"))
}

func TestNewLogger_journalPriorities(t *testing.T) {
	for _, format := range []string{"auto", "logfmt", "json", "text"} {
		t.Run(format, func(t *testing.T) {
			f, stream := logFile(t, "stderr")
			t.Setenv("JOURNAL_STREAM", stream)
			log, _ := New(config.Log{Level: "debug", Format: format}, f)
			logEachLevel(log)
			lines := logLines(t, f)
			if len(lines) != 4 {
				t.Fatalf("got %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
			}
			for i, want := range []string{"<7>", "<6>", "<4>", "<3>"} {
				line := lines[i]
				if !strings.HasPrefix(line, want) || strings.HasPrefix(line[len(want):], "<") {
					t.Errorf("line %d = %q, want it to start with one %s", i, line, want)
				}
				// journald stamps each entry; a second time is noise.
				if strings.Contains(line, "time") {
					t.Errorf("line %d = %q, want no time", i, line)
				}
			}
			if format == "json" {
				for _, line := range lines {
					if !strings.HasPrefix(line[3:], `{"level":`) {
						t.Errorf("line = %q, want a JSON object after the priority", line)
					}
				}
			}
		})
	}
}

func TestNewLogger_journalStreamOfAnotherFile(t *testing.T) {
	f, stream := logFile(t, "stderr")
	_, otherStream := logFile(t, "journal")
	dev, ino, _ := strings.Cut(stream, ":")
	for _, env := range []string{
		otherStream,      // stderr was redirected: the variable was inherited
		dev + ":1" + ino, // same device, another inode
		"",
		"garbage",
		ino + ":" + dev + ":",
	} {
		t.Run(env, func(t *testing.T) {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			t.Setenv("JOURNAL_STREAM", env)
			log, _ := New(config.Log{Level: "info", Format: "logfmt"}, f)
			log.Warn("warn line")
			lines := logLines(t, f)
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "time=") {
				t.Errorf("JOURNAL_STREAM=%q: logged %q, want one logfmt line starting with time=", env, lines)
			}
		})
	}
}

// openPTY opens a pseudo-terminal and returns its controlling side, to
// read, and the terminal side, for a logger to write to.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	var unlock, n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptm.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// readPTY reads what was written to the terminal side until want appears.
func readPTY(t *testing.T, ptm *os.File, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		// The terminal turns "\n" into "\r\n" (ONLCR).
		for !strings.Contains(strings.ReplaceAll(string(all), "\r\n", "\n"), want) {
			n, err := ptm.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- string(all)
	}()
	select {
	case s := <-got:
		return strings.ReplaceAll(s, "\r\n", "\n")
	case <-time.After(5 * time.Second):
		t.Fatalf("terminal never showed %q", want)
		return ""
	}
}

func TestNewLogger_colourOnlyOnATerminal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	const esc = "\x1b["
	tests := []struct {
		name     string
		terminal bool
		format   string
		noColor  string
		colour   bool
		logfmt   bool
	}{
		{name: "auto on a terminal", terminal: true, format: "auto", colour: true},
		{name: "text on a terminal", terminal: true, format: "text", colour: true},
		{name: "NO_COLOR on a terminal", terminal: true, format: "auto", noColor: "1"},
		{name: "logfmt on a terminal", terminal: true, format: "logfmt", logfmt: true},
		{name: "auto to a file", format: "auto", logfmt: true},
		{name: "text to a file", format: "text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tt.noColor)
			var out string
			if tt.terminal {
				ptm, pts := openPTY(t)
				log, _ := New(config.Log{Level: "info", Format: tt.format}, pts)
				log.Warn("disk nearly full", "free_bytes", 1024)
				out = readPTY(t, ptm, "free_bytes=1024\n")
			} else {
				f, _ := logFile(t, "stderr")
				log, _ := New(config.Log{Level: "info", Format: tt.format}, f)
				log.Warn("disk nearly full", "free_bytes", 1024)
				out = strings.Join(logLines(t, f), "\n")
			}
			if got := strings.Contains(out, esc); got != tt.colour {
				t.Errorf("output %q has colour %v, want %v", out, got, tt.colour)
			}
			if got := strings.Contains(out, "level=WARN"); got != tt.logfmt {
				t.Errorf("output %q is logfmt %v, want %v", out, got, tt.logfmt)
			}
			if tt.colour && !strings.Contains(out, "\x1b[33mWARN \x1b[0m disk nearly full free_bytes=1024") {
				t.Errorf("output %q, want a yellow WARN, the message and free_bytes=1024", out)
			}
		})
	}
}

func TestNewLogger_levelChangesAtRuntime(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	var buf bytes.Buffer
	log, level := New(config.Log{Level: "warn", Format: "logfmt"}, &buf)
	log.Info("before")
	log.Warn("before")
	level.Set(slog.LevelDebug)
	log.Debug("after")
	level.Set(slog.LevelError)
	log.Warn("after")
	log.Error("after")
	want := []string{"level=WARN msg=before", "level=DEBUG msg=after", "level=ERROR msg=after"}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("logged %q, want lines ending %q", lines, want)
	}
	for i := range want {
		if !strings.HasSuffix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want it to end %q", i, lines[i], want[i])
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
		err  bool
	}{
		{in: "debug", want: slog.LevelDebug},
		{in: "info", want: slog.LevelInfo},
		{in: "warn", want: slog.LevelWarn},
		{in: "error", want: slog.LevelError},
		{in: "warning", err: true},
		{in: "INFO", err: true}, // config.Validate refuses it too
		{in: "", err: true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
	// The configuration accepts a level exactly when ParseLevel does, so a
	// reload never meets a level it cannot set.
	for _, tt := range tests {
		_, err := config.Parse("reeve.toml", []byte("[log]\nlevel = "+strconv.Quote(tt.in)+"\n"))
		if (err != nil) != tt.err {
			t.Errorf("config.Parse(log.level = %q) error = %v, want error %v", tt.in, err, tt.err)
		}
	}
}

func TestTextHandler_line(t *testing.T) {
	var buf bytes.Buffer
	h := newFormatHandler("text", &buf, slog.LevelInfo, false, false)
	log := slog.New(h).With("component", "policy").WithGroup("raft")
	log.Info("group elected", "group", 3, "path", "/var/lib/reeve/a b", "err", errors.New("no quorum"),
		slog.Group("peer", "node_id", 2), "empty", "", "took", 1500*time.Millisecond)
	log.Debug("hidden")
	log.Warn("two\nlines")
	want := "INFO  group elected component=policy raft.group=3 raft.path=\"/var/lib/reeve/a b\" raft.err=\"no quorum\" raft.peer.node_id=2 raft.empty=\"\" raft.took=1.5s\n" +
		"WARN  \"two\\nlines\" component=policy\n"
	if got := buf.String(); got != want {
		t.Errorf("logged\n%s\nwant\n%s", got, want)
	}
}

// TestTextHandler_slogtest holds the text handler to slog's rules for
// handlers (attributes, groups, Resolve, zero times).
func TestTextHandler_slogtest(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return newFormatHandler("text", &buf, slog.LevelInfo, true, false)
	}, func(t *testing.T) map[string]any {
		return parseTextLine(t, strings.TrimSuffix(buf.String(), "\n"))
	})
}

// parseTextLine reads a textHandler line back: "[time] LEVEL msg k=v...",
// with dotted keys as nested maps, for slogtest.
func parseTextLine(t *testing.T, line string) map[string]any {
	t.Helper()
	m := map[string]any{}
	first, rest, _ := strings.Cut(line, " ")
	if _, err := time.Parse("15:04:05.000", first); err == nil {
		m[slog.TimeKey] = first
		line = strings.TrimLeft(rest, " ")
	}
	level, rest, _ := strings.Cut(line, " ")
	m[slog.LevelKey] = level
	msg, rest, _ := strings.Cut(strings.TrimLeft(rest, " "), " ") // slogtest's messages are one word
	m[slog.MessageKey] = msg
	for rest != "" {
		var key, value string
		var ok bool
		key, rest, ok = strings.Cut(rest, "=")
		if !ok {
			t.Fatalf("no key=value in %q of line %q", rest, line)
		}
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad quoted value in %q: %v", rest, err)
			}
			value, _ = strconv.Unquote(q)
			rest = strings.TrimPrefix(rest[len(q):], " ")
		} else {
			value, rest, _ = strings.Cut(rest, " ")
		}
		into := m
		parts := strings.Split(key, ".")
		for _, g := range parts[:len(parts)-1] {
			sub, ok := into[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				into[g] = sub
			}
			into = sub
		}
		into[parts[len(parts)-1]] = value
	}
	return m
}

// TestNewLogger_journalConcurrentLines logs from many goroutines at every
// level: each line must reach the stream whole, behind its own priority.
func TestNewLogger_journalConcurrentLines(t *testing.T) {
	for _, format := range []string{"logfmt", "text"} {
		t.Run(format, func(t *testing.T) {
			f, stream := logFile(t, "stderr")
			t.Setenv("JOURNAL_STREAM", stream)
			log, _ := New(config.Log{Level: "debug", Format: format}, f)
			const writers, each = 8, 200
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := log.With("writer", w)
					for i := range each {
						l.Log(context.Background(), []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}[i%4], "line", "i", i)
					}
				}()
			}
			wg.Wait()
			lines := logLines(t, f)
			if len(lines) != writers*each {
				t.Fatalf("got %d lines, want %d", len(lines), writers*each)
			}
			whole := regexp.MustCompile(`^<(\d)>(?:level=)?(DEBUG|INFO|WARN|ERROR) +(?:msg=)?line writer=\d i=\d+$`)
			priority := map[string]string{"DEBUG": "7", "INFO": "6", "WARN": "4", "ERROR": "3"}
			for _, line := range lines {
				m := whole.FindStringSubmatch(line)
				ok := m != nil && priority[m[2]] == m[1]
				if !ok {
					t.Fatalf("line %q is not one whole line behind its level's priority", line)
				}
			}
		})
	}
}
