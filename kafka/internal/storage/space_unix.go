//go:build unix

package storage

import "syscall"

// freeBytes returns the bytes of the file system holding dir that an
// unprivileged process may still use.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
