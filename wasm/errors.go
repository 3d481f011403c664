package wasm

import "github.com/reeve-edge/reeve/policy"

// Errors a Policy's Decide wraps, so callers can count and log them by
// kind; each names its policy.Cause.
var (
	// ErrRefused: the module is not a valid policy (bad imports or exports,
	// wrong ABI version, over a sandbox bound, init refused its settings,
	// self-test failed).
	ErrRefused error = &kindError{"policy module refused", policy.CauseNotLoaded}
	// ErrTrap: the module trapped (a panic, unreachable, out of memory,
	// out of stack).
	ErrTrap error = &kindError{"policy module trapped", policy.CauseTrap}
	// ErrDeadline: the call did not return within the deadline.
	ErrDeadline error = &kindError{"policy module exceeded its deadline", policy.CauseDeadline}
	// ErrBadAnswer: the module answered something that does not decode, or
	// reported failure.
	ErrBadAnswer error = &kindError{"policy module gave a bad answer", policy.CauseBadAnswer}
	// ErrClosed: the Policy was closed (replaced by a newer module) before
	// the call began; the caller should ask the newer one.
	ErrClosed error = &kindError{"policy instance closed", policy.CauseClosed}
)

// kindError is one of the errors above; they are compared by identity.
type kindError struct {
	msg   string
	cause policy.Cause
}

func (e *kindError) Error() string { return e.msg }

// FallbackCause implements policy.Causer.
func (e *kindError) FallbackCause() policy.Cause { return e.cause }
