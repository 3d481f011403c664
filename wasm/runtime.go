package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// Config sets a Runtime's sandbox.
type Config struct {
	// CacheDir holds compiled machine code between runs; "" compiles in
	// memory only.
	CacheDir string
	// MemoryLimit caps each instance's linear memory, rounded down to 64 KiB
	// pages; default 16 MiB.
	MemoryLimit uint64
	// Timeout bounds every call into a module; default 50 ms.
	Timeout time.Duration
	// Logger receives the modules' log lines and output, with their names.
	Logger *slog.Logger
	// LogLines is how many lines per second a module may log before lines
	// are dropped (and counted); default 20.
	LogLines int
	// MaxModuleBytes refuses a larger module file before it is read
	// (ReadModule); default 8 MiB.
	MaxModuleBytes int64
	// MaxFunctionBytes refuses a module with a larger function body before
	// it is compiled; default 1 MiB.
	MaxFunctionBytes int
	// MaxTableElements bounds all of an instance's tables together;
	// default 65536.
	MaxTableElements uint32
	// MaxStackBytes bounds an instance's call stack, as the rewrite
	// estimates frames (see instrument.go); default 1 MiB.
	MaxStackBytes uint32
}

const (
	defaultMemoryLimit = 16 << 20
	defaultTimeout     = 50 * time.Millisecond
	defaultLogLines    = 20
	defaultModuleBytes = 8 << 20
	defaultFuncBytes   = 1 << 20
	defaultTableElems  = 65536
	defaultStackBytes  = 1 << 20
	pageSize           = 64 << 10
)

// Runtime compiles and runs policy modules. It is safe for concurrent use.
type Runtime struct {
	cfg Config
	rt  wazero.Runtime
	// compiling lets one compile run at a time: what a compile may cost is
	// bounded per module, so the node's worst case is one module's.
	compiling sync.Mutex
}

// NewRuntime starts a wazero runtime with the sandbox's limits and the host
// functions a module may import.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = defaultMemoryLimit
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.LogLines <= 0 {
		cfg.LogLines = defaultLogLines
	}
	if cfg.MaxModuleBytes <= 0 {
		cfg.MaxModuleBytes = defaultModuleBytes
	}
	if cfg.MaxFunctionBytes <= 0 {
		cfg.MaxFunctionBytes = defaultFuncBytes
	}
	if cfg.MaxTableElements == 0 {
		cfg.MaxTableElements = defaultTableElems
	}
	if cfg.MaxStackBytes == 0 {
		cfg.MaxStackBytes = defaultStackBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages := cfg.MemoryLimit / pageSize
	if pages < 1 {
		return nil, fmt.Errorf("policy memory limit %d bytes is under one 64 KiB page", cfg.MemoryLimit)
	}
	// The deadline is not wazero's WithCloseOnContextDone: Compile
	// instruments every module to check it through reeve.fuel (see
	// instrument.go).
	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(uint32(min(pages, 65536)))
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("policy compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	r := &Runtime{cfg: cfg, rt: wazero.NewRuntimeWithConfig(ctx, rc)}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("policy runtime: wasi: %w", err)
	}
	if _, err := r.rt.NewHostModuleBuilder("reeve").
		NewFunctionBuilder().WithFunc(hostLog).Export("log").
		NewFunctionBuilder().WithFunc(hostNow).Export("now_unix_ms").
		NewFunctionBuilder().WithGoModuleFunction(hostFuelFunc, nil, []api.ValueType{api.ValueTypeI64}).Export(fuelName).
		NewFunctionBuilder().WithGoModuleFunction(hostStackFunc, nil, []api.ValueType{api.ValueTypeI64}).Export(stackName).
		Instantiate(ctx); err != nil {
		r.rt.Close(ctx)
		return nil, fmt.Errorf("policy runtime: host module: %w", err)
	}
	return r, nil
}

// Close releases every module and instance.
func (r *Runtime) Close(ctx context.Context) error { return r.rt.Close(ctx) }

// Timeout is the per-call deadline.
func (r *Runtime) Timeout() time.Duration { return r.cfg.Timeout }

// allowedImports are the only functions a module may import: the reeve
// host functions and what language runtimes need to start under WASI.
// Nothing here reaches a file, a socket or the environment: there are no
// preopened directories, arguments or variables, and output goes to the
// log.
var allowedImports = map[string]map[string]bool{
	"reeve": {"log": true, "now_unix_ms": true},
	wasi_snapshot_preview1.ModuleName: {
		"fd_write": true, "fd_close": true, "fd_fdstat_get": true, "fd_fdstat_set_flags": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
		"args_get": true, "args_sizes_get": true, "environ_get": true, "environ_sizes_get": true,
		"clock_time_get": true, "clock_res_get": true, "random_get": true, "poll_oneoff": true,
		"sched_yield": true, "proc_exit": true,
	},
}

// Module is compiled policy code whose imports and exports were checked.
type Module struct {
	rt       *Runtime
	name     string
	digest   string
	compiled wazero.CompiledModule

	// The compiled code is closed once the module is retired (the folder
	// has another version) and no Policy made from it is open.
	refMu     sync.Mutex
	instances int
	retired   bool
	closed    bool
}

// retire closes the module now, or when its last Policy closes.
func (m *Module) retire(ctx context.Context) {
	m.refMu.Lock()
	m.retired = true
	done := m.instances == 0 && !m.closed
	m.closed = m.closed || done
	m.refMu.Unlock()
	if done {
		m.compiled.Close(ctx)
	}
}

// release is a Policy made from m closing.
func (m *Module) release(ctx context.Context) {
	m.refMu.Lock()
	m.instances--
	done := m.instances == 0 && m.retired && !m.closed
	m.closed = m.closed || done
	m.refMu.Unlock()
	if done {
		m.compiled.Close(ctx)
	}
}

// Compile compiles a module and checks that it imports nothing outside
// the allowlist and exports the ABI. name identifies it in logs. The
// module is first instrumented to check its deadline (see instrument.go);
// its digest is that of code as given.
func (r *Runtime) Compile(ctx context.Context, name string, code []byte) (*Module, error) {
	if len(code) > int(r.cfg.MaxModuleBytes) {
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, name, tooLarge(int64(len(code)), r.cfg.MaxModuleBytes))
	}
	sum := sha256.Sum256(code)
	inst, err := instrument(code, bounds{tableElements: r.cfg.MaxTableElements, stackBytes: r.cfg.MaxStackBytes,
		functionBytes: r.cfg.MaxFunctionBytes})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrRefused, name, err)
	}
	r.compiling.Lock()
	cm, err := r.rt.CompileModule(ctx, inst)
	r.compiling.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a valid WebAssembly module: %v", ErrRefused, name, err)
	}
	m := &Module{rt: r, name: name, digest: "sha256:" + hex.EncodeToString(sum[:]), compiled: cm}
	if err := m.check(); err != nil {
		cm.Close(ctx)
		return nil, err
	}
	return m, nil
}

func (m *Module) check() error {
	var bad []string
	for _, f := range m.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		if !allowedImports[mod][name] && !addedImport(mod, name) { // instrument refuses a module that imports them itself
			bad = append(bad, mod+"."+name)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w: %s imports %s, which a policy may not use (no file system, network or environment; see docs/policy-abi.md)",
			ErrRefused, m.name, strings.Join(bad, ", "))
	}
	exports := m.compiled.ExportedFunctions()
	for _, want := range []struct {
		name    string
		params  []api.ValueType
		results []api.ValueType
	}{
		{"reeve_abi_version", nil, []api.ValueType{api.ValueTypeI32}},
		{"reeve_alloc", []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}},
		{"reeve_decide", []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}},
	} {
		f, ok := exports[want.name]
		if !ok {
			return fmt.Errorf("%w: %s does not export %s (see docs/policy-abi.md)", ErrRefused, m.name, want.name)
		}
		if !sameTypes(f.ParamTypes(), want.params) || !sameTypes(f.ResultTypes(), want.results) {
			return fmt.Errorf("%w: %s exports %s with the wrong signature", ErrRefused, m.name, want.name)
		}
	}
	if f, ok := exports["reeve_init"]; ok && (!sameTypes(f.ParamTypes(), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}) ||
		!sameTypes(f.ResultTypes(), []api.ValueType{api.ValueTypeI32})) {
		return fmt.Errorf("%w: %s exports reeve_init with the wrong signature", ErrRefused, m.name)
	}
	if f, ok := exports["reeve_abi_minor"]; ok && (len(f.ParamTypes()) != 0 || !sameTypes(f.ResultTypes(), []api.ValueType{api.ValueTypeI32})) {
		return fmt.Errorf("%w: %s exports reeve_abi_minor with the wrong signature", ErrRefused, m.name)
	}
	if len(m.compiled.ExportedMemories()) == 0 {
		return fmt.Errorf("%w: %s does not export its memory", ErrRefused, m.name)
	}
	return nil
}

// ReadModule reads a module file, refusing one larger than MaxModuleBytes
// before reading it whole.
func (r *Runtime) ReadModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	limit := r.cfg.MaxModuleBytes
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file", ErrRefused, filepath.Base(path))
	} else if st.Size() > limit {
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, filepath.Base(path), tooLarge(st.Size(), limit))
	}
	code, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(code)) > limit { // it grew while being read
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, filepath.Base(path), tooLarge(int64(len(code)), limit))
	}
	return code, nil
}

func tooLarge(size, limit int64) string {
	return fmt.Sprintf("the module is %.1f MiB; election.policy_max_module_mib allows %d MiB", float64(size)/(1<<20), limit>>20)
}

func sameTypes(a, b []api.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Name is the module's name, as given to Compile.
func (m *Module) Name() string { return m.name }

// Digest is the SHA-256 of the module's bytes, "sha256:<hex>".
func (m *Module) Digest() string { return m.digest }

// Close releases the compiled code; Policies made from it must be closed
// first.
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

// Instantiate makes a Policy from the module with its settings: it runs
// the module's initializer, checks the ABI version, passes the settings to
// reeve_init, and runs the self-test (fixed, and sampled from shape). A
// module that fails any step is refused.
func (m *Module) Instantiate(ctx context.Context, settings []abi.Label, shape policy.Shape) (*Policy, error) {
	m.refMu.Lock()
	m.instances++
	m.refMu.Unlock()
	p := &Policy{mod: m, settings: settings, out: newGuestOutput(m.rt.cfg.Logger, m.name, m.rt.cfg.LogLines)}
	if err := p.instantiate(ctx); err != nil {
		m.release(ctx)
		return nil, err
	}
	if err := p.selfTest(ctx, shape); err != nil {
		p.Close(ctx)
		return nil, err
	}
	return p, nil
}
