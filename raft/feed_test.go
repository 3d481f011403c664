package raft

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"testing/synctest"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// pending returns what s holds without waiting, or nil.
func pending(s *Subscription) []Change {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ := s.Next(ctx)
	return c
}

func TestFeed_subscriberSeesWhatUpdatePublishes(t *testing.T) {
	f := newFeed()
	sub := f.subscribe()
	defer sub.Close()
	cluster := &driver{t: t, m: newClusterSM(f), sub: sub}
	group := &driver{t: t, m: newPartitionSM(3, f), sub: sub}
	orders := idFor("orders")
	leader := uint64(2)

	// The steps run in order; each names the machine it drives and the
	// changes the subscriber must see after it, whose Index the loop sets to
	// the entry's. Refused commands publish nothing.
	steps := []struct {
		name string
		d    *driver
		kind kind
		body any
		code string
		want []Change
	}{
		{"bootstrap", cluster, kindBootstrap, bootstrapCmd{Name: "a", PartitionGroups: 2}, "",
			[]Change{{Group: ClusterGroup, Kind: ChangeReset}}},
		{"register node", cluster, kindRegisterNode, registration(1), "",
			[]Change{{Group: ClusterGroup, Kind: ChangeNode, Node: 1}}},
		{"add node", cluster, kindAddNode, addNodeCmd{ID: 2, RaftAddress: nodeAddr(2)}, "",
			[]Change{{Group: ClusterGroup, Kind: ChangeNode, Node: 2}}},
		{"create topic", cluster, kindCreateTopic,
			createTopicCmd{Name: "orders", ID: orders, Partitions: 2, ReplicationFactor: 1, Candidates: []uint64{1}}, "",
			[]Change{{Group: ClusterGroup, Kind: ChangeTopicCreated, Topic: "orders", TopicID: orders}}},
		{"refused create topic", cluster, kindCreateTopic,
			createTopicCmd{Name: "orders", ID: idFor("other"), Partitions: 2, ReplicationFactor: 1, Candidates: []uint64{1}}, "topic_exists",
			nil},
		{"init partitions", group, kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
			{Topic: "orders", TopicID: orders, Partition: 1, Replicas: []uint64{1, 2}, Leader: 1, ISR: []uint64{1, 2}},
			{Topic: "orders", TopicID: orders, Partition: 0, Replicas: []uint64{1, 2}, Leader: 1, ISR: []uint64{1, 2}},
		}}, "", []Change{
			{Group: 3, Kind: ChangePartition, Topic: "orders", TopicID: orders, Partition: 1},
			{Group: 3, Kind: ChangePartition, Topic: "orders", TopicID: orders, Partition: 0},
		}},
		{"update partitions, one stale", group, kindUpdatePartitions, updatePartitionsCmd{Updates: []PartitionUpdate{
			{TopicID: orders, Partition: 1, ExpectedLeaderEpoch: 3, Leader: &leader},
			{TopicID: orders, Partition: 0, Leader: &leader},
		}}, "", []Change{{Group: 3, Kind: ChangePartition, Topic: "orders", TopicID: orders, Partition: 0}}},
		{"delete topic", cluster, kindDeleteTopic, deleteTopicCmd{Name: "orders"}, "",
			[]Change{{Group: ClusterGroup, Kind: ChangeTopicDeleted, Topic: "orders", TopicID: orders}}},
		{"remove partitions", group, kindRemovePartitions, removePartitionsCmd{TopicID: orders}, "", []Change{
			{Group: 3, Kind: ChangePartitionRemoved, Topic: "orders", TopicID: orders, Partition: 0},
			{Group: 3, Kind: ChangePartitionRemoved, Topic: "orders", TopicID: orders, Partition: 1},
		}},
		{"remove node", cluster, kindRemoveNode, removeNodeCmd{ID: 2}, "",
			[]Change{{Group: ClusterGroup, Kind: ChangeNode, Node: 2}}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := s.d.do(s.kind, s.body)
			checkCode(t, s.name, r, s.code)
			for i := range s.want {
				s.want[i].Index = s.d.index
			}
			if got := pending(sub); !reflect.DeepEqual(got, s.want) {
				t.Errorf("%s published %+v, want %+v", s.name, got, s.want)
			}
		})
	}
}

func TestFeed_recoverPublishesReset(t *testing.T) {
	tests := []struct {
		name  string
		group uint64
		new   func(*feed) sm.IStateMachine
	}{
		{"cluster group", ClusterGroup, func(f *feed) sm.IStateMachine { return newClusterSM(f) }},
		{"partition group", 5, func(f *feed) sm.IStateMachine { return newPartitionSM(5, f) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var snap bytes.Buffer
			if err := tt.new(newFeed()).SaveSnapshot(&snap, nil, nil); err != nil {
				t.Fatalf("SaveSnapshot() = %v", err)
			}
			f := newFeed()
			m := tt.new(f)
			sub := f.subscribe()
			if err := m.RecoverFromSnapshot(&snap, nil, nil); err != nil {
				t.Fatalf("RecoverFromSnapshot() = %v", err)
			}
			want := []Change{{Group: tt.group, Kind: ChangeReset}}
			if got := pending(sub); !reflect.DeepEqual(got, want) {
				t.Errorf("RecoverFromSnapshot() published %+v, want %+v", got, want)
			}
		})
	}
}

func TestFeed_everySubscriberSeesEveryChange(t *testing.T) {
	f := newFeed()
	a, b := f.subscribe(), f.subscribe()
	defer a.Close()
	defer b.Close()
	d := &driver{t: t, m: newPartitionSM(4, f), sub: a}
	id := idFor("t")
	d.do(kindInitPartitions, initPartitionsCmd{Partitions: []Partition{
		{Topic: "t", TopicID: id, Partition: 0, Replicas: []uint64{1, 2}, Leader: 1, ISR: []uint64{1, 2}},
		{Topic: "t", TopicID: id, Partition: 1, Replicas: []uint64{2, 1}, Leader: 2, ISR: []uint64{2, 1}},
	}})
	d.do(kindUpdatePartitions, updatePartitionsCmd{Updates: []PartitionUpdate{{TopicID: id, Partition: 1, ISR: []uint64{2}}}})
	want := []Change{
		{Group: 4, Index: 1, Kind: ChangePartition, Topic: "t", TopicID: id, Partition: 0},
		{Group: 4, Index: 1, Kind: ChangePartition, Topic: "t", TopicID: id, Partition: 1},
		{Group: 4, Index: 2, Kind: ChangePartition, Topic: "t", TopicID: id, Partition: 1},
	}
	for name, s := range map[string]*Subscription{"first": a, "second": b} {
		select {
		case <-s.Ready():
		default:
			t.Errorf("%s subscriber: Ready() not signalled after Update", name)
		}
		if got := pending(s); !reflect.DeepEqual(got, want) {
			t.Errorf("%s subscriber: Next() = %+v, want %+v", name, got, want)
		}
		if got := pending(s); got != nil {
			t.Errorf("%s subscriber: second Next() = %+v, want nothing", name, got)
		}
	}
}

func TestSubscription_Close_stopsDelivery(t *testing.T) {
	f := newFeed()
	closed, open := f.subscribe(), f.subscribe()
	defer open.Close()
	closed.Close()
	c := []Change{{Group: 1, Index: 7, Kind: ChangeNode, Node: 3}}
	f.publish(c...)
	if got := pending(closed); got != nil {
		t.Errorf("Next() after Close() = %+v, want nothing", got)
	}
	select {
	case <-closed.Ready():
		t.Errorf("Ready() signalled after Close(), want no signal")
	default:
	}
	if got := pending(open); !reflect.DeepEqual(got, c) {
		t.Errorf("Next() on the subscriber left open = %+v, want %+v", got, c)
	}
	closed.Close() // closing twice is harmless
}

func TestSubscription_Next_waits(t *testing.T) {
	tests := []struct {
		name string
		// Next runs with the context ctx builds, until end ends its wait.
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		end     func(f *feed, cancel context.CancelFunc)
		want    []Change
		wantErr error
	}{
		{
			name:    "cancel ends the wait",
			ctx:     context.WithCancel,
			end:     func(_ *feed, cancel context.CancelFunc) { cancel() },
			wantErr: context.Canceled,
		},
		{
			name: "deadline ends the wait",
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, time.Minute)
			},
			end:     func(*feed, context.CancelFunc) { time.Sleep(time.Minute) },
			wantErr: context.DeadlineExceeded,
		},
		{
			name: "a publish ends the wait",
			ctx:  context.WithCancel,
			end: func(f *feed, _ context.CancelFunc) {
				f.publish(Change{Group: 2, Index: 4, Kind: ChangePartition, Topic: "t", Partition: 1})
			},
			want: []Change{{Group: 2, Index: 4, Kind: ChangePartition, Topic: "t", Partition: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFeed()
				s := f.subscribe()
				defer s.Close()
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				var (
					got  []Change
					err  error
					done = make(chan struct{})
				)
				go func() {
					got, err = s.Next(ctx)
					close(done)
				}()
				synctest.Wait()
				select {
				case <-done:
					t.Fatalf("Next() = %+v, %v before anything happened, want it to wait", got, err)
				default:
				}
				tt.end(f, cancel)
				<-done
				if !errors.Is(err, tt.wantErr) || !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Next() = %+v, %v, want %+v, %v", got, err, tt.want, tt.wantErr)
				}
			})
		})
	}
}

func TestSubscription_Next_returnsPendingBeforeCheckingContext(t *testing.T) {
	f := newFeed()
	s := f.subscribe()
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := s.Next(ctx); !errors.Is(err, context.Canceled) || got != nil {
		t.Errorf("Next(cancelled) with nothing pending = %+v, %v, want nil, %v", got, err, context.Canceled)
	}
	c := Change{Group: 1, Index: 2, Kind: ChangeNode, Node: 1}
	f.publish(c)
	if got, err := s.Next(ctx); err != nil || !reflect.DeepEqual(got, []Change{c}) {
		t.Errorf("Next(cancelled) with a change pending = %+v, %v, want %+v, nil", got, err, []Change{c})
	}
}

func TestSubscription_overflowBecomesReset(t *testing.T) {
	changes := func(n, from int) []Change {
		out := make([]Change, n)
		for i := range out {
			out[i] = Change{Group: 2, Index: uint64(from + i), Kind: ChangePartition, Topic: "t"}
		}
		return out
	}
	reset := []Change{{Kind: ChangeReset}}
	tests := []struct {
		name    string
		publish [][]Change
		want    []Change
	}{
		{"exactly maxPending is kept", [][]Change{changes(maxPending-1, 0), changes(1, maxPending-1)}, changes(maxPending, 0)},
		{"one past maxPending is a reset", [][]Change{changes(maxPending, 0), changes(1, maxPending)}, reset},
		{"one batch larger than maxPending is a reset", [][]Change{changes(maxPending+1, 0)}, reset},
		{"changes after a reset follow it", [][]Change{changes(maxPending, 0), changes(2, maxPending), changes(2, maxPending+2)},
			append(append([]Change(nil), reset...), changes(2, maxPending+2)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFeed()
			s := f.subscribe()
			defer s.Close()
			for _, c := range tt.publish {
				f.publish(c...)
			}
			got := pending(s)
			if !reflect.DeepEqual(got, tt.want) {
				if len(got) > 3 || len(tt.want) > 3 {
					t.Errorf("Next() = %d changes starting %+v, want %d starting %+v", len(got), got[:min(len(got), 1)], len(tt.want), tt.want[:min(len(tt.want), 1)])
				} else {
					t.Errorf("Next() = %+v, want %+v", got, tt.want)
				}
			}
			// Once read, the subscriber starts afresh.
			f.publish(changes(1, 1<<20)...)
			if got := pending(s); !reflect.DeepEqual(got, changes(1, 1<<20)) {
				t.Errorf("Next() after reading the backlog = %+v, want %+v", got, changes(1, 1<<20))
			}
		})
	}
}
