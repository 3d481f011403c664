package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/raft"
)

// Fault makes a publisher misbehave the way a crash at one point would;
// tests choose one through PublisherOptions.Fault. Production code never
// sets it.
type Fault string

const (
	// NoFault: publish and record as usual.
	NoFault Fault = ""
	// FaultHold publishes nothing: the node died right after the commit.
	FaultHold Fault = "hold"
	// FaultNoAck publishes each event once but never records it: the node
	// died after publishing.
	FaultNoAck Fault = "noack"
)

// Publisher drains the event outboxes of the Raft groups this node leads
// onto NATS, in order, and records its progress through Raft. A node that
// becomes a group's leader starts from the group's mark, so events the
// previous leader published but had not recorded are published again: the
// Nats-Msg-Id header (the event's id) lets a JetStream stream store them
// once.
type Publisher struct {
	store  *raft.Store
	conn   *nats.Conn
	prefix string
	log    *slog.Logger
	fault  func() Fault

	published map[string]bool // with FaultNoAck: what was sent and not recorded

	// sent counts the events the server confirmed (reeve_events_published_total).
	sent atomic.Uint64
}

// PublisherOptions are a Publisher's optional parts.
type PublisherOptions struct {
	// Fault, when set, is asked before each drain which crash to act out.
	// For tests only.
	Fault func() Fault
}

// NewPublisher returns a publisher of store's outboxes to conn, on subjects
// under prefix (events.subject_prefix). It does nothing until Run.
func NewPublisher(store *raft.Store, conn *nats.Conn, prefix string, log *slog.Logger, opts PublisherOptions) *Publisher {
	return &Publisher{store: store, conn: conn, prefix: prefix, log: log, fault: opts.Fault}
}

// Published counts the events the NATS server confirmed since start.
func (p *Publisher) Published() uint64 { return p.sent.Load() }

// publishBatch bounds the events one drain publishes before recording its
// progress.
const publishBatch = 256

// publishRetry is how often a publisher retries while NATS is away, and
// looks for groups it came to lead.
const publishRetry = 500 * time.Millisecond

// Run publishes until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	t := time.NewTicker(publishRetry)
	defer t.Stop()
	for {
		changed := p.store.OutboxChanged()
		for _, g := range p.store.Groups() {
			if leader, ok := p.store.GroupLeader(g); !ok || leader != p.store.NodeID() {
				continue
			}
			for ctx.Err() == nil && p.drain(ctx, g) {
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// drain publishes up to publishBatch pending events of group g and records
// the progress; it reports whether it made any (more may be waiting).
func (p *Publisher) drain(ctx context.Context, g uint64) bool {
	if !p.conn.IsConnected() {
		return false
	}
	fault := NoFault
	if p.fault != nil {
		fault = p.fault()
	}
	if fault == FaultHold {
		return false
	}
	evs, _ := p.store.PendingEvents(g, publishBatch)
	if len(evs) == 0 {
		return false
	}
	sent := uint64(0)
	for _, ev := range evs {
		if fault == FaultNoAck {
			if p.published == nil {
				p.published = map[string]bool{}
			}
			if p.published[p.store.EventID(g, ev.Seq)] {
				continue
			}
			p.published[p.store.EventID(g, ev.Seq)] = true
		}
		if ev.ID == "" {
			ev.ID = p.store.EventID(g, ev.Seq)
		}
		msg, err := Message(p.prefix, p.store.ClusterName(), g, FromRaft(ev))
		if err != nil {
			p.log.Error("events: cannot encode an event; skipping it", "group", g, "seq", ev.Seq, "err", err)
			continue
		}
		if err := p.conn.PublishMsg(msg); err != nil {
			p.log.Debug("events: publish failed; will retry", "group", g, "seq", ev.Seq, "err", err)
			return false
		}
		sent++
	}
	// The server has them once a flush round trip returns.
	if err := p.conn.FlushTimeout(2 * time.Second); err != nil {
		p.log.Debug("events: flush failed; will retry", "group", g, "err", err)
		return false
	}
	p.sent.Add(sent)
	if fault == FaultNoAck {
		return false
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.store.AckEvents(actx, g, evs[len(evs)-1].Seq); err != nil {
		p.log.Warn("events: published but not recorded; they will be published again", "group", g, "err", err)
		return false
	}
	return true
}

// Message builds the NATS message of one event of group g in cluster: the
// envelope as its body, the event's id as its Nats-Msg-Id.
func Message(prefix, cluster string, g uint64, ev api.Event) (*nats.Msg, error) {
	env := api.Envelope{
		SpecVersion: "1.0", ID: ev.ID, Type: api.EventTypePrefix + ev.Type + api.EventTypeVersion,
		Source: fmt.Sprintf("reeve://%s/group/%d", cluster, g), Time: time.UnixMilli(ev.Time).UTC(),
		DataContentType: "application/json", Data: ev,
	}
	if ev.Topic != "" {
		env.Subject = ev.Topic + "/" + strconv.Itoa(int(ev.Partition))
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(api.EventSubject(prefix, cluster, ev))
	msg.Header.Set(nats.MsgIdHdr, env.ID)
	msg.Data = data
	return msg, nil
}

// FromRaft is an outbox event as subscribers see it.
func FromRaft(ev raft.Event) api.Event {
	out := api.Event{
		Seq: ev.Seq, ID: ev.ID, Group: ev.Group, Type: string(ev.Type), Time: ev.Time,
		Topic: ev.Topic, Partition: ev.Partition, PreviousLeader: ev.PreviousLeader, Leader: ev.Leader,
		LeaderEpoch: ev.LeaderEpoch, PartitionEpoch: ev.PartitionEpoch,
		Replicas: ev.Replicas, ISR: ev.ISR, PreviousISR: ev.PreviousISR,
		Reason: ev.Reason, Policy: ev.Policy, PolicyDigest: ev.PolicyDigest, Controller: ev.Controller,
		LatencyMs: ev.LatencyMs, Unclean: ev.Unclean, Node: ev.Node, Detail: ev.Detail,
	}
	if !ev.TopicID.IsZero() {
		out.TopicID = ev.TopicID.String()
	}
	return out
}

// Discard acks, unpublished, the events of the groups this node leads,
// when events are off: partition changes still append events, and an
// outbox nobody drains would fill and warn about dropping. It runs until
// ctx ends.
func Discard(ctx context.Context, store *raft.Store) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, g := range store.Groups() {
			if leader, ok := store.GroupLeader(g); !ok || leader != store.NodeID() {
				continue
			}
			if st, ok := store.Outbox(g); ok && st.Pending > 0 {
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				store.AckEvents(actx, g, st.LastSeq)
				cancel()
			}
		}
	}
}
