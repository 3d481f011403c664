package raft

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/internal/testpki"
)

// withTLS gives a test transport node id's certificate of pki and, when
// mt is not nil, a member table.
func withTLS(t *testing.T, pki *testpki.PKI, id uint64, mt *memberTable) func(*transportFactory) {
	return func(f *transportFactory) {
		f.tls = newPeerTLS(pki.NodeCert(t, id), pki.Cluster)
		f.members = mt
	}
}

// TestTransport_tlsDialerChecksTheNodeItReached: over TLS, a dialer sends
// only to the node its member table knows at the address it dialed, and
// the listener believes batches and chunks only from the node the dialer's
// certificate names; a plain dialer and a plain listener get nowhere.
func TestTransport_tlsDialerChecksTheNodeItReached(t *testing.T) {
	const dep = 5
	pki := testpki.New(t, "test")
	b := startPeer(t, "127.0.0.1:0", dep, nil, withTLS(t, pki, 3, nil))
	mt := &memberTable{self: 1}
	mt.publish(map[uint64]map[uint64]string{3: {2: b.addr, 3: "127.0.0.1:1"}}, nil, nil)
	a := startPeer(t, "127.0.0.1:0", dep, nil, withTLS(t, pki, 1, mt))
	ctx := context.Background()

	if _, err := a.tr.GetConnection(ctx, b.addr); !errors.Is(err, errWrongNode) || !strings.Contains(err.Error(), "node 3") {
		t.Fatalf("GetConnection to node 3 at node 2's address = %v, want %v naming node 3", err, errWrongNode)
	}
	if _, err := a.tr.GetSnapshotConnection(ctx, b.addr); !errors.Is(err, errWrongNode) {
		t.Fatalf("GetSnapshotConnection to node 3 at node 2's address = %v, want %v", err, errWrongNode)
	}

	mt.publish(map[uint64]map[uint64]string{3: {2: "127.0.0.1:1", 3: b.addr}}, nil, nil)
	conn, err := a.tr.GetConnection(ctx, b.addr)
	if err != nil {
		t.Fatalf("GetConnection to node 3 at its address = %v", err)
	}
	defer conn.Close()
	forged := testBatch(dep, 4)
	forged.Requests[0].From, forged.Requests[1].From = 2, 2
	if err := conn.SendMessageBatch(forged); err != nil {
		t.Fatal(err)
	}
	want := testBatch(dep, 4)
	if err := conn.SendMessageBatch(want); err != nil {
		t.Fatal(err)
	}
	sameBatch(t, receive(t, b.batches, "batch"), want) // the forged one was dropped whole
	if l := b.logs.String(); !strings.Contains(l, whyNotPeer) {
		t.Errorf("no warning %q in the listener's log:\n%s", whyNotPeer, l)
	}

	snap, err := a.tr.GetSnapshotConnection(ctx, b.addr)
	if err != nil {
		t.Fatalf("GetSnapshotConnection = %v", err)
	}
	if err := snap.SendChunk(testChunk(dep, 0, 1, []byte("snap"))); err != nil {
		t.Fatal(err)
	}
	snap.Close()
	if c := receive(t, b.chunks, "chunk"); c.From != 1 {
		t.Errorf("chunk from %d, want 1", c.From)
	}
	snap, err = a.tr.GetSnapshotConnection(ctx, b.addr)
	if err != nil {
		t.Fatalf("GetSnapshotConnection = %v", err)
	}
	c := testChunk(dep, 0, 1, []byte("snap"))
	c.From = 2
	snap.SendChunk(c)
	<-snap.(*snapshotConn).l.gone
	snap.Close()
	if len(b.chunks) != 0 {
		t.Error("the listener handled a chunk sent as node 2 on node 1's certificate")
	}

	plain := startPeer(t, "127.0.0.1:0", dep, nil)
	if _, err := plain.tr.GetConnection(ctx, b.addr); err == nil {
		t.Error("a plain dialer got a connection to a TLS listener")
	}
	if _, err := a.tr.GetConnection(ctx, plain.addr); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("GetConnection to a plain listener = %v, want a failed TLS handshake", err)
	}
	if len(plain.batches) != 0 {
		t.Error("the plain listener handled a batch")
	}
}

// TestTransport_tlsHandshakeIsBounded: a dialer that sends nothing, or
// the start of a ClientHello and then nothing, is cut off after the
// handshake deadline.
func TestTransport_tlsHandshakeIsBounded(t *testing.T) {
	saved := tlsHandshakeTimeout
	tlsHandshakeTimeout = 300 * time.Millisecond
	t.Cleanup(func() { tlsHandshakeTimeout = saved })
	pki := testpki.New(t, "test")
	b := startPeer(t, "127.0.0.1:0", 5, nil, withTLS(t, pki, 2, nil))
	for _, send := range [][]byte{nil, {0x16, 0x03, 0x01, 0x02, 0x00, 0x01}} {
		p := dialRaw(t, b.addr)
		if send != nil {
			p.write(send)
		}
		if took := p.closedWithin(5 * time.Second); took > 2*time.Second {
			t.Errorf("sent %x: closed after %v, want about %v", send, took, tlsHandshakeTimeout)
		}
	}
}

// TestFilterBatch_joiningNodeBelievesOnlyTheCertificatesNode: a node that
// joins knows no member until its first membership arrives; with TLS it
// still believes a sender only as the node its certificate names.
func TestFilterBatch_joiningNodeBelievesOnlyTheCertificatesNode(t *testing.T) {
	mt := &memberTable{self: 4}
	mt.publish(map[uint64]map[uint64]string{0: nil, 3: nil}, nil, nil)
	b := pb.MessageBatch{SourceAddress: "10.0.0.1:9093", Requests: []pb.Message{
		{Type: pb.Heartbeat, To: 4, From: 1, ShardID: 3, Term: 4},
		{Type: pb.Heartbeat, To: 4, From: 2, ShardID: 3, Term: 1000},
	}}
	plain := b
	plain.Requests = append([]pb.Message(nil), b.Requests...)
	if refused, _ := filterBatch(&plain, mt, 0); refused != 0 {
		t.Errorf("without TLS, filterBatch refused %d, want 0: a joining node cannot tell", refused)
	}
	if refused, first := filterBatch(&b, mt, 1); refused != 1 || first.why != whyNotPeer || len(b.Requests) != 1 || b.Requests[0].From != 1 {
		t.Errorf("with node 1's certificate, filterBatch refused %d (%v), kept %v; want node 2's message refused", refused, first, b.Requests)
	}
	if at, anyKnown := mt.nodeAt(1, "10.0.0.1:9093"); at || anyKnown {
		t.Errorf("nodeAt on a joining node's table = %v, %v; want false, false (it knows no node to check against)", at, anyKnown)
	}
}

// tlsCluster starts a three-node cluster whose nodes hold certificates of
// one CA and returns it with the CA; logs, if not nil, receives each
// node's warnings.
func tlsCluster(t *testing.T, logs map[uint64]*lockedBuffer) (*testCluster, *testpki.PKI) {
	t.Helper()
	pki := testpki.New(t, "test")
	return newTestCluster(t, 3, func(cfg *Config) {
		cfg.NodeCert = pki.NodeCert(t, cfg.NodeID)
		if logs != nil {
			buf := &lockedBuffer{}
			logs[cfg.NodeID] = buf
			cfg.Logger = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}), pki
}

func TestTransport_tlsClusterElectsAndSurvivesARestart(t *testing.T) {
	c, _ := tlsCluster(t, nil)
	ctx := ctxT(t)
	for _, s := range c.stores {
		if s.nh.NodeHostConfig().MutualTLS {
			t.Fatal("Dragonboat's own TLS is on; reeve's transport must do it")
		}
	}
	topic, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: "over-tls", Partitions: 4, ReplicationFactor: 3})
	if err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	c.topicEverywhere(topic)

	c.stop(2)
	again, err := c.stores[3].CreateTopic(ctx, TopicSpec{Name: "while-2-was-down", Partitions: 2, ReplicationFactor: 2})
	if err != nil {
		t.Fatalf("CreateTopic with node 2 down = %v", err)
	}
	c.start(2)
	c.waitReady(2)
	c.topicEverywhere(topic)
	c.topicEverywhere(again)
	for _, g := range c.stores[2].Groups() {
		if err := c.stores[2].Barrier(ctx, g); err != nil {
			t.Errorf("node 2, group %d: Barrier after the restart = %v", g, err)
		}
	}
}

// dialTLS opens a TLS connection to a node's raft port presenting the
// certificate in tc, as a hand-made client that trusts any listener.
func dialTLS(t *testing.T, addr string, tc config.TLS) *rawPeer {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := dialRaw(t, addr)
	conn := tls.Client(p.nc, &tls.Config{Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Handshake() // a refused certificate shows on the first read (TLS 1.3)
	conn.SetDeadline(time.Time{})
	p.nc = conn
	return p
}

// refusedBeforeHello sends a hello and checks that the node closes the
// connection without answering it.
func (p *rawPeer) refusedBeforeHello(deployment uint64) {
	p.t.Helper()
	p.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	p.nc.Write(hello{version: wireVersion, kindStatus: kindMessages, deployment: deployment}.encode())
	p.nc.SetReadDeadline(time.Now().Add(tlsHandshakeTimeout + 5*time.Second))
	var got []byte
	buf := make([]byte, 256)
	for {
		n, err := p.nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				p.t.Fatalf("the connection is still open after %v", tlsHandshakeTimeout+5*time.Second)
			}
			break
		}
	}
	if bytes.Contains(got, wireMagic[:]) {
		p.t.Fatalf("the node answered the hello (%x), want the connection closed first", got)
	}
}

// TestTransport_tlsRefusesStrangersAndForgers: with TLS, a dialer without
// TLS, with another CA's certificate, or with a certificate of this CA
// naming another cluster's node gets no hello; a node's real certificate
// gets one, but cannot send as another node: forged Heartbeats at term
// 1000 change no group's term or leader.
func TestTransport_tlsRefusesStrangersAndForgers(t *testing.T) {
	logs := map[uint64]*lockedBuffer{}
	c, pki := tlsCluster(t, logs)
	dep := deploymentID("test")
	addr := c.cfgs[1].RaftAddress

	t.Run("plain TCP", func(t *testing.T) {
		dialRaw(t, addr).refusedBeforeHello(dep)
	})
	t.Run("another CA", func(t *testing.T) {
		dialTLS(t, addr, testpki.New(t, "test").Node(t, 2)).refusedBeforeHello(dep)
	})
	t.Run("another cluster's node", func(t *testing.T) {
		dialTLS(t, addr, pki.Cert(t, "elsewhere", config.NodeURI("elsewhere", 2))).refusedBeforeHello(dep)
	})
	t.Run("no node", func(t *testing.T) {
		dialTLS(t, addr, pki.Cert(t, "nobody")).refusedBeforeHello(dep)
	})
	l := logs[1].String()
	for _, want := range []string{"does not speak TLS", "not the cluster CA's", "does not name a node of this cluster"} {
		if !strings.Contains(l, want) {
			t.Errorf("node 1's log has no warning %q:\n%s", want, l)
		}
	}

	t.Run("node 3's certificate sending as node 2", func(t *testing.T) {
		groups := c.stores[1].Groups()
		type view struct{ leader, term uint64 }
		before := make(map[uint64]view)
		eventually(t, "every group has a leader", func() error {
			for _, g := range groups {
				leader, term, valid, err := c.stores[1].nh.GetLeaderID(g)
				if err != nil || !valid {
					return fmt.Errorf("group %d: GetLeaderID = %d, %d, %v, %v", g, leader, term, valid, err)
				}
				before[g] = view{leader, term}
			}
			return nil
		})
		p := dialTLS(t, addr, pki.Node(t, 3))
		if _, h := p.greet(dep); h.kindStatus != statusAccepted {
			t.Fatalf("hello on node 3's certificate: status = %d, want accepted", h.kindStatus)
		}
		var forged []pb.Message
		for _, g := range groups {
			forged = append(forged, pb.Message{Type: pb.Heartbeat, To: 1, From: 2, ShardID: g, Term: 1000})
		}
		p.sendBatch(pb.MessageBatch{DeploymentId: dep, BinVer: raftio.TransportBinVersion,
			SourceAddress: c.cfgs[2].RaftAddress, Requests: forged})
		time.Sleep(time.Second) // several election timeouts (20 ticks of 10 ms)
		for _, g := range groups {
			leader, term, valid, err := c.stores[1].nh.GetLeaderID(g)
			if got := (view{leader, term}); err != nil || !valid || got != before[g] {
				t.Errorf("group %d: leader %d at term %d (valid %v, %v), want %+v as before the forgery", g, leader, term, valid, err, before[g])
			}
		}
		eventually(t, "node 1 warns of the forgery", func() error {
			if l := logs[1].String(); !strings.Contains(l, whyNotPeer) {
				return fmt.Errorf("no warning %q in:\n%s", whyNotPeer, l)
			}
			return nil
		})
	})
}

// TestOpen_refusesACertificateOfAnotherNode: a node never presents a
// certificate that names another node or cluster.
func TestOpen_refusesACertificateOfAnotherNode(t *testing.T) {
	pki := testpki.New(t, "test")
	cfg := nodeConfig(t, 1, t.TempDir())
	cfg.NodeCert = pki.NodeCert(t, 2)
	if s, err := Open(cfg); err == nil || !strings.Contains(err.Error(), "reeve://test/node/1") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open with node 2's certificate = %v, want an error naming reeve://test/node/1", err)
	}
}

// TestTransport_probeConfirmsTheNodeAtAnAddress: AddNode's probe passes
// only where a node of this cluster listens, and with TLS only where the
// listener's certificate names the node being added; the listener closes
// a probe after its hello and hands Dragonboat nothing.
func TestTransport_probeConfirmsTheNodeAtAnAddress(t *testing.T) {
	const dep = 5
	ctx := context.Background()
	plain := startPeer(t, "127.0.0.1:0", dep, nil)
	prober := &Transport{deployment: dep}
	if err := prober.probe(ctx, 4, plain.addr); err != nil {
		t.Errorf("probe of a node of the cluster = %v", err)
	}
	if err := (&Transport{deployment: dep + 1}).probe(ctx, 4, plain.addr); !errors.Is(err, errWrongDeployment) {
		t.Errorf("probe from another cluster = %v, want %v", err, errWrongDeployment)
	}
	if err := prober.probe(ctx, 4, freeAddr(t, "127.0.0.1")); err == nil {
		t.Error("probe of an address nobody listens on passed")
	}

	pki := testpki.New(t, "test")
	secure := startPeer(t, "127.0.0.1:0", dep, nil, withTLS(t, pki, 4, nil))
	tlsProber := &Transport{deployment: dep, tls: newPeerTLS(pki.NodeCert(t, 1), pki.Cluster)}
	if err := tlsProber.probe(ctx, 4, secure.addr); err != nil {
		t.Errorf("TLS probe of node 4 = %v", err)
	}
	if err := tlsProber.probe(ctx, 5, secure.addr); !errors.Is(err, errWrongNode) {
		t.Errorf("TLS probe for node 5 answered by node 4 = %v, want %v", err, errWrongNode)
	}
	if err := prober.probe(ctx, 4, secure.addr); err == nil {
		t.Error("a plain probe of a TLS listener passed")
	}
	if len(plain.batches)+len(secure.batches)+len(plain.chunks)+len(secure.chunks) != 0 {
		t.Error("a probe reached Dragonboat's handlers")
	}
}
