package raft

import (
	"context"
	"errors"
	"sync"
)

// ChangeKind says what a committed command changed.
type ChangeKind string

// Change kinds.
const (
	ChangeNode             ChangeKind = "node"              // a registry entry was added or changed
	ChangeTopicCreated     ChangeKind = "topic_created"     // a topic was created
	ChangeTopicDeleted     ChangeKind = "topic_deleted"     // a topic was deleted
	ChangePartition        ChangeKind = "partition"         // a partition was created or its leader, ISR or epochs changed
	ChangePartitionRemoved ChangeKind = "partition_removed" // a partition of a deleted topic was dropped
	// ChangeReset means the subscriber must re-read the whole view: a group
	// was restored from a snapshot, or the subscriber fell too far behind.
	ChangeReset ChangeKind = "reset"
)

// Change is one committed change as the local replica applied it. It names
// what changed; the current state is read from the Store's view.
type Change struct {
	Group     uint64     `json:"group"`
	Index     uint64     `json:"index"`
	Kind      ChangeKind `json:"kind"`
	Topic     string     `json:"topic,omitempty"`
	TopicID   TopicID    `json:"topic_id,omitzero"`
	Partition int32      `json:"partition"`
	Node      uint64     `json:"node,omitempty"`
}

// maxPending bounds what one subscriber may leave unread; past it the
// backlog is replaced by a single ChangeReset.
const maxPending = 1 << 16

// feed fans committed changes out to subscribers. Publishing never blocks the
// apply loop: a slow subscriber gets a reset instead of stalling Raft.
type feed struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}

	// outbox wakes event publishers (Store.OutboxChanged): fired when an
	// outbox gains events or is restored, and when a group's leader changes.
	outbox broadcast
}

func newFeed() *feed { return &feed{subs: make(map[*Subscription]struct{})} }

func (f *feed) publish(changes ...Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.push(changes)
	}
}

// Subscription receives changes in the order the local replica applies them
// within each group. Close it when done.
type Subscription struct {
	f       *feed
	mu      sync.Mutex
	pending []Change
	ready   chan struct{} // holds a token while pending is non-empty
	closed  chan struct{}
	once    sync.Once
}

func (f *feed) subscribe() *Subscription {
	s := &Subscription{f: f, ready: make(chan struct{}, 1), closed: make(chan struct{})}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
}

func (s *Subscription) push(changes []Change) {
	s.mu.Lock()
	if len(s.pending)+len(changes) > maxPending {
		s.pending = append(s.pending[:0], Change{Kind: ChangeReset})
	} else {
		s.pending = append(s.pending, changes...)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next waits for changes and returns every one pending. The returned slice
// is the caller's.
func (s *Subscription) Next(ctx context.Context) ([]Change, error) {
	for {
		s.mu.Lock()
		if len(s.pending) > 0 {
			out := s.pending
			s.pending = nil
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-s.closed:
			return nil, errSubscriptionClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Ready is signalled when changes may be pending; call Next to take them.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Close stops delivery to s and ends a Next that waits.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	delete(s.f.subs, s)
	s.f.mu.Unlock()
	s.once.Do(func() { close(s.closed) })
}

var errSubscriptionClosed = errors.New("subscription closed")

// broadcast wakes every waiter at once, without a subscription: wait
// returns a channel that the next fire closes. The zero value is ready.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
