package raft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	dbconfig "github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// testPeer is one started Transport and what its handlers received.
type testPeer struct {
	tr      *Transport
	addr    string
	batches chan pb.MessageBatch
	chunks  chan pb.Chunk
	logs    *lockedBuffer
}

// lockedBuffer is a log sink that the transport's goroutines may write to
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPeer starts a transport listening on addr (port 0 for any) for a
// deployment; acceptChunk, when not nil, decides what its chunk handler
// answers; opts, if any, change the factory first. The transport is closed
// when the test ends.
func startPeer(t *testing.T, addr string, deployment uint64, acceptChunk func(pb.Chunk) bool, opts ...func(*transportFactory)) *testPeer {
	t.Helper()
	p := &testPeer{batches: make(chan pb.MessageBatch, 64), chunks: make(chan pb.Chunk, 64), logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	onBatch := func(b pb.MessageBatch) { p.batches <- b }
	onChunk := func(c pb.Chunk) bool {
		p.chunks <- c
		return acceptChunk == nil || acceptChunk(c)
	}
	f := &transportFactory{log: log}
	for _, opt := range opts {
		opt(f)
	}
	nhc := dbconfig.NodeHostConfig{RaftAddress: addr, DeploymentID: deployment}
	p.tr = f.Create(nhc, onBatch, onChunk).(*Transport)
	if err := p.tr.Start(); err != nil {
		t.Fatalf("Start() on %s = %v", addr, err)
	}
	t.Cleanup(func() { p.tr.Close() })
	p.addr = p.tr.ln.Addr().String()
	return p
}

// testBatch is a batch as Dragonboat's send lane builds it, with entries
// of the given command sizes.
func testBatch(deployment uint64, term uint64, cmdSizes ...int) pb.MessageBatch {
	m := pb.Message{Type: pb.Replicate, To: 2, From: 1, ShardID: 3, Term: term, LogTerm: term, LogIndex: 10, Commit: 9}
	for i, n := range cmdSizes {
		cmd := bytes.Repeat([]byte{byte('a' + i)}, n)
		m.Entries = append(m.Entries, pb.Entry{Term: term, Index: 11 + uint64(i), Cmd: cmd})
	}
	vote := pb.Message{Type: pb.RequestVote, To: 2, From: 1, ShardID: 4, Term: term + 1, LogTerm: term, LogIndex: 7}
	return pb.MessageBatch{DeploymentId: deployment, SourceAddress: "127.0.0.1:1", BinVer: raftio.TransportBinVersion,
		Requests: []pb.Message{m, vote}}
}

// testChunk is chunk i of count of one snapshot file, as Dragonboat's
// sender splits it.
func testChunk(deployment, i, count uint64, data []byte) pb.Chunk {
	return pb.Chunk{ShardID: 3, ReplicaID: 2, From: 1, ChunkId: i, ChunkCount: count, ChunkSize: uint64(len(data)),
		FileChunkId: i, FileChunkCount: count, Filepath: "/data/snapshot-100/snapshot-100.gbsnap", FileSize: count * uint64(len(data)),
		Index: 100, Term: 5, DeploymentId: deployment, BinVer: raftio.TransportBinVersion, Data: data,
		Membership: pb.Membership{ConfigChangeId: 7, Addresses: map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}}}
}

// sameBatch compares batches by their encoding, which is what must survive
// the trip.
func sameBatch(t *testing.T, got, want pb.MessageBatch) {
	t.Helper()
	g, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	w, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Fatalf("received batch = %d requests (%d bytes encoded), want %d requests (%d bytes), or their contents differ",
			len(got.Requests), len(g), len(want.Requests), len(w))
	}
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s received within 5 s", what)
		panic("unreachable")
	}
}

func TestTransport_batchesAndChunksArrive(t *testing.T) {
	const dep = 42
	a := startPeer(t, "127.0.0.1:0", dep, nil)
	b := startPeer(t, "127.0.0.1:0", dep, nil)
	ctx := context.Background()

	conn, err := a.tr.GetConnection(ctx, b.addr)
	if err != nil {
		t.Fatalf("GetConnection(%s) = %v", b.addr, err)
	}
	defer conn.Close()
	// Small batches, one over the receiver's kept buffer (read in steps),
	// then a small one again on the same connection.
	for _, sizes := range [][]int{{10, 200}, {}, {6 << 20}, {1}} {
		want := testBatch(dep, 5, sizes...)
		if err := conn.SendMessageBatch(want); err != nil {
			t.Fatalf("SendMessageBatch(entries %v) = %v", sizes, err)
		}
		sameBatch(t, receive(t, b.batches, "message batch"), want)
	}

	snap, err := a.tr.GetSnapshotConnection(ctx, b.addr)
	if err != nil {
		t.Fatalf("GetSnapshotConnection(%s) = %v", b.addr, err)
	}
	const chunks = 3
	for i := range uint64(chunks) {
		c := testChunk(dep, i, chunks, bytes.Repeat([]byte{byte(i)}, 1<<20))
		if err := snap.SendChunk(c); err != nil {
			t.Fatalf("SendChunk(%d) = %v", i, err)
		}
	}
	// Close returns once the receiver acknowledged the end, so every chunk
	// has been handled by then.
	snap.Close()
	if n := len(b.chunks); n != chunks {
		t.Fatalf("chunks handled when Close returned = %d, want %d", n, chunks)
	}
	for i := range uint64(chunks) {
		c := <-b.chunks
		if c.ChunkId != i || c.ShardID != 3 || len(c.Data) != 1<<20 || c.Data[0] != byte(i) {
			t.Errorf("chunk %d = id %d group %d, %d bytes, want id %d group 3, 1 MiB of %d", i, c.ChunkId, c.ShardID, len(c.Data), i, i)
		}
	}
}

// TestTransport_restartedPeerIsRedialed pins the reason this transport
// exists: a connection to a peer whose process went away notices it, and
// the next send after the peer is back on the same address goes to the new
// process without an error (an error would trip Dragonboat's breaker and
// drop every message, votes included, to that peer for up to 1.7 s).
func TestTransport_restartedPeerIsRedialed(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reset bool // the peer resets its connections instead of closing them
	}{
		{"peer closed its connections", false},
		{"peer reset its connections", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const dep = 7
			a := startPeer(t, "127.0.0.1:0", dep, nil)
			b := startPeer(t, "127.0.0.1:0", dep, nil)
			conn, err := a.tr.GetConnection(context.Background(), b.addr)
			if err != nil {
				t.Fatalf("GetConnection(%s) = %v", b.addr, err)
			}
			defer conn.Close()
			first := testBatch(dep, 1, 16)
			if err := conn.SendMessageBatch(first); err != nil {
				t.Fatalf("SendMessageBatch before the restart = %v", err)
			}
			sameBatch(t, receive(t, b.batches, "batch before the restart"), first)

			old := conn.(*msgConn).l
			if tt.reset {
				b.tr.mu.Lock()
				for nc := range b.tr.inbound {
					nc.(*net.TCPConn).SetLinger(0)
				}
				b.tr.mu.Unlock()
			}
			b.tr.Close()
			select {
			case <-old.gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the connection did not notice within 5 s that its peer went away")
			}

			b2 := startPeer(t, b.addr, dep, nil)
			second := testBatch(dep, 2, 32)
			if err := conn.SendMessageBatch(second); err != nil {
				t.Fatalf("SendMessageBatch after the peer restarted = %v, want it redialed", err)
			}
			sameBatch(t, receive(t, b2.batches, "batch after the restart"), second)
			if conn.(*msgConn).l == old {
				t.Error("the connection still uses the link to the old peer")
			}
			if !strings.Contains(a.logs.String(), "redialed a peer") {
				t.Errorf("dialer's log has no redial line:\n%s", a.logs)
			}
		})
	}
}

// TestTransport_sendToStoppedPeerFails: a peer that is down must surface as
// an error, which is what lets Dragonboat's breaker and unreachable reports
// do their job.
func TestTransport_sendToStoppedPeerFails(t *testing.T) {
	const dep = 7
	a := startPeer(t, "127.0.0.1:0", dep, nil)
	b := startPeer(t, "127.0.0.1:0", dep, nil)
	conn, err := a.tr.GetConnection(context.Background(), b.addr)
	if err != nil {
		t.Fatalf("GetConnection(%s) = %v", b.addr, err)
	}
	defer conn.Close()
	old := conn.(*msgConn).l
	b.tr.Close()
	<-old.gone
	if err := conn.SendMessageBatch(testBatch(dep, 1, 8)); err == nil {
		t.Fatal("SendMessageBatch to a stopped peer = nil, want an error")
	}
	if _, err := a.tr.GetConnection(context.Background(), b.addr); err == nil {
		t.Fatal("GetConnection to a stopped peer = nil error, want one")
	}
}

func TestTransport_wrongDeploymentIsRefused(t *testing.T) {
	a := startPeer(t, "127.0.0.1:0", 1, nil)
	b := startPeer(t, "127.0.0.1:0", 2, nil)
	for try := range 2 {
		if _, err := a.tr.GetConnection(context.Background(), b.addr); !errors.Is(err, errWrongDeployment) {
			t.Fatalf("try %d: GetConnection to another deployment = %v, want %v", try, err, errWrongDeployment)
		}
		if _, err := a.tr.GetSnapshotConnection(context.Background(), b.addr); !errors.Is(err, errWrongDeployment) {
			t.Fatalf("try %d: GetSnapshotConnection to another deployment = %v, want %v", try, err, errWrongDeployment)
		}
	}
	logs := b.logs.String()
	if n := strings.Count(logs, "refused a node of another cluster"); n != 1 {
		t.Errorf("refusals logged = %d, want 1 (one per host per minute):\n%s", n, logs)
	}
	if !strings.Contains(logs, "their_deployment_id=1") || !strings.Contains(logs, "cluster.name") {
		t.Errorf("refusal log does not name the other deployment and what to check:\n%s", logs)
	}
	if len(b.batches)+len(b.chunks) != 0 {
		t.Error("the refusing peer handled data from another deployment")
	}
}

// TestTransport_foreignDialerIsRefused: Dragonboat's own transport (an older
// reeve) or a stray program on the raft port gets a clear log and a closed
// connection, not a hang or a decoded batch.
func TestTransport_foreignDialerIsRefused(t *testing.T) {
	b := startPeer(t, "127.0.0.1:0", 3, nil)
	nc, err := net.Dial("tcp", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Dragonboat's magic number and a request header's worth of bytes.
	nc.Write(append([]byte{0xAE, 0x7D}, make([]byte, 18)...))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 64)); err == nil {
		t.Fatalf("a foreign dialer got %d bytes back, want the connection closed", n)
	}
	if !strings.Contains(b.logs.String(), "did not open with a reeve raft hello") {
		t.Errorf("no refusal in the log:\n%s", b.logs)
	}
}

// TestTransport_refusedChunkEndsTheStream: when Dragonboat's chunk handler
// answers false, the receiver closes the stream and the sender's next
// chunk fails instead of vanishing.
func TestTransport_refusedChunkEndsTheStream(t *testing.T) {
	const dep = 9
	a := startPeer(t, "127.0.0.1:0", dep, nil)
	b := startPeer(t, "127.0.0.1:0", dep, func(pb.Chunk) bool { return false })
	snap, err := a.tr.GetSnapshotConnection(context.Background(), b.addr)
	if err != nil {
		t.Fatalf("GetSnapshotConnection(%s) = %v", b.addr, err)
	}
	defer snap.Close()
	chunk := testChunk(dep, 0, 2, []byte("x"))
	if err := snap.SendChunk(chunk); err != nil {
		t.Fatalf("SendChunk(0) = %v", err)
	}
	receive(t, b.chunks, "chunk")
	<-snap.(*snapshotConn).l.gone
	chunk = testChunk(dep, 1, 2, []byte("x"))
	if err := snap.SendChunk(chunk); err == nil {
		t.Fatal("SendChunk after the receiver refused the stream = nil, want an error")
	}
}

func TestTransportFactory_Validate(t *testing.T) {
	f := &transportFactory{}
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.1:9093", true},
		{"node-1.site:9093", true},
		{"[::1]:9093", true},
		{"10.0.0.1", false},
		{":9093", false},
		{"10.0.0.1:0", false},
		{"10.0.0.1:65536", false},
		{"10.0.0.1:http", false},
	} {
		if got := f.Validate(tt.addr); got != tt.want {
			t.Errorf("Validate(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestTransport_snapshotReachesALaggingStore runs Dragonboat's snapshot
// streaming over the transport: a node that was down while its peers
// compacted the log past its last entry can only catch up from a snapshot.
func TestTransport_snapshotReachesALaggingStore(t *testing.T) {
	snapshotReachesALaggingStore(t, newTestCluster(t, 3))
}

// TestTransport_tlsSnapshotReachesALaggingStore: the same over mutual TLS.
func TestTransport_tlsSnapshotReachesALaggingStore(t *testing.T) {
	c, _ := tlsCluster(t, nil)
	snapshotReachesALaggingStore(t, c)
}

func snapshotReachesALaggingStore(t *testing.T, c *testCluster) {
	ctx := ctxT(t)
	lag, _ := c.stores[3].Log(ClusterGroup)
	c.stop(3)
	const topics = 60 // SnapshotEntries is 20: the peers snapshot and compact several times
	for i := range topics {
		if _, err := c.stores[1].CreateTopic(ctx, TopicSpec{Name: fmt.Sprintf("snap-%02d", i), Partitions: 1, ReplicationFactor: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(1); id <= 2; id++ {
		if err := c.stores[id].Snapshot(ctx); err != nil {
			t.Fatalf("node %d: Snapshot = %v", id, err)
		}
	}
	eventually(t, "the live nodes compacted past node 3's last entry", func() error {
		for id := uint64(1); id <= 2; id++ {
			if l, _ := c.stores[id].Log(ClusterGroup); l.FirstIndex <= lag.LastIndex+1 {
				return fmt.Errorf("node %d: log starts at %d, node 3 ends at %d", id, l.FirstIndex, lag.LastIndex)
			}
		}
		return nil
	})

	s := c.start(3)
	c.waitReady(3)
	eventually(t, "node 3 has every topic", func() error {
		if n := len(s.Topics()); n != topics {
			return fmt.Errorf("node 3 sees %d topics, want %d", n, topics)
		}
		return nil
	})
	if l, _ := s.Log(ClusterGroup); l.SnapshotIndex <= lag.LastIndex {
		t.Errorf("node 3's snapshot index = %d, want past %d (a snapshot received from a peer)", l.SnapshotIndex, lag.LastIndex)
	}
}

// TestTransport_dialsFromTheNodesAddress: with a source address, a
// transport's connections come from it, so nodes sharing a host are told
// apart by address.
func TestTransport_dialsFromTheNodesAddress(t *testing.T) {
	const dep = 5
	b := startPeer(t, "127.0.0.1:0", dep, nil)
	a := startPeer(t, "127.0.0.1:0", dep, nil, func(f *transportFactory) { f.source = net.ParseIP("127.0.0.2") })
	conn, err := a.tr.GetConnection(context.Background(), b.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SendMessageBatch(testBatch(dep, 1)); err != nil {
		t.Fatal(err)
	}
	receive(t, b.batches, "batch")
	b.tr.mu.Lock()
	defer b.tr.mu.Unlock()
	if len(b.tr.inbound) != 1 {
		t.Fatalf("%d inbound connections, want 1", len(b.tr.inbound))
	}
	for c := range b.tr.inbound {
		if host := hostOf(c.RemoteAddr().String()); host != "127.0.0.2" {
			t.Errorf("connection from %s, want 127.0.0.2", host)
		}
	}
}
