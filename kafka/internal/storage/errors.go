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

	// ErrNoSpace reports an append refused, or undone, because the file
	// system is full or below Options.Space's minimum. Nothing of the
	// append is left on disk and the log stays writable: the same append
	// succeeds once space returns. Produce handlers map it to
	// KAFKA_STORAGE_ERROR.
	ErrNoSpace = errors.New("no space left for the log")

	// ErrFailed reports a write to a log that an earlier I/O error (an
	// fsync's, above all) failed: it refuses writes until it is reopened.
	// It wraps that error too. Produce handlers map it to
	// KAFKA_STORAGE_ERROR.
	ErrFailed = errors.New("log failed")

	// ErrClosed is returned by every method of a Log after Close.
	ErrClosed = errors.New("log closed")
)
