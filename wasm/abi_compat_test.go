package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/wasm/abi"
)

// exampleModules caches the example policies built for these tests.
var exampleModules sync.Map // name -> []byte or error

// buildExample builds wasm/examples/name as a WASI reactor, as make
// policies does, once per test binary.
func buildExample(t *testing.T, name string) []byte {
	t.Helper()
	if v, ok := exampleModules.Load(name); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.([]byte)
	}
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, "./wasm/examples/"+name)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		err = fmt.Errorf("build wasm/examples/%s: %v\n%s", name, err, msg)
		exampleModules.Store(name, err)
		t.Fatal(err)
	}
	code, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	exampleModules.Store(name, code)
	return code
}

// compatBatch is a batch of n partitions in every state, over nodes with
// labels, with topic names of many lengths.
func compatBatch(n int) *abi.Batch {
	r := rand.New(rand.NewPCG(5, 6))
	b := &abi.Batch{}
	for i := range 6 {
		nd := abi.Node{ID: uint64(i + 1), HeartbeatAgeMs: uint32(r.IntN(20000))}
		if i%3 != 2 {
			nd.Labels = []abi.Label{{Key: "power", Value: []string{"mains", "battery"}[i%2]}, {Key: "zone", Value: fmt.Sprint("z", i)}}
		}
		b.Nodes = append(b.Nodes, nd)
	}
	b.Nodes[5].HeartbeatAgeMs = abi.NeverHeard
	for i := range n {
		p := abi.Partition{Topic: strings.Repeat("t", i%23) + fmt.Sprint(i/50), Partition: int32(i), Reason: abi.Reason(r.IntN(4)),
			Unclean: r.IntN(4) == 0, LeaderEpoch: int32(r.IntN(100))}
		perm := r.Perm(len(b.Nodes))
		for j := range 1 + r.IntN(4) {
			p.Replicas = append(p.Replicas, abi.Replica{Node: uint32(perm[j]), Alive: r.IntN(3) > 0, InISR: r.IntN(3) > 0, LogEndOffset: int64(r.IntN(1000)) - 1})
		}
		if r.IntN(5) > 0 {
			p.Leader = b.Nodes[p.Replicas[r.IntN(len(p.Replicas))].Node].ID
		}
		b.Partitions = append(b.Partitions, p)
	}
	return b
}

// decideRaw hands data to the module's reeve_decide as it is, bypassing
// the host's encoding, and returns the answer's bytes.
func decideRaw(t *testing.T, p *Policy, data []byte) []byte {
	t.Helper()
	ctx := context.Background()
	res, err := p.inst.ExportedFunction("reeve_alloc").Call(ctx, uint64(len(data)))
	if err != nil {
		t.Fatalf("reeve_alloc: %v", err)
	}
	ptr := uint32(res[0])
	if !p.inst.Memory().Write(ptr, data) {
		t.Fatalf("reeve_alloc returned %#x, outside memory", ptr)
	}
	res, err = p.inst.ExportedFunction("reeve_decide").Call(ctx, uint64(ptr), uint64(len(data)))
	if err != nil {
		t.Fatalf("reeve_decide: %v", err)
	}
	packed := int64(res[0])
	if packed < 0 {
		t.Fatalf("reeve_decide reported failure (%d)", packed)
	}
	out, ok := p.inst.Memory().Read(uint32(uint64(packed)>>32), uint32(packed))
	if !ok {
		t.Fatal("answer outside memory")
	}
	return bytes.Clone(out)
}

// TestABI_laterMinorRunsUnchanged is the ABI's promise: a module built for
// 2.0 runs unchanged on a host that adds input fields. The example
// policies, built with the SDK, answer a batch of minor 1 (a field more on
// every record, the header and after the last partition) with the same
// bytes as the batch of minor 0, and that answer is the one the host's
// own path gets.
func TestABI_laterMinorRunsUnchanged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example policies")
	}
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{Timeout: 2 * time.Second}) // a Go module starts its runtime in _initialize: slow under -race
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	b := compatBatch(500)
	minor1 := abi.Extension{
		Minor:     1,
		Header:    binary.LittleEndian.AppendUint64(nil, 3),         // say, the deciding node's id
		Node:      binary.LittleEndian.AppendUint64(nil, 64<<30),    // say, the node's free disk
		Partition: binary.LittleEndian.AppendUint64(nil, 1<<40),     // say, the high watermark
		Replica:   binary.LittleEndian.AppendUint32(nil, 1500),      // say, the replica's lag in ms
		Trailer:   []byte{1, 0, 0, 0, 't', 'a', 'b', 'l', 'e', '!'}, // say, a new table
	}
	for _, tc := range []struct {
		name     string
		settings []abi.Label
	}{
		{name: "first-isr"},
		{name: "prefer-label", settings: []abi.Label{{Key: "label", Value: "power"}, {Key: "value", Value: "mains"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := rt.Compile(ctx, tc.name+".wasm", buildExample(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.Instantiate(ctx, tc.settings, policy.Shape{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			host, err := p.DecideBatch(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			want := decideRaw(t, p, abi.AppendBatch(nil, b))
			// Twice: the second time the SDK's caches hold the nodes and
			// topics of the minor 0 batch.
			for round := range 2 {
				if got := decideRaw(t, p, abi.AppendBatchExtended(nil, b, minor1)); !bytes.Equal(got, want) {
					t.Fatalf("round %d: the answer to the minor 1 batch differs from the answer to minor 0:\n%x\n%x", round, got, want)
				}
			}
			ds, err := abi.DecodeDecisions(want, len(b.Partitions))
			if err != nil {
				t.Fatal(err)
			}
			for i := range ds {
				if ds[i] != host[i] {
					t.Fatalf("decision %d: %+v by bytes, %+v by DecideBatch", i, ds[i], host[i])
				}
			}
		})
	}
}

// versionModule assembles a module that exports memory and the ABI's
// functions, with reeve_abi_version returning major and, unless noMinor,
// reeve_abi_minor returning minor (with badMinor, taking an i32 it should
// not). Its reeve_decide always reports failure.
func versionModule(major, minor int32, noMinor, badMinor bool) []byte {
	leb := func(b []byte, v uint32) []byte {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		return append(b, byte(v))
	}
	sleb := func(b []byte, v int64) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	vec := func(items ...[]byte) []byte {
		out := leb(nil, uint32(len(items)))
		for _, it := range items {
			out = append(out, it...)
		}
		return out
	}
	section := func(id byte, body []byte) []byte { return append(leb([]byte{id}, uint32(len(body))), body...) }
	name := func(s string) []byte { return append(leb(nil, uint32(len(s))), s...) }
	body := func(code ...byte) []byte {
		b := append([]byte{0}, code...) // no locals
		return append(leb(nil, uint32(len(b)+1)), append(b, 0x0b)...)
	}
	const i32, i64 = 0x7f, 0x7e
	types := vec(
		[]byte{0x60, 0, 1, i32},           // 0: () -> i32
		[]byte{0x60, 1, i32, 1, i32},      // 1: (i32) -> i32
		[]byte{0x60, 2, i32, i32, 1, i64}, // 2: (i32, i32) -> i64
	)
	funcs := [][]byte{{0}, {1}, {2}}
	exports := [][]byte{
		append(name("memory"), 2, 0),
		append(name("reeve_abi_version"), 0, 0),
		append(name("reeve_alloc"), 0, 1),
		append(name("reeve_decide"), 0, 2),
	}
	codes := [][]byte{
		body(sleb([]byte{0x41}, int64(major))...), // i32.const major
		body(sleb([]byte{0x41}, 1024)...),
		body(sleb([]byte{0x42}, -1)...), // i64.const -1
	}
	if !noMinor {
		typ := byte(0)
		if badMinor {
			typ = 1
		}
		funcs = append(funcs, []byte{typ})
		exports = append(exports, append(name("reeve_abi_minor"), 0, 3))
		codes = append(codes, body(sleb([]byte{0x41}, int64(minor))...))
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, section(1, types)...)
	out = append(out, section(3, vec(funcs...))...)
	out = append(out, section(5, vec([]byte{0, 1}))...) // one memory of at least a page
	out = append(out, section(7, vec(exports...))...)
	return append(out, section(10, vec(codes...))...)
}

// TestModule_Instantiate_abiVersion checks what the host does with each
// version a module may report: another major or a later minor is refused
// with what to do about it; 2.0, with or without reeve_abi_minor, passes
// the version check (these modules then fail the self-test, which answers
// nothing).
func TestModule_Instantiate_abiVersion(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	for _, tc := range []struct {
		name         string
		major, minor int32
		noMinor      bool   // no reeve_abi_minor export
		badMinor     bool   // reeve_abi_minor takes an i32
		compileErr   string // "" when Compile accepts it
		refused      string // "" when the version is accepted
	}{
		{name: "ABI 1", major: 1, noMinor: true, refused: "speaks policy ABI 1; this reeve speaks 2.x: rebuild it with the current SDK (docs/policy-abi.md)"},
		{name: "ABI 3", major: 3, minor: 0, refused: "speaks policy ABI 3; this reeve speaks 2.x: upgrade reeve"},
		{name: "2.1", major: 2, minor: 1, refused: "speaks policy ABI 2.1; this reeve speaks up to 2.0: upgrade reeve"},
		{name: "negative minor", major: 2, minor: -1280, refused: "speaks policy ABI 2.-1280"},
		{name: "2.0 without reeve_abi_minor", major: 2, noMinor: true},
		{name: "2.0", major: 2, minor: 0},
		{name: "minor of the wrong signature", major: 2, minor: 0, badMinor: true, compileErr: "exports reeve_abi_minor with the wrong signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := versionModule(tc.major, tc.minor, tc.noMinor, tc.badMinor)
			m, err := rt.Compile(ctx, "v.wasm", code)
			if tc.compileErr != "" {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.compileErr) {
					t.Fatalf("Compile = %v, want ErrRefused with %q", err, tc.compileErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Instantiate(ctx, nil, policy.Shape{})
			t.Logf("Instantiate: %v", err)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Instantiate = %v, want ErrRefused", err)
			}
			if tc.refused == "" && strings.Contains(err.Error(), "policy ABI") {
				t.Errorf("Instantiate = %v, want the version accepted", err)
			}
			if tc.refused != "" && !strings.Contains(err.Error(), tc.refused) {
				t.Errorf("Instantiate = %v, want %q", err, tc.refused)
			}
		})
	}
}
