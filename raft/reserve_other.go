//go:build !linux

package raft

import (
	"errors"
	"os"
)

func allocate(f *os.File, n int64) error { return writeZeros(f, n) }

// freeBytes is not known off Linux, reeve's platform: no reserve is kept.
func freeBytes(dir string) (int64, error) { return 0, errors.New("free space unknown") }
