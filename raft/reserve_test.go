package raft

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestReserve_adjust_releasedWhenFullRecreatedWithRoom pins the reserve
// file's rule: created with 3 × ReserveBytes free, kept above ReserveBytes
// free, deleted below it, and not re-created until 3 × ReserveBytes are
// free again.
func TestReserve_adjust_releasedWhenFullRecreatedWithRoom(t *testing.T) {
	dir := t.TempDir()
	var free int64
	r := newReserve(dir, slog.New(slog.DiscardHandler))
	r.free = func(string) (int64, error) { return free, nil }
	path := filepath.Join(dir, reserveFile)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			return -1
		}
		return fi.Size()
	}
	steps := []struct {
		name string
		free int64
		want int64 // file size after adjust; -1: no file
	}{
		{"too little room to create", 3*ReserveBytes - 1, -1},
		{"room to create", 3 * ReserveBytes, ReserveBytes},
		{"kept at the threshold", ReserveBytes, ReserveBytes},
		{"released below it", ReserveBytes - 1, -1},
		{"not back with room for the kafka minimum only", 2 * ReserveBytes, -1},
		{"back with room for both", 3 * ReserveBytes, ReserveBytes},
	}
	for _, s := range steps {
		free = s.free
		r.adjust()
		if got := size(); got != s.want {
			t.Fatalf("%s: adjust() with %d free left a reserve of %d bytes, want %d", s.name, s.free, got, s.want)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary reserve file left behind: %v", err)
	}
}
