package wasm

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestGuestOutput_linesGoToTheLogRateLimited checks a module's output
// becomes log lines naming the policy, at most limit a second, with a
// count of what was dropped once the second is over.
func TestGuestOutput_linesGoToTheLogRateLimited(t *testing.T) {
	var buf bytes.Buffer
	g := newGuestOutput(slog.New(slog.NewTextHandler(&buf, nil)), "noisy.wasm", 5)
	for i := range 50 {
		g.Write([]byte("line " + string(rune('a'+i%26)) + "\n"))
	}
	g.Write([]byte("no newline yet"))
	if n := strings.Count(buf.String(), "policy=noisy.wasm"); n != 5 {
		t.Fatalf("%d lines logged in the first second, want 5:\n%s", n, &buf)
	}
	g.window = g.window.Add(-2 * time.Second) // the second is over
	g.Write([]byte(" and the end\n"))
	out := buf.String()
	if !strings.Contains(out, "dropped=45") || !strings.Contains(out, "no newline yet and the end") {
		t.Errorf("want a count of 45 dropped lines and the joined partial line:\n%s", out)
	}
}
