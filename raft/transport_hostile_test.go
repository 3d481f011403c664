package raft

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// rawPeer is a test's hand-made client of a node's raft port.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc}
}

// greet sends a hello and returns the listener's answer, raw and decoded.
func (p *rawPeer) greet(deployment uint64) ([]byte, hello) {
	p.t.Helper()
	p.write(hello{version: wireVersion, kindStatus: kindMessages, deployment: deployment}.encode())
	var b [helloSize]byte
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.nc, b[:]); err != nil {
		p.t.Fatalf("read the hello's answer: %v", err)
	}
	h, err := parseHello(b)
	if err != nil {
		p.t.Fatalf("the answer to a hello = %x: %v", b, err)
	}
	return b[:], h
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("write to %s: %v", p.nc.RemoteAddr(), err)
	}
}

func (p *rawPeer) sendBatch(b pb.MessageBatch) {
	p.t.Helper()
	payload, err := b.Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	frame := make([]byte, frameHeaderLen+len(payload))
	copy(frame[frameHeaderLen:], payload)
	putFrameHeader(frame, frameBatch)
	p.write(frame)
}

// closedWithin waits for the node to close the connection and returns how
// long that took; it fails the test if the node sends anything or keeps
// the connection open past limit.
func (p *rawPeer) closedWithin(limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	p.nc.SetReadDeadline(start.Add(limit))
	n, err := p.nc.Read(make([]byte, 64))
	took := time.Since(start)
	var ne net.Error
	switch {
	case n > 0:
		p.t.Fatalf("the node sent %d more bytes, want the connection closed", n)
	case errors.As(err, &ne) && ne.Timeout():
		p.t.Fatalf("the connection is still open after %v", limit)
	}
	return took
}

// TestTransport_hostilePeerCannotCrashTheCluster replays the report of a
// single client that took down a three-node cluster through its raft port:
// each node gets a hello with a wrong deployment id, a batch holding a
// message with To = 0 (and the local message types Dragonboat panics on or
// obeys), forged Heartbeats at term 1000 from a node id that is no member,
// and a frame header declaring 256 MiB with no payload. Every node must
// refuse or drop all of it, stay up, keep its groups led by members, and
// keep committing.
func TestTransport_hostilePeerCannotCrashTheCluster(t *testing.T) {
	const stall = 500 * time.Millisecond
	saved := defaultTransportLimits
	defaultTransportLimits = transportLimits{idle: 30 * time.Second, stall: stall}
	t.Cleanup(func() { defaultTransportLimits = saved }) // after the stores close: cleanups run last first

	logs := map[uint64]*lockedBuffer{}
	c := newTestCluster(t, 3, func(cfg *Config) {
		buf := &lockedBuffer{}
		logs[cfg.NodeID] = buf
		cfg.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	right := deploymentID("test")
	groups := c.stores[1].Groups()
	if len(groups) != 5 {
		t.Fatalf("Groups() = %v, want the cluster group and 4 partition groups", groups)
	}

	attacker := map[uint64]string{} // the raw client's address, by node attacked
	for id := uint64(1); id <= 3; id++ {
		addr := c.cfgs[id].RaftAddress
		t.Run(fmt.Sprintf("node %d", id), func(t *testing.T) {
			// (1) The wrong deployment id is refused, and the refusal does
			// not tell the right one.
			p := dialRaw(t, addr)
			raw, h := p.greet(right + 1)
			if h.kindStatus != statusWrongDeployment {
				t.Errorf("hello with a wrong deployment id: status = %d, want %d", h.kindStatus, statusWrongDeployment)
			}
			var be, le [8]byte
			binary.BigEndian.PutUint64(be[:], right)
			binary.LittleEndian.PutUint64(le[:], right)
			if h.deployment != 0 || bytes.Contains(raw, be[:]) || bytes.Contains(raw, le[:]) {
				t.Errorf("refusal = %x, names deployment %d; want it to reveal nothing (the right id is %d)", raw, h.deployment, right)
			}
			p.closedWithin(5 * time.Second)

			// (2) A correct hello, then a batch with To = 0 and with the
			// local types a peer must never send.
			p = dialRaw(t, addr)
			if _, h := p.greet(right); h.kindStatus != statusAccepted {
				t.Fatalf("hello with the right deployment id: status = %d, want accepted", h.kindStatus)
			}
			local := p.nc.LocalAddr().String()
			attacker[id] = local
			member := id%3 + 1 // another node of the cluster
			bad := []pb.Message{
				{Type: pb.Heartbeat, To: 0, From: member, ShardID: ClusterGroup, Term: 1},
				{Type: pb.LocalTick, To: id, From: member, ShardID: ClusterGroup, Hint: 1 << 40},
				{Type: pb.Election, To: id, From: member, ShardID: ClusterGroup},
				{Type: pb.ConfigChangeEvent, To: id, From: member, ShardID: ClusterGroup, Hint: 99, HintHigh: 7},
				{Type: pb.LeaderTransfer, To: id, From: member, ShardID: ClusterGroup},
				{Type: pb.RequestPreVote, To: id, From: member, ShardID: ClusterGroup},
				{Type: pb.MessageType(200), To: id, From: member, ShardID: ClusterGroup, Term: 1},
				{Type: pb.Replicate, To: id, From: member, ShardID: ClusterGroup, Term: 1, LogIndex: 5,
					Entries: []pb.Entry{{Index: 9, Term: 1}}},
				{Type: pb.Heartbeat, To: id, From: member, ShardID: 77, Term: 1000},
			}
			for _, m := range bad {
				p.sendBatch(pb.MessageBatch{DeploymentId: right, BinVer: raftio.TransportBinVersion, Requests: []pb.Message{m}})
			}

			// (3) Heartbeats at term 1000 from a node id that is no member,
			// to every group, claiming the raw client's address.
			var forged []pb.Message
			for _, g := range groups {
				forged = append(forged, pb.Message{Type: pb.Heartbeat, To: id, From: 99, ShardID: g, Term: 1000, Commit: 0})
			}
			p.sendBatch(pb.MessageBatch{DeploymentId: right, BinVer: raftio.TransportBinVersion, SourceAddress: local, Requests: forged})

			// (4) A frame header declaring 256 MiB, then nothing.
			var header [frameHeaderLen]byte
			header[0] = frameBatch
			binary.BigEndian.PutUint32(header[4:], 256<<20)
			p.write(header[:])
			took := p.closedWithin(stall + 5*time.Second)
			if took > stall+time.Second {
				t.Errorf("a frame with a missing payload was cut off after %v, want about %v", took, stall)
			}
		})
	}

	// Still running, led by members, at the terms a real election gives.
	time.Sleep(time.Second) // several election timeouts (20 ticks of 10 ms)
	for id, s := range c.stores {
		for _, g := range groups {
			if err := s.Barrier(ctxT(t), g); err != nil {
				t.Errorf("node %d, group %d: Barrier = %v, want the node up and the group led", id, g, err)
			}
			leader, term, valid, err := s.nh.GetLeaderID(g)
			if err != nil || !valid || leader < 1 || leader > 3 || term >= 1000 {
				t.Errorf("node %d, group %d: GetLeaderID = %d, term %d, valid %v, %v; want a member (1..3) at a term below 1000",
					id, g, leader, term, valid, err)
			}
		}
	}
	topic, err := c.stores[2].CreateTopic(ctxT(t), TopicSpec{Name: "after-the-attack", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic after the attack = %v", err)
	}
	c.topicEverywhere(topic)

	for id := uint64(1); id <= 3; id++ {
		// The forged batch's messages are counted, not only logged.
		if n := c.stores[id].mets.dropped.Get(); n == 0 {
			t.Errorf("node %d: reeve_raft_messages_dropped_total = 0 after the forged batches", id)
		}
		l := logs[id].String()
		for _, want := range []string{"message has no target replica", "sender is not a member of the group",
			"message type is not sent between nodes", "refused a node of another cluster"} {
			if !strings.Contains(l, want) {
				t.Errorf("node %d's log has no warning %q:\n%s", id, want, l)
			}
		}
		if !strings.Contains(l, "remote="+attacker[id]) {
			t.Errorf("node %d's warnings do not name the remote address %s:\n%s", id, attacker[id], l)
		}
	}
}

// TestTransport_nodeDownDuringAJoinCatchesUpFromTheNewcomer: the sender
// check must not strand a node that was down while another joined. Node 3
// restarts knowing only nodes 1 to 3, and every partition group is led by
// node 4, of which its partition groups have applied nothing yet; once its
// cluster group (led by a node it knows) tells it of node 4, it must
// accept node 4's messages and catch up.
func TestTransport_nodeDownDuringAJoinCatchesUpFromTheNewcomer(t *testing.T) {
	c := newTestCluster(t, 3)
	ctx := ctxT(t)
	c.stop(3)
	cfg := nodeConfig(t, 4, t.TempDir())
	cfg.Join = true
	c.cfgs[4] = cfg
	c.start(4)
	if err := c.stores[1].AddNode(ctx, 4, cfg.RaftAddress, false); err != nil {
		t.Fatalf("AddNode(4) = %v", err)
	}
	c.waitReady(4)
	waitVoter(t, c.stores[1], 4)

	lead := func(g, want uint64) {
		eventually(t, fmt.Sprintf("node %d leads group %d", want, g), func() error {
			if l, ok := c.stores[1].GroupLeader(g); ok && l == want {
				return nil
			}
			if err := c.stores[1].nh.RequestLeaderTransfer(g, want); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
			return fmt.Errorf("not yet")
		})
	}
	lead(ClusterGroup, 1)
	for _, g := range c.stores[1].Groups()[1:] {
		lead(g, 4)
	}
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "while-3-was-down", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}

	c.start(3)
	c.waitReady(3)
	c.topicEverywhere(topic)
	for _, g := range c.stores[3].Groups()[1:] {
		if l, ok := c.stores[3].GroupLeader(g); !ok || l != 4 {
			t.Errorf("node 3 sees group %d led by %d (known %v), want node 4", g, l, ok)
		}
	}
}
