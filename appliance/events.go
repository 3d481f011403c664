package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reeve-edge/reeve/raft"
)

// publisher drains the event outboxes of the Raft groups this node leads
// onto NATS, in order, and records its progress through Raft. A node that
// becomes a group's leader starts from the group's mark, so events the
// previous leader published but had not recorded are published again: the
// Nats-Msg-Id header (the event's id) lets a JetStream stream store them
// once.
type publisher struct {
	store  *raft.Store
	conn   *nats.Conn
	prefix string
	log    *slog.Logger

	// testHook, from REEVE_TEST_EVENTS_HOOK, names a file a test creates to
	// make this node misbehave as a crash would: "hold" publishes nothing
	// (the node died right after the commit), "noack" publishes once but
	// never records it (the node died after publishing). Unset in
	// production.
	testHook  string
	published map[string]bool // with "noack": what was sent and not recorded

	// sent counts the events the server confirmed (reeve_events_published_total).
	sent atomic.Uint64
}

// hook returns the test hook's current mode, "" normally.
func (p *publisher) hook() string {
	if p.testHook == "" {
		return ""
	}
	b, err := os.ReadFile(p.testHook)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// publishBatch bounds the events one drain publishes before recording its
// progress.
const publishBatch = 256

// publishRetry is how often a publisher retries while NATS is away, and
// looks for groups it came to lead.
const publishRetry = 500 * time.Millisecond

func (p *publisher) run(ctx context.Context) {
	t := time.NewTicker(publishRetry)
	defer t.Stop()
	for {
		changed := p.store.OutboxChanged()
		for _, g := range p.store.Groups() {
			if leader, ok := p.store.GroupLeader(g); !ok || leader != p.store.NodeID() {
				continue
			}
			for p.drain(ctx, g) {
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
func (p *publisher) drain(ctx context.Context, g uint64) bool {
	if !p.conn.IsConnected() {
		return false
	}
	hook := p.hook()
	if hook == "hold" {
		return false
	}
	evs, _ := p.store.PendingEvents(g, publishBatch)
	if len(evs) == 0 {
		return false
	}
	sent := uint64(0)
	for _, ev := range evs {
		if hook == "noack" {
			if p.published == nil {
				p.published = map[string]bool{}
			}
			if p.published[p.store.EventID(g, ev.Seq)] {
				continue
			}
			p.published[p.store.EventID(g, ev.Seq)] = true
		}
		msg, err := p.message(g, ev)
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
	if hook == "noack" {
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

// Envelope is the JSON body of every event message: CloudEvents 1.0
// attributes around the event itself (docs/events.md).
type Envelope struct {
	SpecVersion     string     `json:"specversion"`
	ID              string     `json:"id"`
	Type            string     `json:"type"`
	Source          string     `json:"source"`
	Time            time.Time  `json:"time"`
	Subject         string     `json:"subject,omitempty"`
	DataContentType string     `json:"datacontenttype"`
	Data            raft.Event `json:"data"`
}

// eventTypePrefix and eventTypeVersion make an event's versioned type,
// e.g. io.reeve.leader_changed.v1.
const (
	eventTypePrefix  = "io.reeve."
	eventTypeVersion = ".v1"
)

// message builds the NATS message of one event.
func (p *publisher) message(g uint64, ev raft.Event) (*nats.Msg, error) {
	cluster := p.store.ClusterName()
	env := Envelope{
		SpecVersion: "1.0", ID: ev.ID, Type: eventTypePrefix + string(ev.Type) + eventTypeVersion,
		Source: fmt.Sprintf("reeve://%s/group/%d", cluster, g), Time: time.UnixMilli(ev.Time).UTC(),
		DataContentType: "application/json", Data: ev,
	}
	if env.ID == "" {
		env.ID = p.store.EventID(g, ev.Seq)
	}
	if ev.Topic != "" {
		env.Subject = ev.Topic + "/" + strconv.Itoa(int(ev.Partition))
	}
	data, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(EventSubject(p.prefix, cluster, ev))
	msg.Header.Set(nats.MsgIdHdr, env.ID)
	msg.Data = data
	return msg, nil
}

// EventSubject is where an event is published:
// <prefix>.<cluster>.<type>.<topic>.<partition> for a partition's events,
// <prefix>.<cluster>.<type>.<node> for a node's, and
// <prefix>.<cluster>.<type>.<policy> for a policy's (its name with '.'
// written '~', as topics are; the node that loaded or ran it is in the
// data).
func EventSubject(prefix, cluster string, ev raft.Event) string {
	base := prefix + "." + cluster + "." + string(ev.Type)
	switch {
	case ev.Type == raft.EventPolicyLoaded || ev.Type == raft.EventPolicyRejected || ev.Type == raft.EventPolicyFellBack:
		return base + "." + policyToken(ev.Policy)
	case ev.Topic != "":
		return base + "." + TopicToken(ev.Topic) + "." + strconv.Itoa(int(ev.Partition))
	case ev.Node != 0:
		return base + "." + strconv.FormatUint(ev.Node, 10)
	}
	return base
}

// policyToken is a policy's name as a subject token: '.' written '~' as in
// topics, and anything NATS would not take in a token ('*', '>', white
// space, ...) written '_'.
func policyToken(name string) string {
	b := []byte(TopicToken(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '~') {
			b[i] = '_'
		}
	}
	return string(b)
}

// discardEvents acks, unpublished, the events of the groups this node
// leads, when events are off: partition changes still append events, and
// an outbox nobody drains would fill and warn about dropping.
func discardEvents(ctx context.Context, store *raft.Store) {
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
