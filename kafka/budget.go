package kafka

import (
	"bufio"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The request memory budget (Config.QueuedMaxRequestBytes, Kafka's
// queued.max.request.bytes). A request's body is read in chunks of
// frameChunk bytes, and each chunk's memory is taken from the budget before
// its bytes are read, so what a client has only declared costs nothing: a
// connection that says 100 MiB and sends 1 KiB holds one chunk. While the
// budget is spent a connection waits before reading more, until the frame's
// deadline (Config.RequestTimeout from its length prefix), when it is
// closed and its part returned. A request gives its part back once handled.
//
// Requests of more than one chunk may hold all but a reserve (an eighth of
// the budget, less if that would leave less than one largest request): a
// crowd of large, slow requests cannot starve the small ones (metadata,
// heartbeats, most produces) that would let the cluster go on working.

// frameChunk is how much of a request is read, and taken from the budget,
// at a time.
const frameChunk = 64 << 10

var errBudgetTimeout = errors.New("request memory budget spent until the request deadline")

// budget is a semaphore on bytes.
type budget struct {
	total int64 // the budget
	large int64 // what requests of more than one chunk may hold together

	mu     sync.Mutex
	used   int64
	waited bool          // someone waits on freed
	freed  chan struct{} // closed, and replaced, when bytes come back and someone waits
}

func newBudget(total, maxRequest int64) *budget {
	reserve := max(min(total/8, total-maxRequest), 0)
	return &budget{total: total, large: total - reserve, freed: make(chan struct{})}
}

// inUse is the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// acquire takes n bytes, waiting while they are not there until ctx ends or
// the deadline passes; small says the request is one chunk, which may use
// the reserve. waited reports whether it had to wait.
func (b *budget) acquire(ctx context.Context, n int64, small bool, deadline time.Time) (waited bool, err error) {
	limit := b.large
	if small {
		limit = b.total
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.used+n <= limit {
			b.used += n
			b.mu.Unlock()
			return waited, nil
		}
		freed := b.freed
		b.waited = true
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
			defer timer.Stop()
		}
		waited = true
		select {
		case <-freed:
		case <-timer.C:
			return waited, errBudgetTimeout
		case <-ctx.Done():
			return waited, ctx.Err()
		}
	}
}

// release gives back n bytes.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.waited {
		close(b.freed)
		b.freed, b.waited = make(chan struct{}), false
	}
}

// chunks recycles the chunks large requests are read into until they are
// whole.
var chunks = sync.Pool{New: func() any { b := make([]byte, frameChunk); return &b }}

// readFrame reads a request body of size bytes (its length prefix already
// read and checked), taking its memory from the budget as it arrives. held
// is what to give back once the request is handled, also on error; pooled
// says the frame goes back with releaseFrame.
func (s *Server) readFrame(br *bufio.Reader, size int32, deadline time.Time) (frame []byte, held int64, pooled bool, err error) {
	if size <= frameChunk {
		if held, err = s.take(int64(size), true, deadline); err != nil {
			return nil, held, false, err
		}
		frame = make([]byte, size)
		_, err = io.ReadFull(br, frame)
		return frame, held, false, err
	}
	var parts []*[]byte
	defer func() {
		for _, p := range parts {
			chunks.Put(p)
		}
	}()
	for got := int32(0); got < size; {
		n := min(frameChunk, size-got)
		took, err := s.take(int64(n), false, deadline)
		held += took
		if err != nil {
			return nil, held, false, err
		}
		p := chunks.Get().(*[]byte)
		parts = append(parts, p)
		if _, err := io.ReadFull(br, (*p)[:n]); err != nil {
			return nil, held, false, err
		}
		got += n
	}
	// Whole: one contiguous frame for the decoder, the same size as what
	// the budget holds for it; the chunks go back for other reads.
	frame, pooled = newFrame(int16(uint16((*parts[0])[0])<<8|uint16((*parts[0])[1])), size)
	at := 0
	for _, p := range parts {
		at += copy(frame[at:], *p)
	}
	return frame, held, pooled, nil
}

// take acquires n bytes of the budget for a connection, counting a wait.
func (s *Server) take(n int64, small bool, deadline time.Time) (int64, error) {
	waited, err := s.budget.acquire(s.ctx, n, small, deadline)
	if waited {
		s.metrics.budgetWaits.Inc()
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// produceFrames recycles the buffers of large Produce requests, the bulk
// of a broker's allocations. Only Produce: its handler has written the
// records to the log and kept no slice of the request when it returns
// (kmsg's ReadFrom copies strings), whereas other requests' byte fields,
// such as group members' metadata, live on in memory.
var produceFrames sync.Pool

const (
	minPooledFrame = 64 << 10
	maxPooledFrame = 16 << 20
)

// newFrame returns a buffer for a frame of size bytes whose API key is key,
// recycled for large Produce requests.
func newFrame(key int16, size int32) ([]byte, bool) {
	if size < minPooledFrame || size > maxPooledFrame || key != int16(kmsg.Produce) {
		return make([]byte, size), false
	}
	if b, ok := produceFrames.Get().(*[]byte); ok && cap(*b) >= int(size) {
		return (*b)[:size], true
	}
	return make([]byte, size, maxPooledFrame/4+int(size)), true
}

func releaseFrame(b []byte) { produceFrames.Put(&b) }
