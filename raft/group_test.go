package raft

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGroupFor_isStable pins the partition-to-group mapping. Every partition's
// state lives in the group GroupFor names, so a different mapping would look
// for existing partitions in groups that do not hold them. The wanted values
// were computed by GroupFor as it is today (FNV-1a 32 of the id and the
// big-endian partition, modulo groups, plus 2); never edit them to make this
// test pass.
func TestGroupFor_isStable(t *testing.T) {
	var (
		zero TopicID
		seq  = TopicID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		ff   = TopicID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		asc  = TopicID([]byte("0123456789abcdef"))
	)
	tests := []struct {
		name      string
		id        TopicID
		partition int32
		groups    int
		want      uint64
	}{
		{"zero id p0 k1", zero, 0, 1, 2},
		{"zero id p0 k3", zero, 0, 3, 4},
		{"zero id p0 k4", zero, 0, 4, 3},
		{"zero id p1 k4", zero, 1, 4, 4},
		{"zero id p2 k4", zero, 2, 4, 5},
		{"zero id p3 k4", zero, 3, 4, 2},
		{"zero id p256 k4", zero, 256, 4, 2},
		{"zero id p0 k7", zero, 0, 7, 5},
		{"zero id p0 k64", zero, 0, 64, 23},
		{"zero id max partition k64", zero, math.MaxInt32, 64, 51},
		{"bytes 0..15 p0 k4", seq, 0, 4, 3},
		{"bytes 0..15 p1 k64", seq, 1, 64, 20},
		{"bytes 0..15 p255 k7", seq, 255, 7, 4},
		{"bytes 0..15 p256 k3", seq, 256, 3, 4},
		{"bytes 0..15 p65537 k64", seq, 65537, 64, 47},
		{"bytes 0..15 max partition k7", seq, math.MaxInt32, 7, 7},
		{"all ones p0 k64", ff, 0, 64, 7},
		{"all ones p1 k3", ff, 1, 3, 3},
		{"all ones p255 k4", ff, 255, 4, 2},
		{"all ones p65537 k7", ff, 65537, 7, 2},
		{"all ones max partition k64", ff, math.MaxInt32, 64, 35},
		{"ascii p0 k1", asc, 0, 1, 2},
		{"ascii p0 k7", asc, 0, 7, 7},
		{"ascii p1 k4", asc, 1, 4, 4},
		{"ascii p3 k64", asc, 3, 64, 22},
		{"ascii p256 k3", asc, 256, 3, 4},
		{"ascii p65537 k4", asc, 65537, 4, 3},
		{"ascii max partition k64", asc, math.MaxInt32, 64, 43},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := GroupFor(tt.id, tt.partition, tt.groups); got != tt.want {
				t.Errorf("GroupFor(%s, %d, %d) = %d, want %d", tt.id, tt.partition, tt.groups, got, tt.want)
			}
		})
	}

	// The table is readable; the sweep catches a change anywhere else.
	t.Run("sweep", func(t *testing.T) {
		const want = "e00cd0e58d57f5adfcbf5cc0d4bbf18a818cdd7efc25ebc9efb0d32365aea4ab"
		if got := groupForSweep(); got != want {
			t.Errorf("sha256 of GroupFor over the sweep = %s, want %s", got, want)
		}
	})
}

// groupForSweep hashes GroupFor's answers over 256 ids, 64 partitions each
// (and a few large ones) and ten group counts.
func groupForSweep() string {
	h := sha256.New()
	var b [8]byte
	for i := range 256 {
		id := TopicID{0: byte(i), 5: byte(i * 7), 10: byte(i * 31), 15: byte(i * i)}
		for _, k := range []int{1, 2, 3, 4, 5, 8, 16, 64, 100, 1000} {
			for p := range int32(64) {
				binary.BigEndian.PutUint64(b[:], GroupFor(id, p, k))
				h.Write(b[:])
			}
			for _, p := range []int32{255, 256, 65535, 65536, 1 << 24, math.MaxInt32} {
				binary.BigEndian.PutUint64(b[:], GroupFor(id, p, k))
				h.Write(b[:])
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// randomTopicID returns an id from r; the tests seed r, so they see the same
// ids on every run.
func randomTopicID(r *rand.Rand) TopicID {
	var id TopicID
	binary.BigEndian.PutUint64(id[:8], r.Uint64())
	binary.BigEndian.PutUint64(id[8:], r.Uint64())
	return id
}

func TestGroupFor_staysInRange(t *testing.T) {
	tests := []struct {
		name   string
		groups int
	}{
		{"one group", 1},
		{"four groups", 4},
		{"sixty-four groups", 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tt.groups)))
			seen := make(map[uint64]bool)
			for range 20000 {
				id, p := randomTopicID(r), r.Int32N(1<<20)
				g := GroupFor(id, p, tt.groups)
				if g < ClusterGroup+1 || g > ClusterGroup+uint64(tt.groups) {
					t.Fatalf("GroupFor(%s, %d, %d) = %d, want 2..%d", id, p, tt.groups, g, tt.groups+1)
				}
				seen[g] = true
			}
			if len(seen) != tt.groups {
				t.Errorf("GroupFor over 20000 partitions with %d groups used %d groups, want %d", tt.groups, len(seen), tt.groups)
			}
		})
	}
}

func TestGroupFor_spreadsEvenly(t *testing.T) {
	const (
		groups = 4
		n      = 10000
		mean   = n / groups
	)
	oneTopic := randomTopicID(rand.New(rand.NewPCG(3, 3)))
	tests := []struct {
		name string
		next func(r *rand.Rand) (TopicID, int32)
	}{
		{"random topics and partitions", func(r *rand.Rand) (TopicID, int32) {
			return randomTopicID(r), r.Int32N(1000)
		}},
		{"random partitions of one topic", func(r *rand.Rand) (TopicID, int32) {
			return oneTopic, r.Int32N(math.MaxInt32)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(2, 2))
			counts := make(map[uint64]int)
			for range n {
				id, p := tt.next(r)
				counts[GroupFor(id, p, groups)]++
			}
			for g := ClusterGroup + 1; g <= ClusterGroup+groups; g++ {
				if c := counts[g]; c < mean*85/100 || c > mean*115/100 {
					t.Errorf("GroupFor over %d partitions: group %d got %d, want %d ± 15%%", n, g, c, mean)
				}
			}
		})
	}
}
