//go:build !unix

package storage

import "os"

// lockDir does nothing where flock is not available; reeve ships for Linux.
func lockDir(dir string) (*os.File, error) { return nil, nil }
