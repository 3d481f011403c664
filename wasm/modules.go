package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/reeve-edge/reeve/internal/fsutil"
	"github.com/reeve-edge/reeve/policy"
)

// Modules keeps the compiled modules of a policy folder, recompiling a
// file when its bytes change, and the last good module of each file in a
// store under the data dir, so that a node restarted with a bad or
// missing file still runs what worked. It implements policy.Modules.
//
// A compile runs with no lock that Digest or an election takes, so the
// admin API and elections never wait behind one.
type Modules struct {
	rt    *Runtime
	dir   string
	store string // last good modules; "" keeps none

	scanning sync.Mutex // one scan at a time
	mu       sync.Mutex // guards files; never held while compiling
	files    map[string]*file
}

// file is one .wasm file of the folder as last scanned.
type file struct {
	sum  [32]byte // of the bytes last tried, good or bad
	mod  *Module  // nil if they were refused
	code []byte   // what mod was compiled from, for the store
	err  error
}

var _ policy.Modules = (*Modules)(nil)

// NewModules returns the modules of the .wasm files in dir; store, if not
// "", keeps the last good module of each file across restarts.
func NewModules(rt *Runtime, dir, store string) *Modules {
	return &Modules{rt: rt, dir: dir, store: store, files: map[string]*file{}}
}

// Dir implements policy.Modules.
func (ms *Modules) Dir() string { return ms.dir }

// Scan implements policy.Modules: it reads the folder and compiles every
// .wasm file whose bytes changed. A file that is gone is forgotten (rules
// keep running the instance they have).
func (ms *Modules) Scan(ctx context.Context) (map[string]error, error) {
	ms.scanning.Lock()
	defer ms.scanning.Unlock()
	entries, err := os.ReadDir(ms.dir)
	if err != nil {
		return nil, fmt.Errorf("policy folder %s: %w", ms.dir, err)
	}
	refused := map[string]error{}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".wasm") {
			continue
		}
		seen[name] = true
		code, err := ms.rt.ReadModule(filepath.Join(ms.dir, name))
		var sum [32]byte
		if err == nil {
			sum = sha256.Sum256(code)
		}
		ms.mu.Lock()
		old := ms.files[name]
		ms.mu.Unlock()
		if old != nil && err == nil && bytes.Equal(old.sum[:], sum[:]) {
			continue // unchanged: keep its module, or its refusal
		}
		if old != nil && err != nil && old.err != nil && old.err.Error() == err.Error() {
			continue // refused as before
		}
		f := &file{sum: sum, err: err}
		if err == nil {
			f.mod, f.err = ms.rt.Compile(ctx, name, code)
			f.code = code
		}
		if f.err != nil {
			refused[name], f.mod, f.code = f.err, nil, nil
		}
		ms.mu.Lock()
		ms.files[name] = f
		ms.mu.Unlock()
		if old != nil && old.mod != nil {
			old.mod.retire(ctx)
		}
	}
	ms.mu.Lock()
	var gone []*Module
	for name, f := range ms.files {
		if !seen[name] {
			delete(ms.files, name)
			if f.mod != nil {
				gone = append(gone, f.mod)
			}
		}
	}
	ms.mu.Unlock()
	for _, m := range gone {
		m.retire(ctx)
	}
	return refused, nil
}

// Digest implements policy.Modules.
func (ms *Modules) Digest(name string) (string, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	f := ms.files[name]
	switch {
	case f == nil:
		return "", fmt.Errorf("no file %s in %s", name, ms.dir)
	case f.err != nil:
		return "", f.err
	}
	return f.mod.Digest(), nil
}

// Instantiate implements policy.Modules; a module that passes is written
// to the store as the file's last good one.
func (ms *Modules) Instantiate(ctx context.Context, name string, settings map[string]string, shape policy.Shape) (policy.Instance, error) {
	ms.mu.Lock()
	f := ms.files[name]
	ms.mu.Unlock()
	if f == nil || f.mod == nil {
		_, err := ms.Digest(name)
		return nil, err
	}
	p, err := f.mod.Instantiate(ctx, Settings(settings), shape)
	if err != nil {
		return nil, err
	}
	if err := ms.keepGood(name, f.mod.Digest(), f.code); err != nil {
		ms.rt.cfg.Logger.Warn("election policy: cannot keep the last good module", "policy", name, "err", err)
	}
	return p, nil
}

// LastGood implements policy.Modules.
func (ms *Modules) LastGood(ctx context.Context, name string, settings map[string]string, shape policy.Shape) (policy.Instance, error) {
	if ms.store == "" {
		return nil, fmt.Errorf("no last good module is kept: %w", fs.ErrNotExist)
	}
	ref, err := os.ReadFile(filepath.Join(ms.store, name+".good"))
	if err != nil {
		return nil, err
	}
	digest := strings.TrimSpace(string(ref))
	hexSum, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexSum) != 64 || strings.Trim(hexSum, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("last good module of %s: bad reference %q", name, digest)
	}
	code, err := ms.rt.ReadModule(filepath.Join(ms.store, hexSum+".wasm"))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(code); hex.EncodeToString(sum[:]) != hexSum {
		return nil, fmt.Errorf("last good module of %s: %s does not match its digest", name, hexSum)
	}
	m, err := ms.rt.Compile(ctx, name, code)
	if err != nil {
		return nil, err
	}
	m.retired = true // no scan knows it: it goes when its instance does
	p, err := m.Instantiate(ctx, Settings(settings), shape)
	if err != nil {
		m.Close(ctx)
		return nil, err
	}
	return p, nil
}

// keepGood writes code to the store by its digest, and name's reference
// to it, each through a temporary file and a rename.
func (ms *Modules) keepGood(name, digest string, code []byte) error {
	if ms.store == "" || code == nil {
		return nil
	}
	if err := os.MkdirAll(ms.store, 0o750); err != nil {
		return err
	}
	hexSum := strings.TrimPrefix(digest, "sha256:")
	path := filepath.Join(ms.store, hexSum+".wasm")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := fsutil.WriteFileAtomic(ms.store, hexSum+".wasm", code, 0o640); err != nil {
			return err
		}
	}
	if err := fsutil.WriteFileAtomic(ms.store, name+".good", []byte(digest+"\n"), 0o640); err != nil {
		return err
	}
	return ms.prune()
}

// prune removes the stored modules no file refers to any more, so the
// store holds at most one module per policy file.
func (ms *Modules) prune() error {
	entries, err := os.ReadDir(ms.store)
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".good") {
			ref, err := os.ReadFile(filepath.Join(ms.store, e.Name()))
			if err != nil {
				return err // keep everything rather than guess
			}
			used[strings.TrimPrefix(strings.TrimSpace(string(ref)), "sha256:")+".wasm"] = true
		}
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".wasm") && !used[e.Name()] {
			os.Remove(filepath.Join(ms.store, e.Name()))
		}
	}
	return nil
}
