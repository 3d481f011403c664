package appliance

import (
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/reeve-edge/reeve/config"
)

// newLogger builds the process logger from the [log] section: text for a
// person at a terminal, logfmt or JSON for a collector.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	level := new(slog.LevelVar)
	switch strings.ToLower(c.Level) {
	case "debug":
		level.Set(slog.LevelDebug)
	case "warn":
		level.Set(slog.LevelWarn)
	case "error":
		level.Set(slog.LevelError)
	default:
		level.Set(slog.LevelInfo)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "" || format == "auto" {
		format = "logfmt"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	// slog's text handler writes logfmt (key=value pairs), which reads well
	// at a terminal and parses in every log collector.
	return slog.New(slog.NewTextHandler(w, opts))
}
