package kafka

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A leader cut off from its Raft quorum (a network partition around it)
// may already have been replaced without hearing of it. Produce refuses new
// writes then (QuorumFresh), and this file makes acks=all produces already
// waiting for their followers give up at once with NOT_LEADER_OR_FOLLOWER,
// so the client looks for the new leader now instead of after its request
// timeout (10 s and more for most clients).

// errCutOff ends an acks=all wait when this node loses its Raft quorum.
var errCutOff = errors.New("this node lost its Raft quorum; another node may lead the partition now")

// cutOffPoll is how often the quorum's freshness is looked at; the quorum
// watch itself decides when it is stale.
const cutOffPoll = 100 * time.Millisecond

// cutOffWatch closes a channel when the quorum goes stale.
type cutOffWatch struct {
	fresh func() bool

	mu   sync.Mutex
	lost chan struct{} // closed while the quorum is stale; replaced once it is fresh again
}

func newCutOffWatch(fresh func() bool) *cutOffWatch {
	return &cutOffWatch{fresh: fresh, lost: make(chan struct{})}
}

// run polls the quorum until ctx ends.
func (w *cutOffWatch) run(ctx context.Context) {
	t := time.NewTicker(cutOffPoll)
	defer t.Stop()
	stale := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fresh := w.fresh()
		if fresh == !stale {
			continue
		}
		w.mu.Lock()
		if fresh {
			w.lost = make(chan struct{})
		} else {
			close(w.lost)
		}
		w.mu.Unlock()
		stale = !fresh
	}
}

// lostCh returns a channel closed when the quorum is lost (already closed
// while it is).
func (w *cutOffWatch) lostCh() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}
