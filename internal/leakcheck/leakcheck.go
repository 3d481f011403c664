// Package leakcheck finds the goroutines a test's component left behind
// after it closed. It checks twice: at once, that no goroutine started
// since a baseline runs the component's own code (Close is meant to return
// only after all of them ended, so no retry), and with goleak, which
// retries for a moment, that no goroutine at all is left, libraries'
// (Dragonboat, NATS) and the test's clients' included.
//
// Both checks see every goroutine of the process, so the goroutines running
// when the baseline is taken are left out, and a test that uses this must
// not run beside others that start goroutines (t.Parallel).
//
// Usage:
//
//	base := leakcheck.Take()
//	s := start(t)
//	s.Close()
//	base.Check(t, "github.com/reeve-edge/reeve/kafka.")
package leakcheck

import (
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// Baseline is the goroutines running at one moment.
type Baseline struct {
	ids    map[string]bool
	ignore goleak.Option
}

// Take records the goroutines running now, the caller's included.
func Take() Baseline {
	b := Baseline{ids: map[string]bool{}, ignore: goleak.IgnoreCurrent()}
	for id := range stacks() {
		b.ids[id] = true
	}
	return b
}

// Started returns the stacks of the goroutines started since b that have
// code in them (a substring of a function's name, such as
// "github.com/reeve-edge/reeve/kafka.") on their stack or as their creator,
// except lines that also contain skip when skip is set.
func (b Baseline) Started(code, skip string) []string {
	var out []string
	for id, g := range stacks() {
		if b.ids[id] {
			continue
		}
		for line := range strings.Lines(g) {
			if strings.Contains(line, code) && (skip == "" || !strings.Contains(line, skip)) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// Check fails t for every goroutine started since b that runs code (see
// Started; lines with skip do not count), then, after goleak's retries,
// for any goroutine at all started since b.
func (b Baseline) Check(t testing.TB, code, skip string) {
	t.Helper()
	b.CheckCode(t, code, skip)
	b.VerifyNone(t)
}

// CheckCode fails t, at once, for every goroutine started since b that
// runs code (see Started).
func (b Baseline) CheckCode(t testing.TB, code, skip string) {
	t.Helper()
	for _, g := range b.Started(code, skip) {
		t.Errorf("goroutine running %s after Close:\n%s", strings.TrimSuffix(code, "."), g)
	}
}

// VerifyNone fails t when, after goleak's retries, a goroutine started
// since b is still running.
func (b Baseline) VerifyNone(t testing.TB) {
	t.Helper()
	goleak.VerifyNone(t, b.ignore)
}

// stacks returns the stack of every goroutine but the caller's, by id.
func stacks() map[string]string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for ; n == len(buf); n = runtime.Stack(buf, true) {
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range strings.Split(string(buf[:n]), "\n\n") {
		if i > 0 { // the caller's comes first
			id, _, _ := strings.Cut(strings.TrimPrefix(g, "goroutine "), " ")
			out[id] = g
		}
	}
	return out
}
