package events

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/reeve-edge/reeve/policy"
	"github.com/reeve-edge/reeve/raft"
)

// Recorder appends the events a node observes itself (nodes going up and
// down, policy modules loaded, refused or failing) to the cluster group's
// outbox, from where a Publisher sends them. Record never blocks its
// caller (the policy scanner, the election controller): events queue, and
// Run appends them in order.
type Recorder struct {
	store *raft.Store
	live  *policy.Liveness
	log   *slog.Logger
	// interval is how often node liveness is compared; timeout is the
	// silence after which a node counts as down (the leader timeout).
	interval, timeout time.Duration
	queue             chan raft.Event
}

// recordQueue bounds the events waiting for Run; past it Record drops and
// logs, which is all a node or policy event can be while Raft is stuck.
const recordQueue = 1024

// NewRecorder returns a recorder for a node whose liveness table is live;
// it watches nodes every interval and holds one down after timeout without
// a heartbeat. It does nothing until Run.
func NewRecorder(store *raft.Store, live *policy.Liveness, interval, timeout time.Duration, log *slog.Logger) *Recorder {
	return &Recorder{store: store, live: live, log: log, interval: interval, timeout: timeout,
		queue: make(chan raft.Event, recordQueue)}
}

// Record queues an event for the cluster group's outbox, stamped with this
// node's id when it names none.
func (r *Recorder) Record(ev raft.Event) {
	if ev.Node == 0 {
		ev.Node = r.store.NodeID()
	}
	select {
	case r.queue <- ev:
	default:
		r.log.Warn("events: queue full; event not recorded", "type", string(ev.Type), "policy", ev.Policy)
	}
}

// Run appends queued events and watches node liveness until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			evs := []raft.Event{ev}
			for len(r.queue) > 0 && len(evs) < recordQueue {
				evs = append(evs, <-r.queue)
			}
			r.append(ctx, evs)
		case <-t.C:
			r.watchNodes(ctx)
		}
	}
}

// watchNodes publishes node_up and node_down events: the cluster group's
// Raft leader compares every active node's liveness with what the cluster
// last reported of it (Store.NodesDown) and appends an event for each
// change. The cluster group's outbox drops a repeat, so a report that
// races another (a controller's ReportDown, a former leader's last round)
// is one event, and a leader that takes over reports what the cluster
// has not heard yet, a node's return included.
func (r *Recorder) watchNodes(ctx context.Context) {
	if leader, ok := r.store.GroupLeader(raft.ClusterGroup); !ok || leader != r.store.NodeID() {
		return // another node reports
	}
	down := r.store.NodesDown()
	var evs []raft.Event
	for _, n := range r.store.Nodes() {
		if n.State != raft.NodeActive {
			continue
		}
		alive := r.live.Alive(n.ID, r.timeout)
		if alive != slices.Contains(down, n.ID) {
			continue
		}
		typ, level := raft.EventNodeUp, "up"
		if !alive {
			typ, level = raft.EventNodeDown, "down"
		}
		evs = append(evs, raft.Event{Type: typ, Node: n.ID})
		r.log.Info("node "+level, "node", n.ID)
	}
	r.append(ctx, evs)
}

// ReportDown makes sure the cluster has reported nodes down before the
// caller, the election controller, moves leadership off them for their
// leader timeout, so a subscriber hears node_down before the
// leader_changed it causes. It appends a node_down for each node not yet
// reported, waiting for the commit as long as ctx allows; when the cluster
// group has no live leader to commit it (it was one of the dead nodes), or
// the commit takes longer, the events are queued and appended later, and
// the election goes ahead.
func (r *Recorder) ReportDown(ctx context.Context, nodes []uint64) {
	down := r.store.NodesDown()
	var evs []raft.Event
	for _, n := range nodes {
		if n != 0 && !slices.Contains(down, n) {
			evs = append(evs, raft.Event{Type: raft.EventNodeDown, Node: n})
		}
	}
	if len(evs) == 0 {
		return
	}
	// A cluster group led by one of the dead nodes must elect a leader
	// before it commits anything: the failover does not wait for that.
	if leader, ok := r.store.GroupLeader(raft.ClusterGroup); !ok || slices.Contains(nodes, leader) {
		for _, ev := range evs {
			r.Record(ev)
		}
		return
	}
	if err := r.store.AppendEvents(ctx, raft.ClusterGroup, evs); err != nil {
		for _, ev := range evs {
			r.Record(ev)
		}
	}
}

// append adds events to the cluster group's outbox; events that cannot be
// appended are logged and lost, which is all a node or policy event can be
// when Raft has no quorum.
func (r *Recorder) append(ctx context.Context, evs []raft.Event) {
	if len(evs) == 0 {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.store.AppendEvents(actx, raft.ClusterGroup, evs); err != nil {
		r.log.Warn("events: not recorded", "events", len(evs), "type", string(evs[0].Type), "err", err)
	}
}

// PolicyLoad is a policy_loaded event, or policy_rejected when err is set,
// for the module file with the given digest that the rule for topics runs.
func PolicyLoad(file, digest string, err error, topics string) raft.Event {
	if err != nil {
		return raft.Event{Type: raft.EventPolicyRejected, Policy: file, PolicyDigest: digest, Detail: err.Error()}
	}
	return raft.Event{Type: raft.EventPolicyLoaded, Policy: file, PolicyDigest: digest, Detail: "topics " + topics}
}

// PolicyFellBack is a policy_fell_back event.
func PolicyFellBack(r policy.FallbackReport) raft.Event {
	return raft.Event{Type: raft.EventPolicyFellBack, Policy: r.Policy, PolicyDigest: r.Digest,
		Detail: fmt.Sprintf("%s: %s (%d partitions decided by first-isr)", r.Cause, r.Err, r.Partitions)}
}
