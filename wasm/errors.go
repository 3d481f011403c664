package wasm

import "errors"

// Errors a Policy's Decide wraps, so callers can count and log them by kind.
var (
	// ErrRefused: the module is not a valid policy (bad imports or exports,
	// wrong ABI version, init refused its settings, self-test failed).
	ErrRefused = errors.New("policy module refused")
	// ErrTrap: the module trapped (a panic, unreachable, out of memory).
	ErrTrap = errors.New("policy module trapped")
	// ErrDeadline: the call did not return within the deadline.
	ErrDeadline = errors.New("policy module exceeded its deadline")
	// ErrBadAnswer: the module answered something that does not decode, or
	// reported failure.
	ErrBadAnswer = errors.New("policy module gave a bad answer")
	// ErrClosed: the Policy was closed (replaced by a newer module) before
	// the call began; the caller should ask the newer one.
	ErrClosed = errors.New("policy instance closed")
)
