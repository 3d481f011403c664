//go:build linux && (amd64 || arm64)

package appliance_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// canEvict reports whether evictCache works here.
const canEvict = true

// evictCache drops the page-cache copies of every file under dir
// (fsync, then posix_fadvise DONTNEED), so the next read of them comes
// from the disk, as after a reboot, without touching other files' cache.
func evictCache(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Sync(); err != nil {
			return err
		}
		const fadvDontNeed = 4
		if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, fadvDontNeed, 0, 0); errno != 0 {
			return &os.PathError{Op: "fadvise", Path: path, Err: errno}
		}
		return nil
	})
}
