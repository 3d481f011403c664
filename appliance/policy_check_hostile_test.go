package appliance_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileDir holds the hostile policy modules (WebAssembly text and the
// assembled modules; see each .wat for what it does).
const hostileDir = "../wasm/testdata/hostile-wat"

// hostileRefused are the hostile modules reeve refuses at load (reeve
// policy check exits 2 for them), by file; big ones are generated.
var hostileRefused = []string{
	"table-grow-start.wasm", "table-grow-decide.wasm", "table-huge.wasm", "tables-many.wasm",
	"recursion.wasm", "recursion-locals.wasm", "keep.wasm", "none.wasm", "selftest-cheat.wasm",
	"function-1100k.wasm", "module-50m.wasm",
}

// bigModules are the hostile modules too big to commit, with the
// arguments of wasm/testdata/hostile-wat/big that write them.
var bigModules = map[string][]string{
	"function-1100k.wasm": {"-functions", "1", "-function-kib", "1100"}, // one function body over policy_max_function_kib
	"module-50m.wasm":     {"-functions", "64", "-function-kib", "800"}, // 51 MB, over policy_max_module_mib
}

// hostileModule returns the path of a hostile module: in the repository,
// or for a big one written into dir (with seed, which changes its bytes).
func hostileModule(t testing.TB, dir, name string, seed ...string) string {
	t.Helper()
	args, big := bigModules[name]
	if !big {
		return filepath.Join(hostileDir, name)
	}
	path := filepath.Join(dir, name)
	if len(seed) > 0 {
		args = append(append([]string{}, args...), "-seed", seed[0])
	}
	cmd := exec.Command("go", append(append([]string{"run", "./wasm/testdata/hostile-wat/big"}, args...), "-o", path)...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wasm/testdata/hostile-wat/big %v: %v\n%s", args, err, out)
	}
	return path
}

// TestPolicyCheck_hostileModulesExit2 runs `reeve policy check` on every
// hostile module: each is refused with exit status 2 and one line on
// stderr naming the file, and none crashes the process (no Go fatal
// error, panic or goroutine dump, no death by a signal). Well-behaved
// modules pass: the example policies, and of the hostile ones the
// first-isr control and the sleeper, which answers well for a second
// (only the controller's check of every answer catches it).
func TestPolicyCheck_hostileModulesExit2(t *testing.T) {
	dir := t.TempDir()
	check := func(t *testing.T, path string, flags ...string) (string, string, int) {
		t.Helper()
		start := time.Now()
		out, errOut, status := run(t, append([]string{"policy", "check", path}, flags...)...)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("reeve policy check %s took %v", filepath.Base(path), took)
		}
		for _, bad := range []string{"fatal error", "panic", "goroutine "} {
			if strings.Contains(errOut, bad) || strings.Contains(out, bad) {
				t.Errorf("reeve policy check %s crashed (%q in its output): status %d\n%s%s", filepath.Base(path), bad, status, out, tail(errOut, 2000))
			}
		}
		return out, errOut, status
	}
	for _, name := range hostileRefused {
		t.Run(name, func(t *testing.T) {
			path := hostileModule(t, dir, name)
			out, errOut, status := check(t, path)
			line := strings.TrimSpace(errOut)
			if status != 2 || strings.Contains(line, "\n") || !strings.Contains(line, name) {
				t.Fatalf("reeve policy check %s = status %d, stdout %q, stderr:\n%s\nwant status 2 and one line naming the file", name, status, out, errOut)
			}
			t.Logf("%s: %s", name, line)
		})
	}
	good := t.TempDir()
	buildPolicy(t, "first-isr", good, "first-isr-go.wasm")
	buildPolicy(t, "least-lag", good, "least-lag-go.wasm")
	for _, path := range []string{
		filepath.Join(good, "first-isr-go.wasm"), filepath.Join(good, "least-lag-go.wasm"),
		filepath.Join(hostileDir, "first-isr.wasm"), filepath.Join(hostileDir, "sleeper.wasm"),
	} {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			// A second per call: on busy cores a Go module's self-test
			// batch sometimes takes over the default 50 ms.
			out, errOut, status := check(t, path, "--timeout", "1s")
			if status != 0 || !strings.HasPrefix(out, "ok ") {
				t.Fatalf("reeve policy check %s = status %d, stdout %q, stderr:\n%s\nwant status 0 and ok", name, status, out, errOut)
			}
		})
	}
}
