package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// The modules in testdata/instrument are written in the text format next
// to them and assembled with wabt's wat2wasm (see each .wat).

// testBounds are the sandbox's default bounds.
var testBounds = bounds{tableElements: defaultTableElems, stackBytes: defaultStackBytes, functionBytes: defaultFuncBytes}

func readTestModule(t testing.TB, name string) []byte {
	t.Helper()
	code, err := os.ReadFile(filepath.Join("testdata", "instrument", name))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// testRuntime is a bare wazero runtime with env.wasm as "env" and, when
// fuel is not nil, reeve.fuel counting its calls in fuel.
func testRuntime(t testing.TB, fuel *atomic.Int64) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { rt.Close(ctx) })
	if _, err := rt.InstantiateWithConfig(ctx, readTestModule(t, "env.wasm"), wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	if fuel != nil {
		if _, err := rt.NewHostModuleBuilder(fuelModule).NewFunctionBuilder().
			WithFunc(func(ctx context.Context, m api.Module) int64 { fuel.Add(1); return hostFuel(ctx, m) }).
			Export(fuelName).
			NewFunctionBuilder().WithGoModuleFunction(hostStackFunc, nil, []api.ValueType{api.ValueTypeI64}).Export(stackName).
			Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return rt
}

// TestInstrument_sameResults runs every export of features.wasm before
// and after instrumenting it: the results are the same, and the
// instrumented module asked reeve.fuel for its budget.
func TestInstrument_sameResults(t *testing.T) {
	ctx := context.Background()
	code := readTestModule(t, "features.wasm")
	inst, err := instrument(code, testBounds)
	if err != nil {
		t.Fatal(err)
	}
	var fuel atomic.Int64
	plain, err := testRuntime(t, nil).Instantiate(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	checked, err := testRuntime(t, &fuel).Instantiate(ctx, inst)
	if err != nil {
		t.Fatalf("instrumented module: %v", err)
	}
	for _, c := range []struct {
		export string
		args   []uint64
	}{
		{"squares", []uint64{10}}, {"squares", []uint64{1000}},
		{"dispatch", []uint64{1000}}, {"indirect", nil}, {"bulk", nil},
		{"branches", []uint64{5}}, {"branches", []uint64{20}},
		{"exits", []uint64{100000}},
	} {
		want, err := plain.ExportedFunction(c.export).Call(ctx, c.args...)
		if err != nil {
			t.Fatalf("%s%v before instrumenting: %v", c.export, c.args, err)
		}
		got, err := checked.ExportedFunction(c.export).Call(ctx, c.args...)
		if err != nil || len(got) != len(want) || got[0] != want[0] {
			t.Errorf("%s%v = %v, %v; before instrumenting %v", c.export, c.args, got, err, want)
		}
	}
	if fuel.Load() == 0 {
		t.Error("the instrumented module never called reeve.fuel")
	}
	// The names survive, renumbered: a function's name is still its own.
	m, err := testRuntime(t, &fuel).CompileModule(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range m.ExportedFunctions() {
		names[f.Name()] = true
	}
	for _, f := range []string{"squares", "dispatch", "indirect", "bulk", "branches"} {
		if !names[f] {
			t.Errorf("export %s lost its function name; names %v", f, names)
		}
	}
}

// TestInstrument_deadlineStopsEveryShape runs hostile.wasm's three
// never-ending functions with a deadline: each is stopped with the
// deadline's exit code soon after it.
func TestInstrument_deadlineStopsEveryShape(t *testing.T) {
	inst, err := instrument(readTestModule(t, "hostile.wasm"), testBounds)
	if err != nil {
		t.Fatal(err)
	}
	var fuel atomic.Int64
	rt := testRuntime(t, &fuel)
	compiled, err := rt.CompileModule(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	const deadline = 50 * time.Millisecond
	for _, c := range []struct {
		export string
		args   []uint64
	}{{"spin", nil}, {"fill", nil}, {"fan", []uint64{64}}} {
		t.Run(c.export, func(t *testing.T) {
			m, err := rt.InstantiateModule(context.Background(), compiled, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err = m.ExportedFunction(c.export).Call(ctx, c.args...)
			took := time.Since(start)
			var exit *sys.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
				t.Fatalf("%s() = %v, want the deadline's exit error", c.export, err)
			}
			if took > deadline+200*time.Millisecond {
				t.Errorf("%s() stopped after %v; the deadline was %v", c.export, took, deadline)
			}
		})
	}
}

// TestInstrument_refuses checks that what cannot be instrumented is
// refused with a reason, never rewritten into something else.
func TestInstrument_refuses(t *testing.T) {
	features := readTestModule(t, "features.wasm")
	importsFuel := append([]byte("\x00asm\x01\x00\x00\x00"),
		1, 4, 1, 0x60, 0, 0, // type section: () -> ()
		2, 14, 1, 5, 'r', 'e', 'e', 'v', 'e', 4, 'f', 'u', 'e', 'l', 0, 0) // import reeve.fuel
	threads := append([]byte("\x00asm\x01\x00\x00\x00"),
		1, 4, 1, 0x60, 0, 0,
		3, 2, 1, 0,
		5, 3, 1, 0, 1,
		10, 11, 1, 9, 0, 0x41, 0, 0xfe, 0x10, 2, 0, 0x1a, 0x0b) // i32.atomic.load
	for name, c := range map[string]struct {
		code []byte
		want string
	}{
		"empty":        {nil, "no \\0asm header"},
		"text":         {[]byte("(module)"), "no \\0asm header"},
		"truncated":    {features[:len(features)/2], "not a valid WebAssembly module"},
		"imports fuel": {importsFuel, "reeve adds itself"},
		"threads":      {threads, "proposal reeve does not run"},
	} {
		_, err := instrument(c.code, testBounds)
		if err == nil || !errors.Is(err, errNotWasm) && name != "imports fuel" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: instrument error %v, want one with %q", name, err, c.want)
		}
	}
}

// moduleOf assembles a module of n functions of type () -> () whose
// bodies are body (without its end).
func moduleOf(n int, body []byte) []byte {
	mod := []byte("\x00asm\x01\x00\x00\x00")
	sec := func(id byte, b []byte) {
		mod = appendU32(append(mod, id), uint32(len(b)))
		mod = append(mod, b...)
	}
	sec(secType, []byte{1, 0x60, 0, 0})
	fs := appendU32(nil, uint32(n))
	code := appendU32(nil, uint32(n))
	for range n {
		fs = append(fs, 0)
		code = appendU32(code, uint32(len(body)+2))
		code = append(append(append(code, 0), body...), 0x0b)
	}
	sec(secFunction, fs)
	sec(secCode, code)
	return mod
}

// TestInstrument_boundsCompileWork: shapes of code that cost wazero's
// compiler far more than their size (measured: 100,000 empty functions
// 3.7 s, one br_table of 400,000 targets 53 s, blocks nested 240,000 deep
// minutes) are refused before compiling; the examples' shapes are not.
func TestInstrument_boundsCompileWork(t *testing.T) {
	nest := func(depth int) []byte {
		var b []byte
		for range depth {
			b = append(b, 0x02, 0x40)
		}
		for range depth {
			b = append(b, 0x0b)
		}
		return b
	}
	brTable := func(targets int) []byte {
		b := appendU32([]byte{0x02, 0x40, 0x41, 0, 0x0e}, uint32(targets))
		for range targets + 1 {
			b = append(b, 0)
		}
		return append(b, 0x0b)
	}
	for _, tt := range []struct {
		name string
		code []byte
		ok   bool
	}{
		{"a few thousand functions", moduleOf(5000, nil), true},
		{"100,000 functions", moduleOf(100000, nil), false},
		{"blocks nested 1,000 deep", moduleOf(1, nest(1000)), true},
		{"blocks nested 50,000 deep", moduleOf(1, nest(50000)), false},
		{"100 functions nested 2,000 deep", moduleOf(100, nest(2000)), false},
		{"a br_table of 1,000 targets", moduleOf(1, brTable(1000)), true},
		{"a br_table of 100,000 targets", moduleOf(1, brTable(100000)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := instrument(tt.code, testBounds)
			if tt.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "compile work") {
				t.Errorf("instrument = %v, want ok %v or a compile work refusal", err, tt.ok)
			}
		})
	}
}

// FuzzInstrument holds instrument to wazero's view of a module: it never
// panics, and what it rewrites compiles whenever the module as given
// compiles. (Modules it refuses are not compiled: wazero takes seconds on
// some malformed ones, such as a section that claims 2^28 entries.)
func FuzzInstrument(f *testing.F) {
	for _, name := range []string{"features.wasm", "hostile.wasm", "env.wasm"} {
		f.Add(readTestModule(f, name))
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, code []byte) {
		inst, err := instrument(code, testBounds)
		if err != nil {
			return
		}
		m, err := rt.CompileModule(ctx, inst)
		if err == nil {
			m.Close(ctx)
			return
		}
		if orig, origErr := rt.CompileModule(ctx, code); origErr == nil {
			orig.Close(ctx)
			t.Fatalf("wazero compiles the module but not its instrumented version: %v", err)
		}
	})
}
