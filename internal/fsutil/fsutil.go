// Package fsutil holds the few file-system steps that make a write durable,
// shared by the packages that keep state on disk (raft's identity file,
// the partition logs' checkpoints). It uses the standard library only.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// TmpSuffix is the suffix of the temporary file WriteFileAtomic writes
// before it renames it; a crash can leave one behind, which the next write
// replaces.
const TmpSuffix = ".tmp"

// WriteFileAtomic replaces dir/name with data: it writes a temporary file,
// fsyncs it, renames it over the old one and fsyncs the directory, so after
// a crash the file holds either its old or its new contents, and a
// successful return means the new contents are on disk.
func WriteFileAtomic(dir, name string, data []byte, perm os.FileMode) error {
	return WriteAtomic(dir, name, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic with the contents written by fill, into
// the temporary file, for a file too large to hold in memory or made by
// allocating rather than writing.
func WriteAtomic(dir, name string, perm os.FileMode, fill func(*os.File) error) error {
	path := filepath.Join(dir, name)
	tmp := path + TmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the directory's entries (created, renamed, removed files)
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
