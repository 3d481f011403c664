package guesttest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm"
)

// Policy modules built from Go source, for the tests.
//
// A Go guest is about 2 MB of wasm. Compiling it takes wazero's compiler
// about 2 s, but 18 s in a test binary built with -race, where every
// memory access of the compiler is checked. So each guest is compiled once
// by a reeve binary TestMain builds (no race detector) into a wazero
// compilation cache the tests' runtimes share: they load the same machine
// code a node would, from the cache, as a node restarting does. A guest the
// binary refuses before compiling it is compiled by the test's runtime.

// reeveBin is the reeve binary TestMain builds.
var reeveBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reeve-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reeveBin = filepath.Join(dir, "reeve")
	// A test binary has no module list in its build info, so wazero calls
	// its own version "dev" there and keys its compilation cache by that:
	// the binary says the same, so what it compiles loads here.
	build := exec.Command("go", "build", "-ldflags", "-X github.com/tetratelabs/wazero/internal/version.version=dev",
		"-o", reeveBin, "../..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build reeve: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if guestCache.dir != "" {
		os.RemoveAll(guestCache.dir)
	}
	os.Exit(code)
}

var (
	guests     sync.Map // dir -> []byte or error
	guestCache struct {
		once sync.Once
		dir  string
		err  error
	}
)

// guestCacheDir returns the shared compilation cache, creating it once.
func guestCacheDir(t testing.TB) string {
	t.Helper()
	guestCache.once.Do(func() { guestCache.dir, guestCache.err = os.MkdirTemp("", "reeve-guest-cache-") })
	if guestCache.err != nil {
		t.Fatal(guestCache.err)
	}
	return guestCache.dir
}

// buildGuest builds the Go policy module in dir (relative to the repository root)
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared, has the reeve binary
// compile it into the shared cache, and returns its bytes.
func buildGuest(t testing.TB, dir string) []byte {
	t.Helper()
	if v, ok := guests.Load(dir); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.([]byte)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(dir)+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./"+dir)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		err = fmt.Errorf("build %s: %v\n%s", dir, err, msg)
		guests.Store(dir, err)
		t.Fatal(err)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if reeveBin != "" {
		// policy check compiles with [election]'s default sandbox, as
		// testRules and loadGuest do, so the cache key (the instrumented
		// module's hash) is theirs. Hostile guests are refused after the
		// compile, with exit status 2: the machine code is cached anyway.
		warm := exec.Command(reeveBin, "policy", "check", "--cache", guestCacheDir(t), out)
		if msg, err := warm.CombinedOutput(); err != nil && warm.ProcessState.ExitCode() != 2 {
			t.Fatalf("reeve policy check %s: %v\n%s", dir, err, msg)
		}
	}
	guests.Store(dir, code)
	return code
}

// loadGuest compiles and instantiates a guest with settings.
func loadGuest(t testing.TB, dir string, settings map[string]string) *wasm.Policy {
	t.Helper()
	ctx := context.Background()
	code := buildGuest(t, dir)
	rt, err := wasm.NewRuntime(ctx, wasm.Config{Timeout: time.Second, CacheDir: guestCacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	m, err := rt.Compile(ctx, filepath.Base(dir)+".wasm", code)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Instantiate(ctx, wasm.Settings(settings), policy.Shape{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
