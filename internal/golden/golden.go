// Package golden compares what a test produces with a file under testdata
// that pins it: a public JSON contract or an on-disk format. With -update
// the file is rewritten instead, for a change made on purpose.
//
// Usage, in a test:
//
//	golden.Check(t, "testdata/golden/status.json", got,
//		"go test ./admin -run TestGolden -update",
//		"The admin API's JSON is documented in docs/admin-api.md: update the document too.")
package golden

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata with what the code produces now")

// Updating reports whether this run rewrites golden files (-update).
func Updating() bool { return *update }

// Check compares got with the file at path and fails the test when they
// differ, showing the first difference, what the file pins (contract) and
// the command that regenerates it (cmd). With -update it writes got to
// path instead.
func Check(t testing.TB, path string, got []byte, cmd, contract string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := Read(t, path, cmd)
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code produces; %s\n%s If the change is meant, regenerate with: %s",
			path, Diff(got, want), contract, cmd)
	}
}

// Read returns the golden file at path, failing the test with how to
// create it (cmd) when it is missing.
func Read(t testing.TB, path, cmd string) []byte {
	t.Helper()
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%v; create it with: %s", err, cmd)
	} else if err != nil {
		t.Fatal(err)
	}
	return want
}

// Diff shows where got and want first differ: the line, the two lines
// before it, and in a long line (one line of JSON) the bytes around the
// first differing one.
func Diff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	gl, wl := "", ""
	if i < len(g) {
		gl = g[i]
	}
	if i < len(w) {
		wl = w[i]
	}
	j := 0
	for j < len(gl) && j < len(wl) && gl[j] == wl[j] {
		j++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "first difference at line %d, byte %d (- golden file, + code now; %d and %d bytes in all):\n",
		i+1, j+1, len(want), len(got))
	for k := max(0, i-2); k < i; k++ {
		fmt.Fprintf(&b, "  %s\n", clip(g[k], 0))
	}
	fmt.Fprintf(&b, "- %s\n+ %s\n", clip(wl, j), clip(gl, j))
	return b.String()
}

// clip shortens a long line to the 60 bytes either side of byte at.
func clip(line string, at int) string {
	const around = 60
	lo, hi := max(0, at-around), min(len(line), at+around)
	out := line[lo:hi]
	if lo > 0 {
		out = "…" + out
	}
	if hi < len(line) {
		out += "…"
	}
	return out
}
