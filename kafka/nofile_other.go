//go:build !unix

package kafka

// openFileLimit is unknown off Unix.
func openFileLimit() (uint64, bool) { return 0, false }
