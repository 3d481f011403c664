package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary frames to the request decoder and
// handlers: they must never panic, and a frame either gets an answer or
// closes its connection.
func FuzzDecodeRequest(f *testing.F) {
	s, _ := startServer(f)
	// A cancelled server context makes long polls and fsync waits return at
	// once, so no input can stall the fuzzer.
	s.cancel()
	for _, seed := range [][]byte{
		request(kmsg.NewPtrApiVersionsRequest(), 3, 1),
		request(kmsg.NewPtrApiVersionsRequest(), 0, 1),
		request(kmsg.NewPtrMetadataRequest(), 12, 1),
		request(kmsg.NewPtrMetadataRequest(), 0, 1),
		request(kmsg.NewPtrFetchRequest(), 16, 1),
		request(kmsg.NewPtrFetchRequest(), 4, 1),
		request(kmsg.NewPtrListOffsetsRequest(), 8, 1),
		request(kmsg.NewPtrCreateTopicsRequest(), 7, 1),
		request(kmsg.NewPtrDescribeConfigsRequest(), 4, 1),
		{0, 0, 0, 3, 0, 0, 0, 1, 0xff, 0xff},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < minFrame {
			return
		}
		resp, hdr, err := s.handleFrame(&conn{}, frame)
		if err == nil && resp != nil {
			resp.AppendTo(nil) // the answer must encode
			_ = hdr
		}
	})
}
