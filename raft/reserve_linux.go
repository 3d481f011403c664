package raft

import (
	"os"
	"syscall"
)

// allocate gives f n bytes of real blocks (not a sparse file, which would
// hold nothing back).
func allocate(f *os.File, n int64) error {
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err == nil {
		return nil
	}
	return writeZeros(f, n)
}

// freeBytes returns the bytes of the file system holding dir that an
// unprivileged process may still use.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
