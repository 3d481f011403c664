package appliance

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/reeve-edge/reeve/raft"
)

// quorumWatch tracks when this node last completed a Raft ReadIndex on the
// cluster group, which needs a quorum. A partition leader that has not
// reached the quorum for longer than the election timeout may have been
// replaced without hearing of it, so the Kafka layer stops taking writes.
type quorumWatch struct {
	store   *raft.Store
	timeout time.Duration
	last    atomic.Int64 // unix nanoseconds of the last success
}

func newQuorumWatch(store *raft.Store, electionTimeout time.Duration) *quorumWatch {
	q := &quorumWatch{store: store, timeout: max(electionTimeout, time.Second)}
	q.last.Store(time.Now().UnixNano())
	return q
}

func (q *quorumWatch) run(ctx context.Context) {
	t := time.NewTicker(q.timeout / 4)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, q.timeout)
		if err := q.store.Barrier(rctx, raft.ClusterGroup); err == nil {
			q.last.Store(time.Now().UnixNano())
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (q *quorumWatch) fresh() bool {
	return time.Since(time.Unix(0, q.last.Load())) <= q.timeout+q.timeout/2
}
