package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// Opening record batches. Most of the broker never does: produce stores
// batches as sent and fetch returns them as stored. Two places look inside:
// produce validation (every record's framing and offset delta, as Kafka's
// LogValidator) and ListOffsets by timestamp. Both decompress with a bound,
// the topic's max.message.bytes (maxMessageBytes): a batch a few kilobytes
// long can expand to gigabytes, and franz-go's DefaultDecompressor stops only
// at 2 GiB. Every codec stops as soon as its output would pass the bound:
// gzip, lz4 and zstd are read as streams through an io.LimitedReader, and
// snappy's output size is in its header and checked before it is decoded.

// errDecompressedTooLarge is a batch whose records decompress past the
// topic's max.message.bytes. Produce answers MESSAGE_TOO_LARGE; a lookup in
// a stored batch answers CORRUPT_MESSAGE.
var errDecompressedTooLarge = errors.New("records decompress past the limit")

// maxZstdWindow bounds the history a zstd stream may ask the decoder to
// keep. Producers compress with windows of 2 MiB (zstd level 3, Kafka's
// default) to 8 MiB (level 19) when they stream without a content size.
const maxZstdWindow = 8 << 20

// maxMessageBytes is the largest batch topic t accepts, and what the
// records of one of its batches may decompress to: its max.message.bytes,
// else kafka.max_message_bytes, never past kafka.max_request_bytes, which
// no request can pass anyway.
func (s *Server) maxMessageBytes(t *Topic) int {
	limit := int(s.cfg.MaxMessageBytes)
	if v, ok := t.Config["max.message.bytes"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			limit = n
		}
	}
	return min(limit, int(s.cfg.MaxRequestBytes))
}

// attrLogAppendTime is the timestamp-type bit of a batch's attributes:
// set, every record's timestamp is the batch's MaxTimestamp, stamped by
// the broker; clear, each record carries its producer's (CreateTime).
const attrLogAppendTime = 0x8

// castagnoli is the CRC-32C table of v2 record batches.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// now is the broker's clock: the partition logs' (Config.Log.Now, which
// tests set), so that stamped timestamps and retention agree.
func (s *Server) now() time.Time {
	if s.cfg.Log.Now != nil {
		return s.cfg.Log.Now()
	}
	return time.Now()
}

// stampLogAppendTime makes whole, checked v2 batches (concatenated) say
// LogAppendTime at now (Unix milliseconds), as a Kafka broker does for a
// topic with message.timestamp.type=LogAppendTime: the timestamp-type bit
// is set, the base and max timestamps become now, and the CRC, which
// covers them, is computed again. The records are not touched: readers
// take every record's timestamp from MaxTimestamp under LogAppendTime and
// ignore its delta.
//
// # Notes
//
// Kafka rewrites only MaxTimestamp when it stamps a batch in place. reeve
// sets the base timestamp too, so a reader that ignores the type bit
// still sees about the broker's time and not the producer's.
func stampLogAppendTime(b []byte, now int64) {
	be := binary.BigEndian
	for len(b) >= 61 {
		n := int(be.Uint32(b[8:])) + 12 // batchLength counts from byte 12
		be.PutUint16(b[21:], be.Uint16(b[21:])|attrLogAppendTime)
		be.PutUint64(b[27:], uint64(now)) // base timestamp
		be.PutUint64(b[35:], uint64(now)) // max timestamp
		be.PutUint32(b[17:], crc32.Checksum(b[21:n], castagnoli))
		b = b[n:]
	}
}

// codec is a batch's compression: attributes bits 0-2.
func codec(h storage.BatchHeader) int { return int(h.Attributes & 0x7) }

// withRecords calls fn with the records of one whole batch, decompressed if
// needed to at most limit bytes. The slice is valid only during fn.
func withRecords(h storage.BatchHeader, batch []byte, limit int, fn func(records []byte) error) error {
	records := batch[61:h.Length]
	c := codec(h)
	if c == 0 {
		return fn(records)
	}
	buf := outBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledOut {
			buf.Reset()
			outBufs.Put(buf)
		}
	}()
	buf.Reset()
	if err := decompress(buf, records, c, limit); err != nil {
		return err
	}
	return fn(buf.Bytes())
}

// outBufs recycles decompression output; buffers past maxPooledOut are
// left to the collector.
var outBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledOut = 4 << 20

type gzipReader struct {
	src bytes.Reader
	r   gzip.Reader
}

type lz4Reader struct {
	src bytes.Reader
	r   *lz4.Reader
}

type zstdReader struct {
	src bytes.Reader
	r   *zstd.Decoder
}

var (
	gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}
	lz4Readers  = sync.Pool{New: func() any { return &lz4Reader{r: lz4.NewReader(nil)} }}
	zstdReaders = sync.Pool{New: func() any {
		// One decoder, synchronous: no goroutine of its own to outlive a
		// Server. It is closed when the pool drops it.
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecodeBuffersBelow(0))
		if err != nil {
			panic(fmt.Sprintf("zstd decoder options: %v", err)) // constant options
		}
		zr := &zstdReader{r: d}
		runtime.AddCleanup(zr, func(d *zstd.Decoder) { d.Close() }, d)
		return zr
	}}
)

// decompress appends the decompressed src to out, failing with
// errDecompressedTooLarge as soon as it would pass limit bytes, and with
// storage.ErrCorrupt when src is not valid for its codec.
func decompress(out *bytes.Buffer, src []byte, c, limit int) error {
	var r io.Reader
	switch c {
	case 1:
		gz := gzipReaders.Get().(*gzipReader)
		defer gzipReaders.Put(gz)
		gz.src.Reset(src)
		if err := gz.r.Reset(&gz.src); err != nil {
			return fmt.Errorf("%w: gzip: %v", storage.ErrCorrupt, err)
		}
		r = &gz.r
	case 2:
		return decompressSnappy(out, src, limit)
	case 3:
		lz := lz4Readers.Get().(*lz4Reader)
		defer lz4Readers.Put(lz)
		lz.src.Reset(src)
		lz.r.Reset(&lz.src)
		r = lz.r
	case 4:
		zr := zstdReaders.Get().(*zstdReader)
		defer zstdReaders.Put(zr)
		zr.src.Reset(src)
		if err := zr.r.Reset(&zr.src); err != nil {
			return fmt.Errorf("%w: zstd: %v", storage.ErrCorrupt, err)
		}
		defer zr.r.Reset(nil) // drop the reference to src
		r = zr.r
	default:
		return fmt.Errorf("%w: unknown compression codec %d", storage.ErrCorrupt, c)
	}
	n, err := out.ReadFrom(&io.LimitedReader{R: r, N: int64(limit) + 1})
	switch {
	case n > int64(limit):
		return fmt.Errorf("%w: more than %d bytes", errDecompressedTooLarge, limit)
	case errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: zstd window past %d bytes", errDecompressedTooLarge, maxZstdWindow)
	case err != nil:
		return fmt.Errorf("%w: decompress: %v", storage.ErrCorrupt, err)
	}
	return nil
}

// xerialPrefix starts snappy-java's framing (Kafka's Java producer); other
// clients send one raw snappy block.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// decompressSnappy checks the decoded length every snappy block declares
// before decoding any of them.
func decompressSnappy(out *bytes.Buffer, src []byte, limit int) error {
	var blocks [][]byte
	if len(src) > 16 && bytes.HasPrefix(src, xerialPrefix) {
		for rest := src[16:]; len(rest) > 0; {
			if len(rest) < 4 {
				return fmt.Errorf("%w: snappy: truncated xerial block", storage.ErrCorrupt)
			}
			size := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(size) > uint64(len(rest)) {
				return fmt.Errorf("%w: snappy: xerial block past the batch", storage.ErrCorrupt)
			}
			blocks, rest = append(blocks, rest[:size]), rest[size:]
		}
	} else {
		blocks = [][]byte{src}
	}
	total := 0
	for _, b := range blocks {
		n, err := s2.DecodedLen(b)
		if err != nil {
			return fmt.Errorf("%w: snappy: %v", storage.ErrCorrupt, err)
		}
		if total += n; total > limit {
			return fmt.Errorf("%w: more than %d bytes", errDecompressedTooLarge, limit)
		}
	}
	out.Grow(total)
	for _, b := range blocks {
		n, _ := s2.DecodedLen(b)
		d, err := s2.Decode(out.AvailableBuffer()[:n], b)
		if err != nil {
			return fmt.Errorf("%w: snappy: %v", storage.ErrCorrupt, err)
		}
		out.Write(d)
	}
	return nil
}

// eachRecord calls fn with the offset and timestamp of every record of one
// batch, decompressing it to at most limit bytes, until fn returns false.
// ListOffsets by timestamp uses it.
func eachRecord(batch []byte, limit int, fn func(offset, timestamp int64) bool) error {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if h.Length < 61 || int(h.Length) > len(batch) {
		return fmt.Errorf("%w: short batch", storage.ErrCorrupt)
	}
	err = withRecords(h, batch, limit, func(records []byte) error {
		logAppendTime := h.Attributes&attrLogAppendTime != 0
		for i := int32(0); i < h.RecordCount && len(records) > 0; i++ {
			length, n := binary.Varint(records)
			if n <= 0 || length < 0 || int64(len(records)-n) < length {
				return fmt.Errorf("%w: bad record length in batch at offset %d", storage.ErrCorrupt, h.BaseOffset)
			}
			var r kmsg.Record
			if err := r.UnsafeReadFrom(records[:n+int(length)]); err != nil { // only numbers are kept
				return fmt.Errorf("%w: record in batch at offset %d: %v", storage.ErrCorrupt, h.BaseOffset, err)
			}
			records = records[n+int(length):]
			ts := h.BaseTimestamp + r.TimestampDelta64
			if logAppendTime {
				ts = h.MaxTimestamp
			}
			if !fn(h.BaseOffset+int64(r.OffsetDelta), ts) {
				return nil
			}
		}
		return nil
	})
	if errors.Is(err, errDecompressedTooLarge) {
		return fmt.Errorf("%w: batch at offset %d: %v", storage.ErrCorrupt, h.BaseOffset, err)
	}
	if err != nil && !errors.Is(err, storage.ErrCorrupt) {
		return fmt.Errorf("%w: batch at offset %d: %v", storage.ErrCorrupt, h.BaseOffset, err)
	}
	return err
}
