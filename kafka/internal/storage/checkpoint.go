package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// Checkpoint files of a partition directory. All are small text files
// replaced atomically (write a temporary file, fsync it, rename it over the
// old one, fsync the directory), so after a crash each holds either its old
// or its new contents (fsutil.WriteFileAtomic).
const (
	epochFile         = "leader-epoch-checkpoint"
	logStartFile      = "log-start-offset"
	recoveryPointFile = "recovery-point"

	checkpointVersion = "0"
)

// readCheckpoint returns the lines of dir/name after its version line.
// A missing file is (nil, false, nil); an unreadable version is ErrCorrupt.
func readCheckpoint(dir, name string) (lines []string, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", name, err)
	}
	s := string(b)
	if !strings.HasSuffix(s, "\n") {
		return nil, false, fmt.Errorf("read %s: %w: truncated", name, ErrCorrupt)
	}
	lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != checkpointVersion {
		return nil, false, fmt.Errorf("read %s: %w: version %q, want %q", name, ErrCorrupt, lines[0], checkpointVersion)
	}
	return lines[1:], true, nil
}

// parseInts parses a line of space-separated integers, exactly n of them.
func parseInts(line string, n int) ([]int64, bool) {
	fields := strings.Fields(line)
	if len(fields) != n {
		return nil, false
	}
	out := make([]int64, n)
	for i, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// readLogStart reads the log-start-offset checkpoint.
func readLogStart(dir string) (int64, bool, error) {
	lines, ok, err := readCheckpoint(dir, logStartFile)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(lines) != 1 {
		return 0, false, fmt.Errorf("read %s: %w: %d lines", logStartFile, ErrCorrupt, len(lines))
	}
	v, good := parseInts(lines[0], 1)
	if !good || v[0] < 0 {
		return 0, false, fmt.Errorf("read %s: %w: %q", logStartFile, ErrCorrupt, lines[0])
	}
	return v[0], true, nil
}

func writeLogStart(dir string, off int64) error {
	return fsutil.WriteFileAtomic(dir, logStartFile, fmt.Appendf(nil, "%s\n%d\n", checkpointVersion, off), 0o644)
}

// recoveryPoint says how much of the log is known to be on stable storage,
// with its indexes: every segment based below base entirely, and the segment
// based at base up to byte pos, where offset next begins. Open trusts that
// part after a cheap check and scans everything after it batch by batch.
//
// It moves forward when a rolled segment has been fsynced (base = the new
// segment, pos = 0) and on Close (pos = the end of the active segment); it
// moves back, before anything else happens, when TruncateTo cuts below it.
type recoveryPoint struct {
	base, pos, next int64
}

func readRecoveryPoint(dir string) (recoveryPoint, bool, error) {
	lines, ok, err := readCheckpoint(dir, recoveryPointFile)
	if err != nil || !ok {
		return recoveryPoint{}, false, err
	}
	if len(lines) != 1 {
		return recoveryPoint{}, false, fmt.Errorf("read %s: %w: %d lines", recoveryPointFile, ErrCorrupt, len(lines))
	}
	v, good := parseInts(lines[0], 3)
	if !good || v[0] < 0 || v[1] < 0 || v[2] < v[0] {
		return recoveryPoint{}, false, fmt.Errorf("read %s: %w: %q", recoveryPointFile, ErrCorrupt, lines[0])
	}
	return recoveryPoint{base: v[0], pos: v[1], next: v[2]}, true, nil
}

func writeRecoveryPoint(dir string, rp recoveryPoint) error {
	return fsutil.WriteFileAtomic(dir, recoveryPointFile,
		fmt.Appendf(nil, "%s\n%d %d %d\n", checkpointVersion, rp.base, rp.pos, rp.next), 0o644)
}
