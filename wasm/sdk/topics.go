package sdk

import "encoding/binary"

// maxTopics bounds the engine's interned topic names. A cluster with more
// topics than this still works; its batches just allocate their names.
const maxTopics = 4096

// topicTable interns topic names, so that a steady stream of batches
// allocates no names. It is a hash table of its own rather than a Go map
// because a map lookup in a module costs more than deciding a partition:
// Go hashes and compares strings a byte at a time there (see
// decodeBatch). Here a name of up to 16 bytes is hashed and compared as
// two words, and decodeBatch probes the slot a name hashes to inline, so
// a short name found there costs no call and no loop at all.
type topicTable struct {
	slots []topicName // open addressing; len a power of two; a zero hash marks an empty slot
	count int
}

// topicName is an interned name with the words that identify it.
type topicName struct {
	name  string
	first uint64 // the first 8 bytes of the name, the rest of the word zero
	last  uint64 // the last 8 bytes, or 0 for a name of up to 8
	hash  uint64 // never 0
}

// hashWords hashes a name from its length and its first and last words.
// Names past 16 bytes mix in the words between with hashMiddle.
func hashWords(n int, first, last uint64) uint64 {
	h := (uint64(n)*0x9e3779b97f4a7c15 ^ first) * 0xbf58476d1ce4e5b9
	h = (h ^ h>>31 ^ last) * 0x94d049bb133111eb
	return h ^ h>>29 | 1
}

// hashMiddle mixes the bytes between a long name's first and last words
// into h.
func hashMiddle(h uint64, middle []byte) uint64 {
	for len(middle) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(middle)) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
		middle = middle[8:]
	}
	// The last word already covers the bytes left.
	return h | 1
}

// find returns the interned copy of name, whose words and hash are first,
// last and h (as decodeBatch computes them), adding it if it is new.
func (t *topicTable) find(name []byte, first, last, h uint64) string {
	if 2*(t.count+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			*s = topicName{name: string(name), first: first, last: last, hash: h}
			t.count++
			return s.name
		}
		if s.hash == h && len(s.name) == len(name) && s.first == first && s.last == last &&
			(len(name) <= 16 || equalBytes(name[8:len(name)-8], bytesOf(s.name[8:len(name)-8]))) {
			return s.name
		}
	}
}

// grow doubles the table, or empties it once it holds maxTopics names.
func (t *topicTable) grow() {
	if t.count >= maxTopics || len(t.slots) == 0 {
		t.slots, t.count = make([]topicName, 64), 0
		return
	}
	old := t.slots
	t.slots = make([]topicName, 2*len(old))
	mask := len(t.slots) - 1
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}
