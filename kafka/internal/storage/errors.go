package storage

import "errors"

var (
	// ErrCorrupt reports a record batch, index or checkpoint whose bytes do not
	// hold together (bad length, bad CRC, wrong offset). It is always wrapped
	// with detail.
	ErrCorrupt = errors.New("corrupt record batch")

	// ErrOldMagic reports a message set in the pre-0.11 formats (magic 0 or 1),
	// which reeve does not store. Produce handlers map it to
	// UNSUPPORTED_FOR_MESSAGE_FORMAT.
	ErrOldMagic = errors.New("record batch magic 0 or 1 is not supported; use a client that writes magic 2 (Kafka 0.11 or later)")

	// ErrOffsetOutOfRange reports an offset outside [LogStartOffset,
	// LogEndOffset], or one that does not fall where the operation needs it
	// (TruncateTo between batch boundaries).
	ErrOffsetOutOfRange = errors.New("offset out of range")

	// ErrClosed is returned by every method of a Log after Close.
	ErrClosed = errors.New("log closed")
)
