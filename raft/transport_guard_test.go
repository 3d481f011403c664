package raft

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dbconfig "github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// guardMembers is group 3 of a three-node cluster, seen from node 2.
var guardMembers = map[uint64]string{1: "10.0.0.1:9093", 2: "10.0.0.2:9093", 3: "10.0.0.3:9093"}

func configChangeEntry(t testing.TB, cc pb.ConfigChange) pb.Entry {
	b, err := cc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return pb.Entry{Type: pb.ConfigChangeEntry, Cmd: b}
}

func TestCheckMessage(t *testing.T) {
	ok := func(m pb.Message) pb.Message {
		m.To, m.From, m.ShardID = 2, 1, 3
		return m
	}
	for _, tt := range []struct {
		name    string
		m       pb.Message
		members map[uint64]string
		source  string
		want    string // "" accepted, else a part of the reason
	}{
		{"heartbeat", ok(pb.Message{Type: pb.Heartbeat, Term: 4, Commit: 9}), guardMembers, "10.0.0.1:9093", ""},
		{"replicate", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: 10, LogTerm: 3,
			Entries: []pb.Entry{{Index: 11, Term: 3}, {Index: 12, Term: 4, Type: pb.EncodedEntry, Cmd: []byte{0, 'x'}}}}), guardMembers, "", ""},
		{"forwarded proposal with a config change", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.AddNode, ReplicaID: 4, Address: "10.0.0.4:9093"})}}), guardMembers, "", ""},
		{"rejected pre-vote at term 0", ok(pb.Message{Type: pb.RequestPreVoteResp, Reject: true}), guardMembers, "", ""},
		{"leader transfer", ok(pb.Message{Type: pb.LeaderTransfer, Hint: 3}), guardMembers, "", ""},
		{"joining node trusts the first sender", ok(pb.Message{Type: pb.Heartbeat, Term: 4}), nil, "10.0.0.9:9093", ""},

		{"To = 0", pb.Message{Type: pb.Heartbeat, From: 1, ShardID: 3, Term: 4}, guardMembers, "", "no target"},
		{"for another replica", pb.Message{Type: pb.Heartbeat, To: 3, From: 1, ShardID: 3, Term: 4}, guardMembers, "", "another replica"},
		{"From = 0", pb.Message{Type: pb.Heartbeat, To: 2, ShardID: 3, Term: 4}, guardMembers, "", "no sender"},
		{"from this node", pb.Message{Type: pb.Heartbeat, To: 2, From: 2, ShardID: 3, Term: 4}, guardMembers, "", "this node"},
		{"from a stranger at term 1000", pb.Message{Type: pb.Heartbeat, To: 2, From: 99, ShardID: 3, Term: 1000}, guardMembers, "", "not a member"},
		{"another member's address", ok(pb.Message{Type: pb.Heartbeat, Term: 4}), guardMembers, "10.0.0.3:9093", "source address"},
		{"an address Dragonboat refuses", ok(pb.Message{Type: pb.Heartbeat, Term: 4}), nil, "no-port", "source address"},
		{"local tick", ok(pb.Message{Type: pb.LocalTick, Hint: 1 << 40}), guardMembers, "", "not sent between nodes"},
		{"election", ok(pb.Message{Type: pb.Election}), guardMembers, "", "not sent between nodes"},
		{"config change event", ok(pb.Message{Type: pb.ConfigChangeEvent, Hint: 9, HintHigh: 7}), guardMembers, "", "not sent between nodes"},
		{"snapshot status", ok(pb.Message{Type: pb.SnapshotStatus}), guardMembers, "", "not sent between nodes"},
		{"log query", ok(pb.Message{Type: pb.LogQuery}), guardMembers, "", "not sent between nodes"},
		{"install snapshot in a batch", ok(pb.Message{Type: pb.InstallSnapshot, Term: 4}), guardMembers, "", "not sent between nodes"},
		{"unknown type", ok(pb.Message{Type: pb.MessageType(200), Term: 4}), guardMembers, "", "not sent between nodes"},
		{"negative type", ok(pb.Message{Type: pb.MessageType(-1), Term: 4}), guardMembers, "", "not sent between nodes"},
		{"pre-vote at term 0", ok(pb.Message{Type: pb.RequestPreVote}), guardMembers, "", "no term"},
		{"proposal with a term", ok(pb.Message{Type: pb.Propose, Term: 1000}), guardMembers, "", "carries a term"},
		{"leader transfer to nobody", ok(pb.Message{Type: pb.LeaderTransfer}), guardMembers, "", "target"},
		{"entries on a heartbeat", ok(pb.Message{Type: pb.Heartbeat, Term: 4, Entries: []pb.Entry{{Index: 1, Term: 1}}}), guardMembers, "", "carries none"},
		{"snapshot field", ok(pb.Message{Type: pb.Heartbeat, Term: 4, Snapshot: pb.Snapshot{Index: 5, Filepath: "/etc"}}), guardMembers, "", "snapshot"},
		{"gap in entries", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: 5, Entries: []pb.Entry{{Index: 9, Term: 4}}}), guardMembers, "", "contiguous"},
		{"entry index 0", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: ^uint64(0), Entries: []pb.Entry{{Index: 0, Term: 4}}}), guardMembers, "", "contiguous"},
		{"entry term 0", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: 5, Entries: []pb.Entry{{Index: 6}}}), guardMembers, "", "term"},
		{"entry term past the message's", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: 5, Entries: []pb.Entry{{Index: 6, Term: 5}}}), guardMembers, "", "term"},
		{"entry terms backwards", ok(pb.Message{Type: pb.Replicate, Term: 4, LogIndex: 5,
			Entries: []pb.Entry{{Index: 6, Term: 4}, {Index: 7, Term: 3}}}), guardMembers, "", "backwards"},
		{"unknown entry type", ok(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.EntryType(9)}}}), guardMembers, "", "unknown type"},
		{"compressed entry", ok(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.EncodedEntry, Cmd: []byte{2, 0xff}}}}), guardMembers, "", "header"},
		{"empty encoded entry", ok(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.EncodedEntry}}}), guardMembers, "", "header"},
		{"undecodable config change", ok(pb.Message{Type: pb.Propose, Entries: []pb.Entry{{Type: pb.ConfigChangeEntry, Cmd: []byte{0xff, 0xff}}}}), guardMembers, "", "config change"},
		{"config change of an unknown type", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.ConfigChangeType(7), ReplicaID: 4, Address: "10.0.0.4:9093"})}}), guardMembers, "", "unknown type"},
		{"config change adding a witness", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.AddWitness, ReplicaID: 4, Address: "10.0.0.4:9093"})}}), guardMembers, "", "witness"},
		{"forwarded addition of a non-voter", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.AddNonVoting, ReplicaID: 4, Address: "10.0.0.4:9093"})}}), guardMembers, "", ""},
		{"config change adding an invalid address", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.AddNode, ReplicaID: 4, Address: "nowhere"})}}), guardMembers, "", "valid address"},
		{"config change moving a member", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.AddNonVoting, ReplicaID: 3, Address: "10.9.9.9:9093"})}}), guardMembers, "", "another address"},
		{"config change without a replica", ok(pb.Message{Type: pb.Propose,
			Entries: []pb.Entry{configChangeEntry(t, pb.ConfigChange{Type: pb.RemoveNode})}}), guardMembers, "", "without a replica"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := checkMessage(&tt.m, 2, tt.members, tt.source)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("checkMessage(%s from %d to %d) = %q, want %q", tt.m.Type, tt.m.From, tt.m.To, got, tt.want)
			}
		})
	}
}

func TestFilterBatch_dropsOnlyTheBadMessages(t *testing.T) {
	mt := &memberTable{self: 2, bootstrap: map[uint64]string{1: "10.0.0.1:9093", 2: "10.0.0.2:9093"}}
	mt.publish(map[uint64]map[uint64]string{
		3: {1: "10.0.0.1:9093", 2: "10.0.0.2:9093"},
		4: nil, // not applied yet: checked against the bootstrap members and the other groups'
		6: {2: "10.0.0.2:9093"},
	}, map[uint64]string{5: "10.0.0.5:9093", 7: "10.0.0.7:9093"}, map[uint64]bool{7: true})
	batch := func(source string, ms ...pb.Message) pb.MessageBatch {
		return pb.MessageBatch{SourceAddress: source, Requests: ms}
	}
	for _, tt := range []struct {
		name    string
		b       pb.MessageBatch
		peer    uint64 // the node the connection's certificate names; 0: no TLS
		refused int
		why     string   // the first refusal's
		kept    []uint64 // the groups of the messages kept
	}{
		{"members and a missing target", batch("10.0.0.1:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 3, Term: 4},
			pb.Message{Type: pb.Heartbeat, To: 0, From: 1, ShardID: 3, Term: 4},
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 4, Term: 4},
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 6, Term: 4}, // a member of another group
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 9, Term: 4}, // a group this node does not run
		), 0, 1, "no target", []uint64{3, 4, 6}},
		{"a registered node not yet in the group", batch("10.0.0.5:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 5, ShardID: 3, Term: 4}), 0, 0, "", []uint64{3}},
		{"a removed node", batch("10.0.0.7:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 7, ShardID: 3, Term: 4}), 0, 1, "not a member", nil},
		{"a stranger", batch("",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 99, ShardID: 4, Term: 1000}), 0, 1, "not a member", nil},
		{"a member's id from another address", batch("10.0.0.9:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 3, Term: 4}), 0, 1, "source address", nil},
		{"the node its certificate names", batch("10.0.0.1:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 3, Term: 4}), 1, 0, "", []uint64{3}},
		{"node 5's certificate sending as node 1", batch("10.0.0.5:9093",
			pb.Message{Type: pb.Heartbeat, To: 2, From: 5, ShardID: 3, Term: 4},
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 3, Term: 1000},
			pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 9, Term: 1000}), 5, 2, whyNotPeer, []uint64{3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refused, first := filterBatch(&tt.b, mt, tt.peer)
			if refused != tt.refused || !strings.Contains(first.why, tt.why) {
				t.Errorf("filterBatch refused %d, first %v; want %d, %q", refused, first, tt.refused, tt.why)
			}
			var kept []uint64
			for _, m := range tt.b.Requests {
				kept = append(kept, m.ShardID)
			}
			if !slices.Equal(kept, tt.kept) {
				t.Errorf("kept messages to groups %v, want %v", kept, tt.kept)
			}
		})
	}
}

func TestChunkStream_checkChunk(t *testing.T) {
	const dep = 1
	good := func(i, count uint64) pb.Chunk { return testChunk(dep, i, count, []byte("x")) }
	with := func(c pb.Chunk, f func(*pb.Chunk)) pb.Chunk { f(&c); return c }
	for _, tt := range []struct {
		name   string
		chunks []pb.Chunk
		want   string // for the last chunk; the ones before must pass
	}{
		{"a whole stream", []pb.Chunk{good(0, 3), good(1, 3), good(2, 3)}, ""},
		{"a second file", []pb.Chunk{good(0, 2), with(good(1, 2), func(c *pb.Chunk) {
			c.FileChunkId, c.FileChunkCount, c.Filepath, c.HasFileInfo = 0, 1, "/x/external-file-1", true
		})}, ""},
		{"for another replica", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.ReplicaID = 0 })}, "another replica"},
		{"from a stranger", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.From = 99 })}, "not a member"},
		{"index 0", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.Index = 0 })}, "index"},
		{"poison count", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.ChunkCount = pb.PoisonChunkCount })}, "chunk id"},
		{"no file name", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.Filepath = "/" })}, "plain file"},
		{"dot dot", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.Filepath = "a/.." })}, "plain file"},
		{"NUL in the name", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.Filepath = "a\x00b" })}, "plain file"},
		{"starts mid-file", []pb.Chunk{with(good(0, 2), func(c *pb.Chunk) { c.FileChunkId = 1 })}, "first chunk"},
		{"starts mid-stream", []pb.Chunk{good(1, 2)}, "first chunk"},
		{"skips a chunk", []pb.Chunk{good(0, 3), good(2, 3)}, "out of order"},
		{"another snapshot", []pb.Chunk{good(0, 2), with(good(1, 2), func(c *pb.Chunk) { c.Index = 101 })}, "out of order"},
		{"appends to another file", []pb.Chunk{good(0, 2), with(good(1, 2), func(c *pb.Chunk) { c.Filepath = "/x/other" })}, "file chunk"},
		{"after the last", []pb.Chunk{good(0, 1), good(1, 2)}, "after the last"},
		{"no membership", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) { c.Membership = pb.Membership{} })}, "membership"},
		{"membership with a bad address", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) {
			c.Membership.Addresses = map[uint64]string{1: "nowhere"}
		})}, "invalid member"},
		{"membership moving a member", []pb.Chunk{with(good(0, 1), func(c *pb.Chunk) {
			c.Membership.Addresses = map[uint64]string{1: "10.9.9.9:1"}
		})}, "another address"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			members := map[uint64]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"}
			var st chunkStream
			for i := range tt.chunks {
				got := st.checkChunk(&tt.chunks[i], 2, members)
				want := ""
				if i == len(tt.chunks)-1 {
					want = tt.want
				}
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Fatalf("checkChunk(chunk %d) = %q, want %q", i, got, want)
				}
			}
		})
	}
}

// flakyListener fails its first Accepts as a process out of file
// descriptors does, then accepts.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestTransport_acceptErrorsBackOff: EMFILE used to end the accept loop for
// good while the process ran on; now the loop waits and accepts again.
func TestTransport_acceptErrorsBackOff(t *testing.T) {
	const dep = 5
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyListener{Listener: inner, fails: 6}
	logs := &lockedBuffer{}
	batches := make(chan pb.MessageBatch, 1)
	f := &transportFactory{log: slog.New(slog.NewTextHandler(logs, nil))}
	tr := f.Create(dbconfig.NodeHostConfig{DeploymentID: dep},
		func(b pb.MessageBatch) { batches <- b }, func(pb.Chunk) bool { return true }).(*Transport)
	tr.ln = flaky // what Start would have set; Close closes it
	tr.serving.Add(1)
	go tr.acceptLoop(flaky)
	t.Cleanup(func() { tr.Close() })

	a := startPeer(t, "127.0.0.1:0", dep, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := a.tr.GetConnection(ctx, inner.Addr().String())
	if err != nil {
		t.Fatalf("GetConnection after six failed accepts = %v, want the loop to have retried", err)
	}
	defer conn.Close()
	want := testBatch(dep, 1, 8)
	if err := conn.SendMessageBatch(want); err != nil {
		t.Fatal(err)
	}
	sameBatch(t, receive(t, batches, "batch after the accept errors"), want)
	if n := strings.Count(logs.String(), "accepting a connection failed"); n != 1 {
		t.Errorf("accept failures logged %d times, want once (rate limited):\n%s", n, logs)
	}
}

// TestTransport_idleConnectionIsClosed: after its hello, a connection that
// sends nothing is closed after the idle limit, and one that stops within
// a frame after the stall limit.
func TestTransport_idleConnectionIsClosed(t *testing.T) {
	limits := transportLimits{idle: 300 * time.Millisecond, stall: 100 * time.Millisecond}
	p := startPeer(t, "127.0.0.1:0", 6, nil, func(f *transportFactory) { f.limits = limits })
	for _, tt := range []struct {
		name  string
		send  []byte
		limit time.Duration
	}{
		{"idle after the hello", nil, limits.idle},
		{"half a header", []byte{frameBatch, 0, 0}, limits.stall},
		{"a header and part of its payload", append([]byte{frameBatch, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}, 1, 2, 3), limits.stall},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := dialRaw(t, p.addr)
			if _, h := r.greet(6); h.kindStatus != statusAccepted {
				t.Fatalf("hello status = %d, want accepted", h.kindStatus)
			}
			if tt.send != nil {
				r.write(tt.send)
			}
			if took := r.closedWithin(5 * time.Second); took < tt.limit/2 || took > tt.limit+2*time.Second {
				t.Errorf("closed after %v, want about %v", took, tt.limit)
			}
		})
	}
}

// fuzzPayload decodes a frame's payload as the receive path does, for a
// connection whose certificate names peer (0: no TLS), and checks that
// what the checks let through is what they promise.
func fuzzPayload(t *testing.T, mt *memberTable, peer uint64, stream *chunkStream, typ byte, payload []byte) {
	switch typ {
	case frameBatch:
		b, err := decodeBatch(payload)
		if err != nil {
			return
		}
		filterBatch(&b, mt, peer)
		for i := range b.Requests {
			m := &b.Requests[i]
			members, running := mt.lookup(m.ShardID)
			if !running || m.To != 2 || m.From == 0 || (members != nil && members[m.From] == "") || (peer != 0 && m.From != peer) {
				t.Fatalf("filterBatch kept %s to %d from %d in group %d", m.Type, m.To, m.From, m.ShardID)
			}
			if why := checkMessage(m, 2, members, b.SourceAddress); why != "" {
				t.Fatalf("filterBatch kept a message checkMessage refuses: %s", why)
			}
		}
	case frameChunk:
		c, err := decodeChunk(payload)
		if err != nil {
			return
		}
		members, _ := mt.lookup(c.ShardID)
		stream.checkChunk(&c, 2, members)
	}
}

// transportSeeds are inputs at the edges of the wire format: a hello and
// then frames.
func transportSeeds(t testing.TB) [][]byte {
	frame := func(typ byte, payload []byte) []byte {
		b := make([]byte, frameHeaderLen+len(payload))
		copy(b[frameHeaderLen:], payload)
		putFrameHeader(b, typ)
		return b
	}
	batch := func(ms ...pb.Message) []byte {
		b, err := (&pb.MessageBatch{DeploymentId: 7, BinVer: raftio.TransportBinVersion, SourceAddress: "10.0.0.1:9093", Requests: ms}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return frame(frameBatch, b)
	}
	chunk := func(c pb.Chunk) []byte {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return frame(frameChunk, b)
	}
	hi := hello{version: wireVersion, kindStatus: kindMessages, deployment: 7}.encode()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	huge := make([]byte, frameHeaderLen)
	huge[0], huge[4] = frameBatch, 0x10 // 256 MiB
	over := make([]byte, frameHeaderLen)
	over[0], over[4], over[7] = frameBatch, 0x10, 1            // 256 MiB + 1
	raw := func(f []byte) []byte { return f[frameHeaderLen:] } // a frame's payload alone
	return [][]byte{
		nil,
		hi,
		cat(hi, raw(batch(pb.Message{Type: pb.Replicate, To: 2, From: 1, ShardID: 3, Term: 4, LogIndex: 5, LogTerm: 4,
			Entries: []pb.Entry{{Index: 6, Term: 4}}}))),
		cat(hi, raw(chunk(testChunk(7, 0, 1, []byte("snapshot"))))),
		hello{version: 2, kindStatus: 9, deployment: 1}.encode(),
		cat(hi, batch(pb.Message{Type: pb.Heartbeat, To: 2, From: 1, ShardID: 3, Term: 4})),
		cat(hi, batch(pb.Message{Type: pb.Heartbeat, To: 0, From: 1, ShardID: 3, Term: 4})),
		cat(hi, batch(pb.Message{Type: pb.Heartbeat, To: 2, From: 99, ShardID: 3, Term: 1000})),
		cat(hi, batch(pb.Message{Type: pb.Replicate, To: 2, From: 1, ShardID: 3, Term: 4, LogIndex: 5, LogTerm: 4,
			Entries: []pb.Entry{{Index: 6, Term: 4, Type: pb.EncodedEntry, Cmd: []byte{0, 1, 2}}, configChangeEntry(t, pb.ConfigChange{Type: pb.AddNode, ReplicaID: 4, Address: "10.0.0.4:9093"})}})),
		cat(hi, batch(pb.Message{Type: pb.LocalTick, To: 2, From: 1, ShardID: 3, Hint: 1 << 40}, pb.Message{Type: pb.MessageType(200), To: 2, From: 1, ShardID: 3})),
		cat(hi, chunk(testChunk(7, 0, 2, []byte("snap"))), chunk(testChunk(7, 1, 2, []byte("shot"))), frame(frameEnd, nil)),
		cat(hi, huge),
		cat(hi, over),
		cat(hi, frame(frameBatch, []byte{0xff, 0xff, 0xff})),
		cat(hi, frame(9, []byte("x")), []byte{1, 2, 3}),
	}
}

// FuzzTransportFrame feeds the hello parser and the frame reader, and the
// checks behind them, what a stranger on the raft port might send: it must
// never panic, never return a payload longer than the bytes that came, and
// every message it lets through must pass the checks that keep Dragonboat
// from panicking and, on a TLS connection, come from the node the
// certificate names.
func FuzzTransportFrame(f *testing.F) {
	for _, seed := range transportSeeds(f) {
		f.Add(seed)
	}
	mt := &memberTable{self: 2}
	mt.publish(map[uint64]map[uint64]string{3: guardMembers, 4: nil}, nil, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < helloSize {
			return
		}
		if h, err := parseHello([helloSize]byte(data)); err == nil {
			if again, err := parseHello([helloSize]byte(h.encode())); err != nil || again != h {
				t.Fatalf("hello %+v encodes to one that parses as %+v, %v", h, again, err)
			}
		}
		rest := data[helloSize:]
		// The bytes after the hello as frames, then as one payload of
		// each kind, so the fuzzer reaches the decoders and checks without
		// having to forge a checksum.
		fr := frameReader{r: bytes.NewReader(rest)}
		var stream chunkStream
		for {
			typ, payload, err := fr.next()
			if err != nil {
				if !errors.Is(err, errBadFrame) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("frameReader.next() = %v, want a bad frame or the end of the input", err)
				}
				break
			}
			if len(payload) > len(rest) {
				t.Fatalf("payload of %d bytes from %d bytes of input", len(payload), len(rest))
			}
			fuzzPayload(t, mt, 0, &stream, typ, payload)
		}
		fuzzPayload(t, mt, 0, &chunkStream{}, frameBatch, rest)
		fuzzPayload(t, mt, 0, &chunkStream{}, frameChunk, rest)
		// As if it came on a TLS connection from node 1: only node 1's
		// messages may pass.
		fuzzPayload(t, mt, 1, &chunkStream{}, frameBatch, rest)
	})
}
