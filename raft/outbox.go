package raft

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"
	"unicode/utf8"
)

// The event outbox. Every group keeps one: partition groups append the
// events of the partition changes they apply, in the same apply as the
// change, and anyone may append events that are not partition changes
// (node up or down, policy loaded, rejected or fell back; by convention to
// the cluster group) with AppendEvents. The group's Raft leader publishes
// them in order and records how far it got with AckEvents, through Raft, so
// a new leader republishes from there: delivery is at least once, and the
// ID of every event (cluster-group-seq) lets a JetStream stream drop the
// repeats by Nats-Msg-Id.
//
// The outbox never slows Raft: appends succeed whether or not anything
// publishes. It holds at most MaxOutboxEvents unacknowledged events; past
// that it drops the oldest and counts them (the count is replicated, so
// every node reports the same), and the node that proposed the entry which
// dropped them logs it.
//
// # Notes
//
// Sequence numbers start at 1, rise by one per event, and are never reused:
// not after an ack, a drop, a snapshot or a restart. Events dropped
// unpublished leave a gap, which a publisher sees as a first pending event
// above acked+1.
//
// A cluster rebuilt from scratch under the same name starts its sequences
// at 1 again, so its first IDs equal those of the old cluster's first
// events. A stream's duplicate window (two minutes by default) has
// normally passed before a rebuilt cluster publishes; a stream that
// outlives clusters should keep it short.
//
// Entries written by binaries from before the outbox append no events (see
// updatePartitionsCmd.Outbox), so replicas that replay them agree. The
// converse cannot be arranged: a member still running such a binary
// rejects the outbox commands and ignores Outbox, so it ends up with fewer
// events and lower sequence numbers than the others, and keeps them after
// its upgrade; as its sequence numbers then name other events than the
// same numbers elsewhere, a stream may drop some of its events as repeats
// if it comes to lead. So a rolling upgrade onto the outbox leaves the
// outboxes disagreeing: upgrade all members together (stop, upgrade,
// start). A cluster-wide feature gate would lift this; there is none yet.

// EventType says what an Event reports.
type EventType string

// Event types. Partition groups append the first four themselves; the
// others come through AppendEvents.
const (
	// EventLeaderChanged: a partition has a new leader (PreviousLeader may
	// be NoLeader: the partition came back online).
	EventLeaderChanged EventType = "leader_changed"
	// EventPartitionOffline: a partition lost its leader and no replica
	// was eligible; Leader is NoLeader.
	EventPartitionOffline EventType = "partition_offline"
	// EventISRShrunk: replicas left a partition's ISR, leader unchanged.
	EventISRShrunk EventType = "isr_shrunk"
	// EventISRExpanded: replicas joined a partition's ISR, leader unchanged.
	EventISRExpanded EventType = "isr_expanded"

	EventNodeUp         EventType = "node_up"          // Node became reachable
	EventNodeDown       EventType = "node_down"        // Node stopped answering heartbeats
	EventPolicyLoaded   EventType = "policy_loaded"    // a policy module was loaded or replaced
	EventPolicyRejected EventType = "policy_rejected"  // a policy module was refused; the old one stays
	EventPolicyFellBack EventType = "policy_fell_back" // a policy failed a round; first-isr decided it
	// EventStorageFailed: a partition's log failed on Node (an fsync
	// error, in Detail); it takes no writes there until a restart.
	EventStorageFailed EventType = "storage_failed"
)

// MaxOutboxEvents bounds the unacknowledged events one group holds; an
// append past it drops the oldest. At about 300 bytes an event, a full
// outbox is 3 MB of memory and of every snapshot of that group: enough
// for an hour of elections on a busy cluster with NATS away.
const MaxOutboxEvents = 10_000

// maxEventText bounds each text field of an event (Detail, Reason, Policy,
// PolicyDigest, Topic); longer text is cut, deterministically, at a UTF-8
// boundary, so a verbose policy cannot bloat the outbox.
const maxEventText = 1024

// maxEventType bounds the length of an event type.
const maxEventType = 64

// Event is one entry of a group's outbox, as the publisher sends it on: its
// JSON form is the message body. Which fields are set depends on Type:
//
//   - partition events (leader_changed, partition_offline, isr_shrunk,
//     isr_expanded): Topic through PreviousISR, as the change left the
//     partition and as it was before; for a leader change also the
//     controller's account (Reason, Policy, PolicyDigest, Controller,
//     LatencyMs, Detail) when the proposer gave one, and Unclean. A change
//     of leader that also changes the ISR is one leader event: compare
//     ISR and PreviousISR. An ISR change that both removes and adds
//     replicas is two events, isr_shrunk then isr_expanded, with the same
//     fields.
//   - node events: Node.
//   - policy events: Policy, PolicyDigest, Detail (the reason or error).
//
// In JSON, text, list and node fields are left out when empty, and the
// partition's numbers (partition, leaders, epochs) when the event has no
// TopicID and they are zero, so a node event does not read as "partition 0
// offline".
type Event struct {
	// Seq is the event's place in its group's outbox, from 1, assigned by
	// the state machine.
	Seq uint64 `json:"seq"`
	// ID is "<cluster>-<group>-<seq>", unique per cluster and stable across
	// leaders and retries: use it as the Nats-Msg-Id. PendingEvents sets it
	// and Group; the outbox does not store them.
	ID    string    `json:"id,omitempty"`
	Group uint64    `json:"group,omitempty"`
	Type  EventType `json:"type"`
	// Time is when the proposer made the change, in Unix milliseconds (0
	// if it did not say).
	Time int64 `json:"time"`

	Topic          string   `json:"topic,omitempty"`
	TopicID        TopicID  `json:"topic_id,omitzero"`
	Partition      int32    `json:"partition"`
	PreviousLeader uint64   `json:"previous_leader"` // NoLeader (0) when there was none
	Leader         uint64   `json:"leader"`          // NoLeader (0) when offline
	LeaderEpoch    int32    `json:"leader_epoch"`
	PartitionEpoch int32    `json:"partition_epoch"`
	Replicas       []uint64 `json:"replicas,omitzero"`
	ISR            []uint64 `json:"isr,omitzero"`
	PreviousISR    []uint64 `json:"previous_isr,omitzero"`

	Reason       string  `json:"reason,omitempty"`
	Policy       string  `json:"policy,omitempty"`
	PolicyDigest string  `json:"policy_digest,omitempty"`
	Controller   uint64  `json:"controller,omitempty"`
	LatencyMs    float64 `json:"latency_ms,omitempty"`
	// Unclean is set on a leader change whose new leader was not in the ISR.
	Unclean bool   `json:"unclean,omitempty"`
	Node    uint64 `json:"node,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// MarshalJSON leaves out the zero partition numbers of an event that is
// not about a partition (see Event). Decoding needs no counterpart: an
// absent field is a zero.
func (e Event) MarshalJSON() ([]byte, error) {
	type fields Event // without this method
	if !e.TopicID.IsZero() {
		return json.Marshal(fields(e))
	}
	// Fields of the outer struct hide the embedded ones of the same JSON
	// name, so nil pointers here remove those from the output.
	return json.Marshal(struct {
		fields
		Partition      *int32  `json:"partition,omitempty"`
		PreviousLeader *uint64 `json:"previous_leader,omitempty"`
		Leader         *uint64 `json:"leader,omitempty"`
		LeaderEpoch    *int32  `json:"leader_epoch,omitempty"`
		PartitionEpoch *int32  `json:"partition_epoch,omitempty"`
	}{fields(e), nonZero(e.Partition), nonZero(e.PreviousLeader), nonZero(e.Leader), nonZero(e.LeaderEpoch), nonZero(e.PartitionEpoch)})
}

func nonZero[T int32 | uint64](v T) *T {
	if v == 0 {
		return nil
	}
	return &v
}

func (e *Event) clone() Event {
	c := *e
	c.Replicas = slices.Clone(e.Replicas)
	c.ISR = slices.Clone(e.ISR)
	c.PreviousISR = slices.Clone(e.PreviousISR)
	return c
}

// cutText shortens s to at most maxEventText bytes without splitting a
// UTF-8 sequence.
func cutText(s string) string {
	if len(s) <= maxEventText {
		return s
	}
	n := maxEventText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// partitionEvents returns the events of one applied partition change: prev
// is the partition before it, now after. A change that touches neither the
// leader nor the membership of the ISR (an ISR reordered) has none.
func partitionEvents(prev, now *Partition, u PartitionUpdate) []Event {
	ids := func(s []uint64) []uint64 { return append([]uint64{}, s...) } // [] rather than null in JSON
	e := Event{
		Time: u.Time, Topic: now.Topic, TopicID: now.TopicID, Partition: now.Partition,
		PreviousLeader: prev.Leader, Leader: now.Leader,
		LeaderEpoch: now.LeaderEpoch, PartitionEpoch: now.PartitionEpoch,
		Replicas: ids(now.Replicas), ISR: ids(now.ISR), PreviousISR: ids(prev.ISR),
	}
	if el := u.Election; el != nil {
		e.Reason, e.Policy, e.PolicyDigest, e.Detail = cutText(el.Reason), cutText(el.Policy), cutText(el.PolicyDigest), cutText(el.Detail)
		e.Controller, e.LatencyMs = el.Controller, el.LatencyMs
	}
	if now.Leader != prev.Leader {
		e.Type = EventLeaderChanged
		if now.Leader == NoLeader {
			e.Type = EventPartitionOffline
		}
		e.Unclean = now.Leader != NoLeader && !slices.Contains(prev.ISR, now.Leader)
		return []Event{e}
	}
	var out []Event
	if slices.ContainsFunc(prev.ISR, func(id uint64) bool { return !slices.Contains(now.ISR, id) }) {
		e.Type = EventISRShrunk
		out = append(out, e)
	}
	if slices.ContainsFunc(now.ISR, func(id uint64) bool { return !slices.Contains(prev.ISR, id) }) {
		e.Type = EventISRExpanded
		out = append(out, e.clone())
	}
	return out
}

// outbox is the replicated outbox of one group. Its events are exactly those
// with Seq in (Acked, LastSeq] that were not dropped, oldest first.
type outbox struct {
	Events  []Event `json:"events,omitempty"`
	LastSeq uint64  `json:"last_seq,omitempty"` // Seq of the newest event ever appended
	Acked   uint64  `json:"acked,omitempty"`    // the publisher's mark: every event up to it was published
	Dropped uint64  `json:"dropped,omitempty"`  // events dropped unpublished because the outbox was full
	// Down lists, in order, the nodes whose latest node event is
	// node_down. A node_down for a node already down, or a node_up for
	// one that is not, is dropped as it is appended: nodes and the
	// controllers of several groups may all report one outage, and the
	// cluster hears of it once.
	Down []uint64 `json:"down,omitempty"`
}

// nodeEvent reports whether a node event changes what Down says, and
// records the change; other events always pass.
func (o *outbox) nodeEvent(e Event) bool {
	i, down := slices.BinarySearch(o.Down, e.Node)
	switch e.Type {
	case EventNodeDown:
		if down {
			return false
		}
		o.Down = slices.Insert(o.Down, i, e.Node)
	case EventNodeUp:
		if !down {
			return false
		}
		o.Down = slices.Delete(o.Down, i, i+1)
	}
	return true
}

// add appends events with the next sequence numbers, drops the oldest past
// MaxOutboxEvents, and returns how many it dropped.
func (o *outbox) add(events []Event) uint64 {
	for _, e := range events {
		o.LastSeq++
		e.Seq, e.ID, e.Group = o.LastSeq, "", 0
		o.Events = append(o.Events, e)
	}
	n := len(o.Events) - MaxOutboxEvents
	if n <= 0 {
		return 0
	}
	o.trim(n)
	o.Dropped += uint64(n)
	return uint64(n)
}

// trim forgets the n oldest events. Re-slicing keeps it O(n); the array
// behind is replaced by append's growth, and clear lets the dropped
// events' memory go meanwhile.
func (o *outbox) trim(n int) {
	clear(o.Events[:n])
	o.Events = o.Events[n:]
}

type appendEventsCmd struct {
	Events []Event `json:"events"`
}

// ackEventsCmd moves the publisher's mark to UpTo. A mark only rises: an
// ack at or below it (a retry, a slow former leader) changes nothing.
type ackEventsCmd struct {
	UpTo uint64 `json:"up_to"`
}

// applyOutbox applies an outbox command to o. nodes is set for the
// cluster group's outbox, which holds the node events and drops repeats
// (outbox.Down).
func applyOutbox(o *outbox, k kind, body []byte, nodes bool) result {
	switch k {
	case kindAppendEvents:
		var c appendEventsCmd
		if err := json.Unmarshal(body, &c); err != nil {
			return failed(ErrUnsupportedCommand, "append events: %v", err)
		}
		if len(c.Events) > MaxOutboxEvents {
			return failed(ErrInvalidUpdate, "append %d events: at most %d at once", len(c.Events), MaxOutboxEvents)
		}
		for i := range c.Events {
			e := &c.Events[i]
			if e.Type == "" || len(e.Type) > maxEventType {
				return failed(ErrInvalidUpdate, "append events: event %d has type %q; want 1 to %d bytes", i, e.Type, maxEventType)
			}
			e.Topic, e.Reason, e.Policy, e.PolicyDigest, e.Detail = cutText(e.Topic), cutText(e.Reason), cutText(e.Policy), cutText(e.PolicyDigest), cutText(e.Detail)
		}
		kept := c.Events[:0]
		for _, e := range c.Events {
			if !nodes || o.nodeEvent(e) {
				kept = append(kept, e)
			}
		}
		return result{EventsDropped: o.add(kept)}
	case kindAckEvents:
		var c ackEventsCmd
		if err := json.Unmarshal(body, &c); err != nil {
			return failed(ErrUnsupportedCommand, "ack events: %v", err)
		}
		if c.UpTo <= o.Acked {
			return result{}
		}
		if c.UpTo > o.LastSeq {
			return failed(ErrInvalidUpdate, "ack events up to %d: the newest event is %d", c.UpTo, o.LastSeq)
		}
		o.Acked = c.UpTo
		o.trim(sort.Search(len(o.Events), func(i int) bool { return o.Events[i].Seq > c.UpTo }))
		return result{}
	}
	return failed(ErrUnsupportedCommand, "command kind %d is not an outbox command", k)
}

// NodesDown returns the nodes the cluster's latest node event reported
// down (node_down without a node_up since), as the local replica has it.
func (s *Store) NodesDown() []uint64 {
	s.cluster.mu.RLock()
	defer s.cluster.mu.RUnlock()
	return slices.Clone(s.cluster.st.Outbox.Down)
}

// OutboxStatus describes a group's outbox as the local replica has it.
type OutboxStatus struct {
	Pending int    `json:"pending"`  // events not yet acknowledged
	LastSeq uint64 `json:"last_seq"` // Seq of the newest event, 0 if none
	Acked   uint64 `json:"acked"`    // the publisher's mark
	// Dropped counts events dropped unpublished because the outbox was
	// full, since the group began; every replica has the same count.
	Dropped uint64 `json:"dropped"`
}

// AppendEvents appends events to a group's outbox, in order, as one Raft
// entry. The state machine gives each its Seq; ID and Group are ignored. An
// event's Time, when zero, is set to now; Type must be set, and text fields
// are cut to 1 KiB. When the outbox is full the oldest unpublished events
// are dropped to make room.
//
// # Notes
//
// Appending is not idempotent, so a try that timed out is not repeated: the
// error wraps the timeout and the events may or may not be in the outbox.
// Retrying may duplicate them, under new IDs.
func (s *Store) AppendEvents(ctx context.Context, group uint64, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	if !s.hasGroup(group) {
		return fmt.Errorf("append events to group %d: %w", group, ErrUnknownGroup)
	}
	now := time.Now().UnixMilli()
	c := appendEventsCmd{Events: make([]Event, len(events))}
	for i, e := range events {
		if e.Time == 0 {
			e.Time = now
		}
		e.Seq, e.ID, e.Group = 0, "", 0
		c.Events[i] = e
	}
	res, err := s.propose(ctx, group, kindAppendEvents, c)
	if err != nil {
		return fmt.Errorf("append events to group %d: %w", group, err)
	}
	s.noteDropped(group, res.EventsDropped)
	return nil
}

// AckEvents records that every event of group up to Seq upTo was
// published, and forgets them. An ack at or below the current mark is a
// no-op, so it is safe to repeat and a former leader's late ack cannot move
// the mark back; an ack past the newest event fails with ErrInvalidUpdate.
func (s *Store) AckEvents(ctx context.Context, group uint64, upTo uint64) error {
	if !s.hasGroup(group) {
		return fmt.Errorf("ack events of group %d: %w", group, ErrUnknownGroup)
	}
	if _, err := s.propose(ctx, group, kindAckEvents, ackEventsCmd{UpTo: upTo}); err != nil {
		return fmt.Errorf("ack events of group %d up to %d: %w", group, upTo, err)
	}
	return nil
}

// PendingEvents returns, from the local replica, up to limit events of
// group that are not yet acknowledged (all of them if limit <= 0), oldest
// first, each with its ID and Group set, and the group's ack mark. The
// events are the caller's. A first event above acked+1 means the ones
// between were dropped unpublished.
func (s *Store) PendingEvents(group uint64, limit int) (events []Event, acked uint64) {
	s.readOutbox(group, func(o *outbox) {
		acked = o.Acked
		n := len(o.Events)
		if limit > 0 {
			n = min(n, limit)
		}
		events = make([]Event, n)
		for i := range events {
			events[i] = o.Events[i].clone()
		}
	})
	name := s.ClusterName()
	for i := range events {
		events[i].Group, events[i].ID = group, eventID(name, group, events[i].Seq)
	}
	return events, acked
}

// Outbox returns the state of a group's outbox on the local replica, and
// whether this node runs that group.
func (s *Store) Outbox(group uint64) (OutboxStatus, bool) {
	var st OutboxStatus
	ok := s.readOutbox(group, func(o *outbox) {
		st = OutboxStatus{Pending: len(o.Events), LastSeq: o.LastSeq, Acked: o.Acked, Dropped: o.Dropped}
	})
	return st, ok
}

// OutboxChanged returns a channel that is closed at the next change that
// may give a publisher on this node work: events applied to any group's
// outbox, an outbox restored from a snapshot, or a change of some group's
// Raft leader. Take the channel before reading PendingEvents, so a change
// between the two still wakes the wait. Any number of goroutines may wait.
func (s *Store) OutboxChanged() <-chan struct{} { return s.feed.outbox.wait() }

// EventID returns the ID of a group's event number seq: the cluster's name,
// the group and seq, joined by '-'.
func (s *Store) EventID(group, seq uint64) string { return eventID(s.ClusterName(), group, seq) }

func eventID(cluster string, group, seq uint64) string {
	return fmt.Sprintf("%s-%d-%d", cluster, group, seq)
}

func (s *Store) hasGroup(group uint64) bool {
	return group == ClusterGroup || s.group(group) != nil
}

// readOutbox runs f on a group's outbox under the group's read lock.
func (s *Store) readOutbox(group uint64, f func(*outbox)) bool {
	if group == ClusterGroup {
		s.cluster.mu.RLock()
		defer s.cluster.mu.RUnlock()
		f(&s.cluster.st.Outbox)
		return true
	}
	g := s.group(group)
	if g == nil {
		return false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	f(&g.out)
	return true
}

// dropLogInterval is the least time between two log lines about one
// group's full outbox: while NATS stays away every append drops one event,
// and one line a minute, with the count, says as much.
const dropLogInterval = time.Minute

// dropReport is what noteDropped remembers of one group.
type dropReport struct {
	last     time.Time // of the last log line
	unlogged uint64    // drops since then
}

// noteDropped logs that an entry this node proposed dropped n unpublished
// events. The state machine cannot log (every replica would, at every
// replay), but its result reaches exactly one node, the proposer, once.
func (s *Store) noteDropped(group, n uint64) {
	if n == 0 {
		return
	}
	s.dropMu.Lock()
	r := s.drops[group]
	if r == nil {
		r = &dropReport{}
		s.drops[group] = r
	}
	r.unlogged += n
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < dropLogInterval {
		s.dropMu.Unlock()
		return
	}
	dropped := r.unlogged
	r.last, r.unlogged = now, 0
	s.dropMu.Unlock()
	st, _ := s.Outbox(group)
	s.log.Warn("raft: event outbox full; dropped the oldest unpublished events, check that the event publisher reaches NATS",
		"group", group, "dropped", dropped, "dropped_total", st.Dropped, "max_events", MaxOutboxEvents)
}
