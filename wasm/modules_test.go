package wasm

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reeve-edge/reeve/policy"
)

// TestModules_lastGoodSurvivesARestart: a module that passed is kept in
// the store; after the folder's file turns bad (or goes), a new Modules
// over the same store (a restarted node) runs the kept module, and a
// store entry that does not match its digest is refused.
func TestModules_lastGoodSurvivesARestart(t *testing.T) {
	ctx := context.Background()
	good, err := os.ReadFile(filepath.Join("testdata", "hostile-wat", "first-isr.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dir, store := t.TempDir(), t.TempDir()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	file := filepath.Join(dir, "p.wasm")
	if err := os.WriteFile(file, good, 0o644); err != nil {
		t.Fatal(err)
	}
	ms := NewModules(rt, dir, store)
	if refused, err := ms.Scan(ctx); err != nil || len(refused) > 0 {
		t.Fatalf("Scan = %v, %v", refused, err)
	}
	want, err := ms.Digest("p.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.LastGood(ctx, "p.wasm", nil, policy.Shape{}); err == nil {
		t.Fatalf("LastGood before any module passed = ok, want an error")
	}
	p, err := ms.Instantiate(ctx, "p.wasm", nil, policy.Shape{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(ctx)

	// A newer good version replaces the old one in the store.
	if err := os.WriteFile(file, append(append([]byte(nil), good...), 0, 5, 3, 'p', 'a', 'd', 0), 0o644); err == nil {
		ms.Scan(ctx)
		if p, err := ms.Instantiate(ctx, "p.wasm", nil, policy.Shape{}); err != nil {
			t.Fatalf("a second version (a custom section more): %v", err)
		} else {
			p.Close(ctx)
		}
		if stored, _ := filepath.Glob(filepath.Join(store, "*.wasm")); len(stored) != 1 {
			t.Errorf("store holds %d modules after a second good version, want 1: %v", len(stored), stored)
		}
		os.WriteFile(file, good, 0o644)
		ms.Scan(ctx)
		if p, err := ms.Instantiate(ctx, "p.wasm", nil, policy.Shape{}); err != nil {
			t.Fatal(err)
		} else {
			p.Close(ctx)
		}
	}

	for _, tt := range []struct {
		name   string
		change func()
	}{
		{"garbage in the folder", func() { os.WriteFile(file, []byte("\x00asm\x01\x00\x00\x00garbage"), 0o644) }},
		{"the file removed", func() { os.Remove(file) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			restarted := NewModules(rt, dir, store)
			restarted.Scan(ctx)
			if d, err := restarted.Digest("p.wasm"); err == nil {
				t.Fatalf("Digest after the change = %s, want an error", d)
			}
			p, err := restarted.LastGood(ctx, "p.wasm", nil, policy.Shape{})
			if err != nil {
				t.Fatalf("LastGood = %v", err)
			}
			defer p.Close(ctx)
			if p.Digest() != want {
				t.Errorf("LastGood runs %s, want %s", p.Digest(), want)
			}
			ds, err := p.Decide(ctx, policy.Sample(policy.Shape{}, rand.New(rand.NewPCG(1, 2))))
			if err != nil || len(ds) == 0 {
				t.Errorf("the last good module's Decide = %d decisions, %v", len(ds), err)
			}
		})
	}

	// A store entry whose bytes do not match its digest is not run.
	hexSum := strings.TrimPrefix(want, "sha256:")
	if err := os.WriteFile(filepath.Join(store, hexSum+".wasm"), append(good, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewModules(rt, dir, store).LastGood(ctx, "p.wasm", nil, policy.Shape{}); err == nil ||
		!strings.Contains(err.Error(), "does not match") {
		t.Errorf("LastGood of a corrupted store entry = %v, want a digest mismatch", err)
	}
}
