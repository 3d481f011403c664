package golden

import (
	"strings"
	"testing"
)

// TestDiff points at the first differing line, and in a long line at the
// bytes around the first differing byte.
func TestDiff(t *testing.T) {
	got := Diff([]byte("a\nb\nc-new\nd"), []byte("a\nb\nc-old\nd"))
	for _, want := range []string{"line 3, byte 3", "  a\n  b\n", "- c-old\n+ c-new\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("Diff = %q, want it to contain %q", got, want)
		}
	}
	long := strings.Repeat("x", 500)
	got = Diff([]byte(long+"Y"+long), []byte(long+"Z"+long))
	if !strings.Contains(got, "byte 501") || !strings.Contains(got, "…"+strings.Repeat("x", 60)+"Y"+strings.Repeat("x", 59)+"…") {
		t.Errorf("Diff of one long line = %q, want the bytes around byte 501", got)
	}
}
