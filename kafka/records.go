package kafka

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// decompressor is franz-go's: it knows every Kafka codec (gzip, snappy in
// both framings, lz4, zstd) and bounds what a batch may expand to.
var decompressor = kgo.DefaultDecompressor()

// eachRecord calls fn with the offset and timestamp of every record of one
// batch, decompressing it if needed, until fn returns false. Only the
// broker's lookups (ListOffsets by timestamp) need this; produce and fetch
// never open a batch.
func eachRecord(batch []byte, fn func(offset, timestamp int64) bool) error {
	h, err := storage.ParseBatchHeader(batch)
	if err != nil {
		return err
	}
	if int(h.Length) > len(batch) {
		return fmt.Errorf("%w: short batch", storage.ErrCorrupt)
	}
	records := batch[61:h.Length]
	if codec := kgo.CompressionCodecType(h.Attributes & 0x7); codec != 0 {
		if records, err = decompressor.Decompress(records, codec); err != nil {
			return fmt.Errorf("%w: decompress batch at offset %d: %v", storage.ErrCorrupt, h.BaseOffset, err)
		}
	}
	logAppendTime := h.Attributes&0x8 != 0
	for i := int32(0); i < h.RecordCount && len(records) > 0; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return fmt.Errorf("%w: bad record length in batch at offset %d", storage.ErrCorrupt, h.BaseOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(records[:n+int(length)]); err != nil {
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
}
