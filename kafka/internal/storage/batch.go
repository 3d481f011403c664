package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Byte offsets of the fields of a v2 record batch header (big-endian).
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// batchHeaderSize is the size of the fixed header; records follow it.
	batchHeaderSize = 61
	// batchPrefixSize is baseOffset and batchLength, the part not counted by
	// batchLength.
	batchPrefixSize = 12
	// minBatchLength is the smallest legal batchLength: a header and no records.
	minBatchLength = batchHeaderSize - batchPrefixSize
)

// castagnoli is the CRC-32C table that v2 record batches are checked with.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the parsed fixed header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // total bytes including the 12-byte prefix
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// LastOffset returns the offset of the last record the batch claims.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// ParseBatchHeader parses the fixed header at the start of b. It needs at
// least 61 bytes and checks nothing else: see CheckBatch.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, a batch header needs %d", ErrCorrupt, len(b), batchHeaderSize)
	}
	return parseHeader(b), nil
}

// parseHeader is ParseBatchHeader without the length check; b must hold at
// least batchHeaderSize bytes.
func parseHeader(b []byte) BatchHeader {
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		Length:               int32(be.Uint32(b[offBatchLength:])) + batchPrefixSize,
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}
}

// CheckBatch validates one whole v2 batch as a Kafka broker does on produce:
// len(b) is exactly 12+batchLength, batchLength is at least 49, magic is 2,
// the CRC-32C over bytes 21..end matches, recordCount >= 0 and
// lastOffsetDelta >= 0. It returns the parsed header.
//
// # Notes
//
// lastOffsetDelta is not compared with recordCount: Apache Kafka does not
// require lastOffsetDelta == recordCount-1 (compacted batches break it), and
// the log assigns lastOffsetDelta+1 offsets to a batch whatever it holds.
// Errors wrap ErrCorrupt, or are ErrOldMagic for magic 0 and 1.
func CheckBatch(b []byte) (BatchHeader, error) {
	// Magic sits at byte 16 in every message format, so an old client is
	// told what is wrong before its bytes are judged as v2.
	if len(b) > offMagic {
		if m := int8(b[offMagic]); m == 0 || m == 1 {
			return BatchHeader{}, ErrOldMagic
		}
	}
	if len(b) < batchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes, a batch needs at least %d", ErrCorrupt, len(b), batchHeaderSize)
	}
	h := parseHeader(b)
	if h.Length < batchHeaderSize {
		return h, fmt.Errorf("%w: batchLength %d is below the minimum %d", ErrCorrupt, h.Length-batchPrefixSize, minBatchLength)
	}
	if int64(h.Length) != int64(len(b)) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, have %d", ErrCorrupt, h.Length, len(b))
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, want 2", ErrCorrupt, h.Magic)
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: crc %#08x, header says %#08x", ErrCorrupt, got, h.CRC)
	}
	if h.RecordCount < 0 {
		return h, fmt.Errorf("%w: record count %d", ErrCorrupt, h.RecordCount)
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: last offset delta %d", ErrCorrupt, h.LastOffsetDelta)
	}
	return h, nil
}

// setBaseOffset and setLeaderEpoch write the two header fields the broker
// owns. Neither is covered by the CRC.
func setBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

func setLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// frame describes one batch inside a concatenation handed to Append.
type frame struct {
	pos int // start within the concatenation
	h   BatchHeader
}

// splitBatches frames a concatenation of whole v2 batches. It checks the
// framing (every batch has a full header, a sane length and magic 2, and the
// last one ends exactly at len(b)) but not CRCs.
func splitBatches(b []byte, dst []frame) ([]frame, error) {
	if len(b) == 0 {
		return dst, fmt.Errorf("%w: no batches", ErrCorrupt)
	}
	for pos := 0; pos < len(b); {
		rest := b[pos:]
		if len(rest) > offMagic {
			if m := int8(rest[offMagic]); m == 0 || m == 1 {
				return dst, ErrOldMagic
			}
		}
		if len(rest) < batchHeaderSize {
			return dst, fmt.Errorf("%w: %d trailing bytes at %d are not a batch", ErrCorrupt, len(rest), pos)
		}
		h := parseHeader(rest)
		if h.Length < batchHeaderSize || int64(h.Length) > int64(len(rest)) {
			return dst, fmt.Errorf("%w: batch at %d has length %d, %d bytes left", ErrCorrupt, pos, h.Length, len(rest))
		}
		if h.Magic != 2 {
			return dst, fmt.Errorf("%w: batch at %d has magic %d, want 2", ErrCorrupt, pos, h.Magic)
		}
		if h.LastOffsetDelta < 0 {
			return dst, fmt.Errorf("%w: batch at %d has last offset delta %d", ErrCorrupt, pos, h.LastOffsetDelta)
		}
		dst = append(dst, frame{pos: pos, h: h})
		pos += int(h.Length)
	}
	return dst, nil
}
