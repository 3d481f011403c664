package wasm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/reeve-edge/reeve/wasm/abi"
)

// Policy is one instance of a module with its settings. Decide calls are
// serialized. After a trap or a missed deadline the instance is discarded
// and the next call makes a fresh one.
type Policy struct {
	mod      *Module
	settings []abi.Label
	out      *guestOutput

	mu      sync.Mutex
	inst    api.Module
	alloc   api.Function
	decide  api.Function
	in      []byte // the encoded batch, reused
	bufPtr  uint32 // the guest's input buffer, from reeve_alloc
	bufCap  int    // its size; 0 when there is none (a new instance)
	resets  int    // instances discarded after a trap or deadline
	closing bool
}

// Module is the compiled module the policy runs.
func (p *Policy) Module() *Module { return p.mod }

// Resets counts the instances discarded after traps or missed deadlines.
func (p *Policy) Resets() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resets
}

// instantiate makes the instance: runs _initialize if exported, checks the
// ABI version, and hands the settings to reeve_init. Called with p.mu held
// or before p is shared.
func (p *Policy) instantiate(ctx context.Context) error {
	m := p.mod
	ctx, cancel := context.WithTimeout(withGuestOutput(ctx, p.out), m.rt.cfg.Timeout*4)
	defer cancel()
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithStdout(p.out).WithStderr(p.out).WithSysWalltime().WithSysNanotime()
	inst, err := m.rt.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return fmt.Errorf("%w: %s: instantiate: %v", ErrRefused, m.name, callError(err))
	}
	ok := false
	defer func() {
		if !ok {
			inst.Close(context.Background())
		}
	}()
	res, err := inst.ExportedFunction("reeve_abi_version").Call(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: reeve_abi_version: %v", ErrRefused, m.name, callError(err))
	}
	// The major must be this reeve's; the minor (0 when not exported) at
	// most this reeve's, whose batches then hold every field the module
	// reads (see package abi on versions).
	major, minor := int32(res[0]), int32(0)
	switch {
	case major < abi.Major:
		return fmt.Errorf("%w: %s speaks policy ABI %d; this reeve speaks %d.x: rebuild it with the current SDK (docs/policy-abi.md)",
			ErrRefused, m.name, major, abi.Major)
	case major > abi.Major:
		return fmt.Errorf("%w: %s speaks policy ABI %d; this reeve speaks %d.x: upgrade reeve, or rebuild the module with the SDK of this reeve's release (docs/policy-abi.md)",
			ErrRefused, m.name, major, abi.Major)
	}
	if f := inst.ExportedFunction("reeve_abi_minor"); f != nil {
		res, err := f.Call(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s: reeve_abi_minor: %v", ErrRefused, m.name, callError(err))
		}
		minor = int32(res[0])
	}
	if minor < 0 || minor > abi.Minor {
		return fmt.Errorf("%w: %s speaks policy ABI %d.%d; this reeve speaks up to %d.%d: upgrade reeve, or rebuild the module with the SDK of this reeve's release (docs/policy-abi.md)",
			ErrRefused, m.name, major, minor, abi.Major, abi.Minor)
	}
	p.inst, p.alloc, p.decide = inst, inst.ExportedFunction("reeve_alloc"), inst.ExportedFunction("reeve_decide")
	p.bufPtr, p.bufCap = 0, 0
	if init := inst.ExportedFunction("reeve_init"); init != nil {
		data := abi.AppendSettings(nil, p.settings)
		ptr, err := p.write(ctx, data)
		if err != nil {
			return fmt.Errorf("%w: %s: reeve_init: %v", ErrRefused, m.name, err)
		}
		res, err := init.Call(ctx, uint64(ptr), uint64(len(data)))
		if err != nil {
			return fmt.Errorf("%w: %s: reeve_init: %v", ErrRefused, m.name, callError(err))
		}
		if rc := int32(res[0]); rc != 0 {
			return fmt.Errorf("%w: %s: reeve_init refused its settings (result %d; its log says why)", ErrRefused, m.name, rc)
		}
	}
	ok = true
	return nil
}

// write copies data into the guest's input buffer. The buffer stays valid
// until the next reeve_alloc (the ABI says so), so it is asked for only when
// data outgrows it, rounded up to a power of two: most rounds then cost one
// call into the module, not two.
func (p *Policy) write(ctx context.Context, data []byte) (uint32, error) {
	if len(data) > p.bufCap || p.bufCap == 0 {
		size := 4096
		for size < len(data) {
			size *= 2
		}
		res, err := p.alloc.Call(ctx, uint64(size))
		if err != nil {
			return 0, fmt.Errorf("reeve_alloc(%d): %w", size, err)
		}
		p.bufPtr, p.bufCap = uint32(res[0]), size
	}
	if !p.inst.Memory().Write(p.bufPtr, data) {
		ptr := p.bufPtr
		p.bufCap = 0
		return 0, fmt.Errorf("%w: reeve_alloc(%d) returned %#x, outside its memory", ErrBadAnswer, len(data), ptr)
	}
	return p.bufPtr, nil
}

// DecideBatch asks the module about a batch. The error wraps ErrTrap,
// ErrDeadline or ErrBadAnswer; the caller then falls back to another
// policy for this batch. The decisions are checked only for form (one per
// partition, known kinds); their safety is the caller's to check.
func (p *Policy) DecideBatch(ctx context.Context, b *abi.Batch) ([]abi.Decision, error) {
	return p.decideWithin(ctx, b, p.mod.rt.cfg.Timeout)
}

// decideWithin is DecideBatch with the deadline timeout.
func (p *Policy) decideWithin(ctx context.Context, b *abi.Batch, timeout time.Duration) ([]abi.Decision, error) {
	ctx, cancel := context.WithTimeout(withGuestOutput(ctx, p.out), timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil, fmt.Errorf("%w: %s", ErrClosed, p.mod.name)
	}
	if p.inst == nil {
		if err := p.instantiate(ctx); err != nil {
			return nil, err
		}
	}
	ds, err := p.call(ctx, b)
	if err != nil && (errors.Is(err, ErrTrap) || errors.Is(err, ErrDeadline)) {
		// The instance may be half way through anything; start afresh.
		p.inst.Close(context.Background())
		p.inst = nil
		p.resets++
	}
	return ds, err
}

func (p *Policy) call(ctx context.Context, b *abi.Batch) ([]abi.Decision, error) {
	name := p.mod.name
	p.in = abi.AppendBatch(p.in[:0], b)
	ptr, err := p.write(ctx, p.in)
	if err != nil {
		if errors.Is(err, ErrBadAnswer) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, fmt.Errorf("%s: %w", name, classify(err))
	}
	res, err := p.decide.Call(ctx, uint64(ptr), uint64(len(p.in)))
	if err != nil {
		return nil, fmt.Errorf("%s: reeve_decide: %w", name, classify(err))
	}
	packed := int64(res[0])
	if packed < 0 {
		return nil, fmt.Errorf("%w: %s: reeve_decide reported failure (%d; its log says why)", ErrBadAnswer, name, packed)
	}
	outPtr, outLen := uint32(uint64(packed)>>32), uint32(packed)
	out, ok := p.inst.Memory().Read(outPtr, outLen)
	if !ok {
		return nil, fmt.Errorf("%w: %s: answer at %#x+%d is outside its memory", ErrBadAnswer, name, outPtr, outLen)
	}
	ds, err := abi.DecodeDecisions(out, len(b.Partitions))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadAnswer, name, err)
	}
	return ds, nil
}

// classify turns a wazero call error into ErrDeadline or ErrTrap.
func classify(err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled) {
		return fmt.Errorf("%w: %v", ErrDeadline, err)
	}
	if errors.As(err, &exit) && exit.ExitCode() == exitCodeStack {
		return fmt.Errorf("%w: its call stack passed election.policy_max_stack_kib", ErrTrap)
	}
	return fmt.Errorf("%w: %v", ErrTrap, callError(err))
}

// callError shortens wazero's error (which carries a stack trace) to its
// first line.
func callError(err error) error {
	msg := err.Error()
	for i, c := range msg {
		if c == '\n' {
			return errors.New(msg[:i])
		}
	}
	return err
}

// Close discards the instance; later Decide calls fail.
func (p *Policy) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil
	}
	p.closing = true
	var err error
	if p.inst != nil {
		err = p.inst.Close(ctx)
		p.inst = nil
	}
	p.mod.release(ctx)
	return err
}

// Digest is the module's digest.
func (p *Policy) Digest() string { return p.mod.digest }
