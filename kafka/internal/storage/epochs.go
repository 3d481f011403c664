package storage

import (
	"fmt"
	"slices"
	"strings"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// epochEntry says that leader epoch epoch wrote its first batch at start.
type epochEntry struct {
	epoch int32
	start int64
}

// epochCache is the leader epoch history of a log, like Kafka's
// LeaderEpochFileCache: epochs strictly increase and so do start offsets.
// Its entries are guarded by Log.mu; saving it is serialized by Log.wmu.
type epochCache struct {
	entries []epochEntry
}

// latest returns the newest epoch, -1 when none.
func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

// assign records that epoch starts at start, if epoch is newer than every
// known one. Entries at or after start are dropped first: an epoch that
// wrote nothing before the next took over has no offsets of its own. It
// reports whether the cache changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if epoch < 0 || epoch <= c.latest() {
		return false
	}
	for len(c.entries) > 0 && c.entries[len(c.entries)-1].start >= start {
		c.entries = c.entries[:len(c.entries)-1]
	}
	if epoch <= c.latest() {
		return false
	}
	c.entries = append(c.entries, epochEntry{epoch: epoch, start: start})
	return true
}

// truncateFromEnd drops epochs that start at or after end (the new log end
// offset).
func (c *epochCache) truncateFromEnd(end int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].start >= end {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart drops epochs wholly below start (the new log start
// offset) and moves the start of the epoch that covers start up to it.
func (c *epochCache) truncateFromStart(start int64) bool {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].start <= start {
		i++
	}
	changed := i > 0
	c.entries = c.entries[i:]
	if len(c.entries) > 0 && c.entries[0].start < start {
		c.entries[0].start = start
		changed = true
	}
	return changed
}

// endOffsetFor returns the largest known epoch <= epoch and the start offset
// of the next higher epoch, or leo when it is the latest; (-1, -1) when no
// known epoch is <= epoch.
func (c *epochCache) endOffsetFor(epoch int32, leo int64) (int32, int64) {
	i, found := slices.BinarySearchFunc(c.entries, epoch, func(e epochEntry, t int32) int {
		return int(e.epoch) - int(t)
	})
	if !found {
		i-- // the entry before the insertion point is the largest epoch below
	}
	if i < 0 {
		return -1, -1
	}
	if i == len(c.entries)-1 {
		return c.entries[i].epoch, leo
	}
	return c.entries[i].epoch, c.entries[i+1].start
}

// encode renders the cache in Kafka's checkpoint format: a version line, a
// count line, then "epoch startOffset" per line.
func (c *epochCache) encode() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%d\n", checkpointVersion, len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	return []byte(b.String())
}

func (c *epochCache) save(dir string) error {
	return fsutil.WriteFileAtomic(dir, epochFile, c.encode(), 0o644)
}

// readEpochs loads the leader-epoch-checkpoint; a missing file is an empty
// cache.
func readEpochs(dir string) (epochCache, error) {
	lines, ok, err := readCheckpoint(dir, epochFile)
	if err != nil || !ok {
		return epochCache{}, err
	}
	bad := func(why string) (epochCache, error) {
		return epochCache{}, fmt.Errorf("read %s: %w: %s", epochFile, ErrCorrupt, why)
	}
	if len(lines) == 0 {
		return bad("no count line")
	}
	n, good := parseInts(lines[0], 1)
	if !good || n[0] != int64(len(lines)-1) {
		return bad(fmt.Sprintf("count %q does not match %d entries", lines[0], len(lines)-1))
	}
	var c epochCache
	for _, line := range lines[1:] {
		v, good := parseInts(line, 2)
		if !good || v[0] < 0 || v[0] > int64(^uint32(0)>>1) || v[1] < 0 {
			return bad(fmt.Sprintf("entry %q", line))
		}
		e := epochEntry{epoch: int32(v[0]), start: v[1]}
		if k := len(c.entries); k > 0 && (e.epoch <= c.entries[k-1].epoch || e.start < c.entries[k-1].start) {
			return bad(fmt.Sprintf("entry %q out of order", line))
		}
		c.entries = append(c.entries, e)
	}
	return c, nil
}
