package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/policy"
)

// natsServer runs a real nats-server in the test process, with JetStream
// and a stream capturing every reeve event with a 2-minute duplicate
// window, and returns its client URL.
func natsServer(t *testing.T) (*server.Server, string) {
	t.Helper()
	return natsServerOn(t, "127.0.0.1")
}

// natsServerOn is natsServer listening on host.
func natsServerOn(t *testing.T, host string) (*server.Server, string) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: host, Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"reeve.>"},
		Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	return ns, ns.ClientURL()
}

// received is one event message as a subscriber saw it.
type received struct {
	at     time.Time
	msgID  string
	header nats.Header
	env    api.Envelope
}

// subscribe collects the events published on subject.
func subscribe(t *testing.T, url, subject string) func() []received {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var mu sync.Mutex
	var got []received
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) {
		r := received{at: time.Now(), msgID: m.Header.Get(nats.MsgIdHdr), header: m.Header}
		if err := json.Unmarshal(m.Data, &r.env); err != nil {
			t.Errorf("event on %s: %v: %s", m.Subject, err, m.Data)
		}
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	return func() []received {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestEvents_failoverPublishesOneLeaderChangedEvent is the failover test
// with a subscriber on a real nats-server: the election is published once
// (by id), with every field right, within 1 s of its commit, and a
// JetStream stream holds it once.
func TestEvents_failoverPublishesOneLeaderChangedEvent(t *testing.T) {
	_, url := natsServer(t)
	events := subscribe(t, url, "reeve.proc-test.leader_changed.fail~over.0")
	nodeEvents := subscribe(t, url, "reeve.proc-test.node_down.>")
	upEvents := subscribe(t, url, "reeve.proc-test.node_up.>")
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), fmt.Sprintf("events:nats_url = %q", url))...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "fail.over", 1, 3)
	waitTopic(t, procs[0], "fail.over", 1)
	if leader, _ := leaderOf(t, procs[0], "fail.over"); leader != 1 {
		moveLeader(t, procs[0], "fail.over", 0, 1)
	}
	_, epoch := leaderOf(t, procs[0], "fail.over")
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("fail.over"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// reeve events --follow, piped, prints JSON lines.
	follow := exec.Command(reeveBin, "events", "--follow", "--nats", url, "--subject", "reeve.proc-test.>")
	var followOut bytes.Buffer
	var followMu sync.Mutex
	follow.Stdout = writerFunc(func(b []byte) (int, error) {
		followMu.Lock()
		defer followMu.Unlock()
		return followOut.Write(b)
	})
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follow.Process.Kill(); follow.Wait() })
	time.Sleep(300 * time.Millisecond) // subscribed
	procs[0].kill(t, syscall.SIGKILL)
	var newLeader uint64
	for deadline := time.Now().Add(testLeaderTimeout + 5*time.Second); ; time.Sleep(20 * time.Millisecond) {
		if newLeader, _ = leaderOf(t, procs[1], "fail.over"); newLeader != 0 && newLeader != 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader")
		}
	}
	// The commit's time, from the deciding controller's decision log.
	var committed time.Time
	var controller uint64
	for _, p := range procs[1:] {
		for _, r := range decisionLog(p) {
			if r.Topic == "fail.over" && r.Reason == string(policy.ReasonLeaderTimeout) && r.Committed {
				committed, controller = r.Time, uint64(p.id)
			}
		}
	}
	if committed.IsZero() {
		t.Fatal("no committed election in the survivors' decision logs")
	}
	time.Sleep(2 * time.Second) // let any duplicate arrive
	follow.Process.Signal(syscall.SIGTERM)
	follow.Wait()
	followMu.Lock()
	lines := strings.Split(strings.TrimSpace(followOut.String()), "\n")
	followMu.Unlock()
	printed := false
	for _, l := range lines {
		var env api.Envelope
		if json.Unmarshal([]byte(l), &env) == nil && env.Type == "io.reeve.leader_changed.v1" && env.Data.Topic == "fail.over" &&
			env.Data.Reason == "leader_timeout" {
			printed = true
		}
	}
	if !printed {
		t.Errorf("reeve events --follow printed no leader_changed line for the failover:\n%s", strings.Join(lines, "\n"))
	}
	// The dead node was reported down once, however many reported it (the
	// cluster group's leader, the controller that moved its partitions).
	downs := map[string]received{}
	for _, r := range nodeEvents() {
		if r.env.Data.Node == 1 {
			downs[r.env.ID] = r
		}
	}
	if len(downs) != 1 {
		t.Errorf("%d node_down events for node 1, want 1", len(downs))
	}
	for _, r := range downs {
		t.Logf("node_down for node 1 arrived %v after the election's commit", r.at.Sub(committed).Round(time.Millisecond))
	}
	ids := map[string][]received{}
	for _, r := range events() {
		if r.env.Data.Reason == "leader_timeout" {
			ids[r.env.ID] = append(ids[r.env.ID], r)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d leader_timeout events (by id), want 1: %+v", len(ids), ids)
	}
	for id, rs := range ids {
		r := rs[0]
		if d := r.at.Sub(committed); d > time.Second {
			t.Errorf("event %s arrived %v after the commit, want within 1s", id, d)
		} else {
			t.Logf("event %s arrived %v after the commit (%d copies)", id, d.Round(time.Millisecond), len(rs))
		}
		e, d := r.env, r.env.Data
		checks := []struct {
			what string
			ok   bool
		}{
			{"Nats-Msg-Id = id", r.msgID == id && id != ""},
			{"specversion 1.0", e.SpecVersion == "1.0"},
			{"type io.reeve.leader_changed.v1", e.Type == "io.reeve.leader_changed.v1" && d.Type == "leader_changed"},
			{"source names the cluster", e.Source != "" && strings.Contains(e.Source, "proc-test")},
			{"subject fail.over/0", e.Subject == "fail.over/0"},
			{"topic and partition", d.Topic == "fail.over" && d.Partition == 0},
			{"previous leader 1", d.PreviousLeader == 1},
			{"new leader", d.Leader == newLeader},
			{"epoch one higher", d.LeaderEpoch == epoch+1},
			{"dead leader out of the ISR", !slices.Contains(d.ISR, 1) && slices.Contains(d.ISR, newLeader)},
			{"three replicas", len(d.Replicas) == 3},
			{"policy first-isr", d.Policy == "first-isr"},
			{"controller", d.Controller == controller},
			{"latency", d.LatencyMs > 0},
			{"clean", !d.Unclean},
			{"time", !e.Time.IsZero() && e.Time.Sub(committed).Abs() < 5*time.Second},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("event %s: want %s; got %+v", id, c.what, e)
			}
		}
	}
	// Back, the node is reported up once.
	procs[0].start(t)
	procs[0].waitReady(t)
	ups := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(ups) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, r := range upEvents() {
			if r.env.Data.Node == 1 {
				ups[r.env.ID] = true
			}
		}
	}
	time.Sleep(time.Second) // let a duplicate arrive
	for _, r := range upEvents() {
		if r.env.Data.Node == 1 {
			ups[r.env.ID] = true
		}
	}
	if len(ups) != 1 {
		t.Errorf("%d node_up events for node 1 after its restart, want 1", len(ups))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestEvents_publisherKilledAfterTheCommitStillDelivers kills the node that
// publishes a group's events right after an election's commit, twice: once
// before it published (the event must still arrive, from the group's next
// leader) and once after it published but before it recorded that (the
// event arrives twice, with one id, and the JetStream stream keeps one).
func TestEvents_publisherKilledAfterTheCommitStillDelivers(t *testing.T) {
	ns, url := natsServer(t)
	_ = ns
	const subject = "reeve.proc-test.leader_changed.repub.0"
	events := subscribe(t, url, subject)
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), fmt.Sprintf("events:nats_url = %q", url))...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	createTopic(t, procs, "repub", 1, 3)
	waitFullISR(t, procs[0], "repub", 3, 30*time.Second)
	for _, mode := range []string{"hold", "noack"} {
		live := procs[0]
		_, publisherID := groupLeaderOf(t, live, "repub")
		pub := procs[publisherID-1]
		for _, p := range procs {
			if p != pub && p.cmd.ProcessState == nil {
				live = p
			}
		}
		if err := os.WriteFile(pub.eventsHook(), []byte(mode), 0o644); err != nil {
			t.Fatal(err)
		}
		before := len(events())
		ps, _ := partitionViews(live, "repub", true)
		to := ps[0].ISR[0]
		for _, r := range ps[0].ISR {
			if r != ps[0].Leader {
				to = r
			}
		}
		electTo(t, live, "repub", 0, to)
		time.Sleep(time.Second)
		got := events()[before:]
		if mode == "hold" && len(got) != 0 {
			t.Fatalf("%s: the held publisher published %d events", mode, len(got))
		}
		if mode == "noack" && len(got) != 1 {
			t.Fatalf("%s: want the event published once before the kill, got %d", mode, len(got))
		}
		pub.kill(t, syscall.SIGKILL)
		os.Remove(pub.eventsHook())
		killed := time.Now()
		want := 1
		if mode == "noack" {
			want = 2
		}
		for len(events()[before:]) < want {
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("%s: %d copies of the event after node %d (the publisher) was killed, want %d", mode, len(events()[before:]), pub.id, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		got = events()[before:]
		for _, r := range got {
			if r.env.ID != got[0].env.ID || r.env.Data.Leader != to || r.env.Data.Reason != "manual" {
				t.Errorf("%s: copies differ or describe another change: %+v", mode, got)
			}
		}
		t.Logf("%s: event %s delivered %d time(s), the last %v after the publisher was killed", mode, got[0].env.ID, len(got),
			got[len(got)-1].at.Sub(killed).Round(time.Millisecond))
		pub.start(t) // back for the next round's quorum
		pub.waitReady(t)
		waitFullISR(t, live, "repub", 3, 60*time.Second)
		waitSettled(t, procs, 60*time.Second)
	}
	// The stream holds each event once.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, r := range events() {
		distinct[r.env.ID] = true
	}
	if n := info.State.Subjects[subject]; n != uint64(len(distinct)) {
		t.Errorf("the stream holds %d messages on %s for %d distinct events", n, subject, len(distinct))
	}
}

// TestEvents_natsOutageHoldsEventsInOrder stops the NATS server for 60 s
// during three elections: the elections take no longer than with NATS up,
// and once NATS is back the three events arrive, in order.
func TestEvents_natsOutageHoldsEventsInOrder(t *testing.T) {
	store := t.TempDir()
	start := func(port int) *server.Server {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true, JetStream: true, StoreDir: store})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		return ns
	}
	ns := start(server.RANDOM_PORT)
	port := ns.Addr().(*net.TCPAddr).Port
	url := ns.ClientURL()
	const subject = "reeve.proc-test.leader_changed.outage.0"
	// The events are read back from a JetStream stream: a plain
	// subscriber might reconnect after reeve has published the held ones.
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := js.CreateStream(sctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"reeve.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	scancel()
	// events returns what the stream holds on subject, oldest first.
	events := func() []received {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cons, err := js.OrderedConsumer(ctx, "EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
		if err != nil {
			return nil
		}
		var out []received
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
			if err != nil {
				return out
			}
			var r received
			r.msgID = m.Headers().Get(nats.MsgIdHdr)
			if json.Unmarshal(m.Data(), &r.env) == nil {
				out = append(out, r)
			}
		}
	}
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), fmt.Sprintf("events:nats_url = %q", url))...)
	createTopic(t, procs, "outage", 1, 3)
	waitFullISR(t, procs[0], "outage", 3, 30*time.Second)
	// elect moves partition 0 to the next in-sync replica and returns how
	// long the election took.
	elect := func() time.Duration {
		ps, err := partitionViews(procs[0], "outage", true)
		if err != nil || len(ps) != 1 {
			t.Fatalf("describe outage: %v", err)
		}
		to := ps[0].Leader%3 + 1
		begin := time.Now()
		electTo(t, procs[0], "outage", 0, to)
		return time.Since(begin)
	}
	var up time.Duration
	for range 3 {
		up = max(up, elect())
	}
	for deadline := time.Now().Add(10 * time.Second); len(events()) < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("with NATS up, %d of 3 events arrived", len(events()))
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	stopped := time.Now()
	var down time.Duration
	for range 3 {
		down = max(down, elect())
		time.Sleep(time.Second)
	}
	t.Logf("slowest election: %v with NATS up, %v with NATS down", up.Round(time.Millisecond), down.Round(time.Millisecond))
	if down > 2*up+500*time.Millisecond {
		t.Errorf("elections took up to %v with NATS down, %v with it up", down, up)
	}
	time.Sleep(time.Until(stopped.Add(60 * time.Second)))
	ns = start(port)
	t.Cleanup(ns.Shutdown)
	for deadline := time.Now().Add(30 * time.Second); len(events()) < 6; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after NATS came back, %d of the 3 held events arrived", len(events())-3)
		}
	}
	all := events()
	if len(all) != 6 {
		t.Fatalf("the stream holds %d events, want 3 from before the outage and 3 from during it", len(all))
	}
	got := all[3:]
	for i := 1; i < len(got); i++ {
		if got[i].env.Data.LeaderEpoch <= got[i-1].env.Data.LeaderEpoch || got[i].env.ID == got[i-1].env.ID {
			t.Errorf("held events out of order or repeated: %s epoch %d, then %s epoch %d",
				got[i-1].env.ID, got[i-1].env.Data.LeaderEpoch, got[i].env.ID, got[i].env.Data.LeaderEpoch)
		}
	}
	t.Logf("the 3 held events are in the stream, in order, %v after NATS came back", time.Since(stopped.Add(60*time.Second)).Round(time.Millisecond))
}

// TestEvents_embeddedJetStreamKeepsTheEvents runs nodes with the embedded
// NATS server and JetStream on: the node publishing a group's events keeps
// them in the REEVE_EVENTS stream, configured as documented.
func TestEvents_embeddedJetStreamKeepsTheEvents(t *testing.T) {
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...), "events:embedded_jetstream = true")...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createTopic(t, procs, "kept", 1, 3)
	waitFullISR(t, procs[0], "kept", 3, 30*time.Second)
	ps, _ := partitionViews(procs[0], "kept", true)
	electTo(t, procs[0], "kept", 0, ps[0].Leader%3+1)
	_, publisher := groupLeaderOf(t, procs[0], "kept")
	// The publisher's embedded server, from its log.
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(100 * time.Millisecond) {
		data, _ := os.ReadFile(procs[publisher-1].logPath)
		for _, line := range strings.Split(string(data), "\n") {
			var l struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "events: embedded NATS server listening" {
				url = l.URL
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no embedded NATS server in the publisher's log")
		}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	const subject = "reeve.proc-test.leader_changed.kept.0"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := js.Stream(ctx, "REEVE_EVENTS")
		if err != nil {
			t.Fatalf("stream REEVE_EVENTS on %s: %v", url, err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		cfg := info.Config
		if cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute || !slices.Equal(cfg.Subjects, []string{"reeve.>"}) {
			t.Fatalf("stream config = %+v", cfg)
		}
		if info.State.Subjects[subject] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d messages on %s, want 1", info.State.Subjects[subject], subject)
		}
	}
}

// TestEvents_nkeyAuthentication points the nodes at a NATS server that
// only admits an nkey user: with events.nkey_seed_file they publish, and a
// leader change arrives.
func TestEvents_nkeyAuthentication(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "reeve.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	url := ns.ClientURL()
	// The subscriber authenticates with the same key.
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	got := make(chan *nats.Msg, 16)
	nc.ChanSubscribe("reeve.proc-test.leader_changed.auth.0", got)
	nc.Flush()
	procs := newProcCluster(t, 3, append(append([]string{}, electionConfig...),
		fmt.Sprintf("events:nats_url = %q", url), fmt.Sprintf("events:nkey_seed_file = %q", seedFile))...)
	createTopic(t, procs, "auth", 1, 3)
	waitFullISR(t, procs[0], "auth", 3, 30*time.Second)
	ps, _ := partitionViews(procs[0], "auth", true)
	electTo(t, procs[0], "auth", 0, ps[0].Leader%3+1)
	select {
	case m := <-got:
		if m.Header.Get(nats.MsgIdHdr) == "" {
			t.Errorf("event without Nats-Msg-Id: %s", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no leader_changed event through the nkey-authenticated connection")
	}
}
