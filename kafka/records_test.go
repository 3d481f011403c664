package kafka

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// recordHead is the start of a record whose value is valueLen zero bytes
// and which has no key and no headers: everything up to the value. The
// record ends with the value and a zero header count.
func recordHead(valueLen int) []byte {
	var body []byte
	body = append(body, 0)                            // attributes
	body = binary.AppendVarint(body, 0)               // timestamp delta
	body = binary.AppendVarint(body, 0)               // offset delta
	body = binary.AppendVarint(body, -1)              // null key
	body = binary.AppendVarint(body, int64(valueLen)) // value length
	length := len(body) + valueLen + 1                // + the header count
	return append(binary.AppendVarint(nil, int64(length)), body...)
}

// batchTime is the timestamp of rawBatch's record, later than any other
// record of a test (which stamp theirs before it), so ListOffsets -3 picks
// it; in the past, so that the default message.timestamp.after.max.ms
// lets it in.
const batchTime = 1_750_000_000_000

// rawBatch wraps records (compressed with codec, or not) holding one
// record, stamped batchTime, in a v2 batch with a correct length and CRC.
func rawBatch(codec int16, records []byte) []byte {
	b := make([]byte, 61, 61+len(records))
	binary.BigEndian.PutUint32(b[8:], uint32(49+len(records)))
	b[16] = 2 // magic
	binary.BigEndian.PutUint16(b[21:], uint16(codec))
	binary.BigEndian.PutUint64(b[27:], batchTime) // first timestamp
	binary.BigEndian.PutUint64(b[35:], batchTime) // max timestamp
	binary.BigEndian.PutUint64(b[43:], ^uint64(0))
	binary.BigEndian.PutUint16(b[51:], 0xffff)
	binary.BigEndian.PutUint32(b[53:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1) // one record
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

const bombValue = 1<<30 + 1<<20 // each bomb's record value: just over 1 GiB

// gzipBomb is a batch of about 1 MB whose one record inflates to over
// 1 GiB: gzip members of 1 MiB of zeros, concatenated, one gzip stream.
func gzipBomb(t testing.TB) []byte {
	member := func(p []byte) []byte {
		var buf bytes.Buffer
		w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		w.Write(p)
		w.Close()
		return buf.Bytes()
	}
	zeros := member(make([]byte, 1<<20))
	stream := member(recordHead(bombValue))
	for range bombValue>>20 + 1 { // the value, then the header count
		stream = append(stream, zeros...)
	}
	return rawBatch(1, stream)
}

// zstdBomb is a batch of about 32 KiB whose one record inflates to over
// 1 GiB: a zstd frame of RLE blocks, each 128 KiB of zeros in 4 bytes.
func zstdBomb(t testing.TB) []byte {
	head := recordHead(bombValue)
	f := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38} // magic; no content size; 128 KiB window
	block := func(typ, size int, last bool) {
		h := size<<3 | typ<<1
		if last {
			h |= 1
		}
		f = append(f, byte(h), byte(h>>8), byte(h>>16))
	}
	block(0, len(head), false) // raw
	f = append(f, head...)
	const rle = 128 << 10
	n := (bombValue + 1 + rle - 1) / rle
	for i := range n {
		block(1, rle, i == n-1)
		f = append(f, 0)
	}
	return rawBatch(4, f)
}

func produceOne(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	return produceRaw(ctxT(t), t, cl, topic, 0, batch)
}

func listOffset(t *testing.T, cl *kgo.Client, topic string, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestProduce_compressionBombIsRefusedAndListOffsetsStopsAtTheLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		bomb  func(testing.TB) []byte
		limit int32
	}{
		// Deflate expands at most about 1,000 times, so 1 GiB of gzip takes
		// a batch over the default 1 MiB: this topic allows 2 MiB.
		{"gzip", gzipBomb, 2 << 20},
		{"zstd", zstdBomb, 1048588},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := startServer(t, func(c *Config) {
				c.DefaultPartitions = 1
				c.MaxRequestBytes, c.MaxMessageBytes = 4<<20, tt.limit
			})
			cl := newClient(t, s, kgo.DefaultProduceTopic("bomb"))
			if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("first"), Timestamp: time.UnixMilli(batchTime - 1000)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			bomb := tt.bomb(t)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			p := produceOne(t, cl, "bomb", bomb)
			produceTook := time.Since(start)
			if p.ErrorCode != kerr.MessageTooLarge.Code {
				t.Errorf("produce of a %d-byte %s bomb = %v, want MESSAGE_TOO_LARGE", len(bomb), tt.name, kerr.ErrorForCode(p.ErrorCode))
			}
			if end, err := listEnd(ctxT(t), cl, "bomb"); err != nil || end != 1 {
				t.Errorf("log end after the refused bomb = %d, %v; want 1", end, err)
			}

			// A bomb can still be in a log: copied verbatim from a leader that
			// took it, or written before the limit was lowered. Lookups that
			// open it stop at the limit too.
			tp, _ := s.parts.topic("bomb")
			part, err := s.parts.get(tp, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := part.log.Append(bomb, 0); err != nil {
				t.Fatal(err)
			}
			part.advanceHW([]int32{1}, 1)
			start = time.Now()
			maxTS := listOffset(t, cl, "bomb", -3)
			byTime := listOffset(t, cl, "bomb", batchTime)
			listTook := time.Since(start)
			runtime.ReadMemStats(&after)
			for name, got := range map[string]int16{"-3 (max timestamp)": maxTS.ErrorCode, "by the bomb's time": byTime.ErrorCode} {
				if got != kerr.CorruptMessage.Code {
					t.Errorf("ListOffsets %s over the bomb = %v, want CORRUPT_MESSAGE", name, kerr.ErrorForCode(got))
				}
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s bomb: %d-byte batch expanding to %d MiB; produce refused in %v, two lookups in %v; %d MiB allocated by the process meanwhile",
				tt.name, len(bomb), bombValue>>20, produceTook, listTook, alloc>>20)
			if alloc > 64<<20 {
				t.Errorf("allocated %d MiB while refusing the bomb, want under 64 MiB", alloc>>20)
			}
		})
	}
}

func TestProduce_batchOverMaxMessageBytesIsRefused(t *testing.T) {
	s, _ := startServer(t, func(c *Config) {
		c.DefaultPartitions = 1
		c.MaxRequestBytes = 101 << 20 // the 100 MB record below reaches the handler
	})
	ctx := ctxT(t)
	cl := newClient(t, s)
	t.Run("100 MB record", func(t *testing.T) {
		// franz-go refuses a batch this large itself, so it goes raw.
		const size = 100_000_000
		records := append(recordHead(size), make([]byte, size+1)...)
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "large"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = rawBatch(0, records)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		frame := request(req, 8, 42)
		records, rp.Records = nil, nil
		c := dialRaw(t, s)
		start := time.Now()
		c.send(frame)
		corr, body, err := c.reply(false)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(8)
		if err := resp.ReadFrom(body); err != nil || corr != 42 {
			t.Fatalf("answer = corr %d, %v", corr, err)
		}
		got := resp.Topics[0].Partitions[0]
		t.Logf("100 MB record answered in %v: %v %s", took, kerr.ErrorForCode(got.ErrorCode), *got.ErrorMessage)
		if got.ErrorCode != kerr.MessageTooLarge.Code {
			t.Errorf("produce of a 100 MB record = %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(got.ErrorCode))
		}
	})
	t.Run("topic max.message.bytes", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "small", 1, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		v := "2000"
		c.Name, c.Value = "max.message.bytes", &v
		rt.Configs = append(rt.Configs, c)
		req.Topics = append(req.Topics, rt)
		if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("CreateTopics = %v, %v", resp, err)
		}
		s.parts.refresh()
		for _, tt := range []struct {
			value int
			want  int16
		}{
			{1000, 0},
			{3000, kerr.MessageTooLarge.Code},
		} {
			batch := rawBatch(0, append(recordHead(tt.value), make([]byte, tt.value+1)...))
			if got := produceOne(t, cl, "small", batch); got.ErrorCode != tt.want {
				t.Errorf("produce of a %d-byte batch to a topic allowing 2000 = %v, want %v",
					len(batch), kerr.ErrorForCode(got.ErrorCode), kerr.ErrorForCode(tt.want))
			}
		}
	})
}

func TestDecompress_stopsAtTheLimit(t *testing.T) {
	src := bytes.Repeat([]byte("reeve "), 2<<20/6)
	franz := func(codec kgo.CompressionCodec) func(t *testing.T) ([]byte, int) {
		return func(t *testing.T) ([]byte, int) {
			comp, err := kgo.DefaultCompressor(codec)
			if err != nil {
				t.Fatal(err)
			}
			b, c := comp.Compress(new(bytes.Buffer), src)
			return b, int(c)
		}
	}
	xerial := func(*testing.T) ([]byte, int) { // snappy-java's framing, 32 KiB blocks
		b := append(append([]byte{}, xerialPrefix...), 0, 0, 0, 1, 0, 0, 0, 1)
		for rest := src; len(rest) > 0; {
			n := min(len(rest), 32<<10)
			block := s2.EncodeSnappy(nil, rest[:n])
			b = binary.BigEndian.AppendUint32(b, uint32(len(block)))
			b, rest = append(b, block...), rest[n:]
		}
		return b, 2
	}
	for _, tt := range []struct {
		name     string
		compress func(*testing.T) ([]byte, int)
	}{
		{"gzip", franz(kgo.GzipCompression())},
		{"snappy", franz(kgo.SnappyCompression())},
		{"snappy xerial", xerial},
		{"lz4", franz(kgo.Lz4Compression())},
		{"zstd", franz(kgo.ZstdCompression())},
	} {
		t.Run(tt.name, func(t *testing.T) {
			compressed, c := tt.compress(t)
			var out bytes.Buffer
			if err := decompress(&out, compressed, c, len(src)); err != nil || !bytes.Equal(out.Bytes(), src) {
				t.Errorf("decompress(limit = its size) = %d bytes, %v; want the %d bytes back", out.Len(), err, len(src))
			}
			out.Reset()
			if err := decompress(&out, compressed, c, len(src)-1); !errors.Is(err, errDecompressedTooLarge) {
				t.Errorf("decompress(limit = its size - 1) = %v, want errDecompressedTooLarge", err)
			}
			if out.Len() > len(src) {
				t.Errorf("decompress past the limit wrote %d bytes, want at most %d", out.Len(), len(src))
			}
		})
	}
}

func TestStampLogAppendTime_setsTypeTimesAndCRCOnly(t *testing.T) {
	const now = 1_800_000_000_000
	gz := func() []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(append(recordHead(10), make([]byte, 11)...))
		w.Close()
		return buf.Bytes()
	}()
	first, second := rawBatch(0, append(recordHead(5), make([]byte, 6)...)), rawBatch(1, gz)
	batches := append(append([]byte{}, first...), second...)
	stampLogAppendTime(batches, now)
	for i, orig := range [][]byte{first, second} {
		b := batches[:len(orig)]
		batches = batches[len(orig):]
		h, err := storage.CheckBatch(b)
		if err != nil {
			t.Fatalf("batch %d: CheckBatch after stamping = %v", i, err)
		}
		if h.Attributes != int16(binary.BigEndian.Uint16(orig[21:]))|attrLogAppendTime {
			t.Errorf("batch %d: attributes %#x, want the codec kept and %#x set", i, h.Attributes, attrLogAppendTime)
		}
		if h.BaseTimestamp != now || h.MaxTimestamp != now {
			t.Errorf("batch %d: base, max timestamp = %d, %d, want %d", i, h.BaseTimestamp, h.MaxTimestamp, now)
		}
		if !bytes.Equal(b[:17], orig[:17]) || !bytes.Equal(b[43:], orig[43:]) {
			t.Errorf("batch %d: bytes other than the attributes, timestamps and CRC changed", i)
		}
		if err := eachRecord(b, 1<<20, func(_, ts int64) bool {
			if ts != now {
				t.Errorf("batch %d: a record reads as %d, want %d", i, ts, now)
			}
			return true
		}); err != nil {
			t.Errorf("batch %d: eachRecord = %v", i, err)
		}
	}
}
