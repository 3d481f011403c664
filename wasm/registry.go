package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Registry keeps the compiled modules of a policy folder, recompiling a
// file when its bytes change. A file that fails to compile or check keeps
// its previous module, if it had one.
type Registry struct {
	rt  *Runtime
	dir string

	mu   sync.Mutex
	mods map[string]*Module  // by file name
	sums map[string][32]byte // of the bytes last tried, good or bad
	errs map[string]error    // of the last try, by file name
}

// NewRegistry returns a registry of the .wasm files in dir.
func NewRegistry(rt *Runtime, dir string) *Registry {
	return &Registry{rt: rt, dir: dir, mods: map[string]*Module{}, sums: map[string][32]byte{}, errs: map[string]error{}}
}

// ScanResult says what a scan found.
type ScanResult struct {
	Loaded  []*Module        // new or changed modules, compiled and checked
	Refused map[string]error // files that failed, by name; their previous module stays
}

// Scan reads the folder and compiles every .wasm file whose bytes changed
// since the last scan. Files that disappeared keep their module (rules may
// still use it) until the process restarts.
func (r *Registry) Scan(ctx context.Context) (ScanResult, error) {
	res := ScanResult{Refused: map[string]error{}}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return res, fmt.Errorf("policy folder %s: %w", r.dir, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".wasm") {
			continue
		}
		code, err := r.rt.ReadModule(filepath.Join(r.dir, name))
		if err != nil {
			res.Refused[name] = fmt.Errorf("read %s: %w", name, err)
			continue
		}
		sum := sha256.Sum256(code)
		if old, seen := r.sums[name]; seen && bytes.Equal(old[:], sum[:]) {
			continue // unchanged: keep its module, or its refusal
		}
		r.sums[name] = sum
		m, err := r.rt.Compile(ctx, name, code)
		if err != nil {
			r.errs[name] = err
			res.Refused[name] = err
			continue
		}
		delete(r.errs, name)
		r.mods[name] = m
		res.Loaded = append(res.Loaded, m)
	}
	sort.Slice(res.Loaded, func(i, j int) bool { return res.Loaded[i].name < res.Loaded[j].name })
	return res, nil
}

// Module returns the current module of a file, and the error of the last
// attempt to load the file if that failed.
func (r *Registry) Module(name string) (*Module, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mods[name], r.errs[name]
}

// Dir is the folder the registry reads.
func (r *Registry) Dir() string { return r.dir }
