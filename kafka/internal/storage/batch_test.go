package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// recrc recomputes the CRC of a batch after a test edited covered bytes.
func recrc(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func TestCheckBatch(t *testing.T) {
	good := makeBatch(t, batchSpec{records: 3})
	edit := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	tests := []struct {
		name string
		b    []byte
		want error // nil, ErrCorrupt or ErrOldMagic
	}{
		{"valid", good, nil},
		{"owned fields changed, crc still valid", edit(func(b []byte) []byte {
			setBaseOffset(b, 1234)
			setLeaderEpoch(b, 7)
			return b
		}), nil},
		{"last offset delta above record count", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 10)
			return recrc(b)
		}), nil},
		{"empty", nil, ErrCorrupt},
		{"shorter than a header", good[:60], ErrCorrupt},
		{"magic 0", edit(func(b []byte) []byte { b[offMagic] = 0; return b }), ErrOldMagic},
		{"magic 1", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), ErrOldMagic},
		{"magic 3", edit(func(b []byte) []byte { b[offMagic] = 3; return b }), ErrCorrupt},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrCorrupt},
		{"missing byte", good[:len(good)-1], ErrCorrupt},
		{"batch length below 49", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offBatchLength:], 48)
			return b[:60]
		}), ErrCorrupt},
		{"flipped record byte", edit(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), ErrCorrupt},
		{"flipped crc", edit(func(b []byte) []byte { b[offCRC] ^= 1; return b }), ErrCorrupt},
		{"negative record count", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0xffffffff)
			return recrc(b)
		}), ErrCorrupt},
		{"negative last offset delta", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			return recrc(b)
		}), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckBatch(tt.b)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("CheckBatch() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseBatchHeader(t *testing.T) {
	b := makeBatch(t, batchSpec{records: 4, ts: 5000})
	setBaseOffset(b, 100)
	setLeaderEpoch(b, 3)
	h, err := ParseBatchHeader(b)
	if err != nil {
		t.Fatalf("ParseBatchHeader() = %v", err)
	}
	want := BatchHeader{BaseOffset: 100, Length: int32(len(b)), PartitionLeaderEpoch: 3, Magic: 2, CRC: h.CRC,
		LastOffsetDelta: 3, BaseTimestamp: 5000, MaxTimestamp: 5003, ProducerID: -1, ProducerEpoch: -1,
		BaseSequence: -1, RecordCount: 4}
	if h != want {
		t.Errorf("ParseBatchHeader() = %+v, want %+v", h, want)
	}
	if got := h.LastOffset(); got != 103 {
		t.Errorf("LastOffset() = %d, want 103", got)
	}
	if _, err := ParseBatchHeader(b[:60]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ParseBatchHeader(60 bytes) = %v, want ErrCorrupt", err)
	}
}

// TestAppend_storedBatchDecodesWithKmsg pins that what the log stores is a
// batch a Kafka client library reads: same records, the broker's offset and
// epoch, a CRC that still holds.
func TestAppend_storedBatchDecodesWithKmsg(t *testing.T) {
	l := openLog(t, Options{})
	in := makeBatch(t, batchSpec{records: 5, valueSize: 100})
	orig := append([]byte(nil), in...)
	if _, _, err := l.Append(makeBatch(t, batchSpec{records: 2}), 4); err != nil {
		t.Fatal(err)
	}
	base, _, err := l.Append(in, 4)
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Read(base, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(out); err != nil {
		t.Fatalf("kmsg RecordBatch.ReadFrom() = %v", err)
	}
	if rb.FirstOffset != 2 || rb.PartitionLeaderEpoch != 4 || rb.NumRecords != 5 {
		t.Errorf("stored batch: offset %d epoch %d records %d, want 2, 4, 5", rb.FirstOffset, rb.PartitionLeaderEpoch, rb.NumRecords)
	}
	if got := int32(crc32.Checksum(out[offAttributes:], castagnoli)); got != rb.CRC {
		t.Errorf("stored batch CRC %#x, computed %#x", rb.CRC, got)
	}
	if string(out[offLeaderEpoch+4:]) != string(orig[offLeaderEpoch+4:]) || string(out[offBatchLength:offLeaderEpoch]) != string(orig[offBatchLength:offLeaderEpoch]) {
		t.Errorf("stored batch differs from the produced one outside baseOffset and partitionLeaderEpoch")
	}
}
