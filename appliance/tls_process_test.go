package appliance_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/internal/testpki"
)

// newTLSProcCluster is newProcCluster with [tls] on every node: each node
// gets its own certificate from pki (whose cluster must be "proc-test",
// the name writeNodeConfig gives the cluster).
func newTLSProcCluster(t *testing.T, pki *testpki.PKI, n int, kafkaExtra ...string) []*proc {
	t.Helper()
	return newProcClusterEach(t, n, func(id int) []string {
		c := pki.Node(t, uint64(id))
		return []string{"[tls]", fmt.Sprintf("ca_file = %q", c.CAFile),
			fmt.Sprintf("cert_file = %q", c.CertFile), fmt.Sprintf("key_file = %q", c.KeyFile)}
	}, kafkaExtra...)
}

// certPair reads the certificate and key c names.
func certPair(t *testing.T, c config.TLS) tls.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// strangerConfig is a TLS client with certs (none, or one), trusting
// whatever the server presents.
func strangerConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
}

// strangerRequest sends req at version to addr on a connection of its own,
// plaintext or (with tc) TLS, and decodes the answer: what a process that
// is not a reeve node can send a node's Kafka listener.
func strangerRequest(addr string, tc *tls.Config, req kmsg.Request, version int16) (kmsg.Response, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if tc != nil {
		tlsConn := tls.Client(conn, tc)
		if err := tlsConn.Handshake(); err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		conn = tlsConn
	}
	req.SetVersion(version)
	frame := make([]byte, 4, 256)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, 1)
	frame = binary.BigEndian.AppendUint16(frame, uint16(len("stranger")))
	frame = append(frame, "stranger"...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := conn.Write(frame); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, err
	}
	body = body[4:] // correlation id
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		body = body[1:] // an empty header tag buffer
	}
	return resp, resp.ReadFrom(body)
}

// fetchAsReplica sends a follower's Fetch (v12, by topic name) for
// partition 0 of topic at offset, made as node replica.
func fetchAsReplica(addr string, tc *tls.Config, topic string, replica int32, offset int64) (int16, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = replica, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := strangerRequest(addr, tc, req, 12)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode, nil
}

func heartbeatAsNode(addr string, tc *tls.Config, node int32) (int16, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = node, -1, -1
	resp, err := strangerRequest(addr, tc, req, 0)
	if err != nil {
		return 0, err
	}
	return resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode, nil
}

// heartbeatAge is how long ago p last took a heartbeat from node.
func heartbeatAge(t *testing.T, p *proc, node uint64) time.Duration {
	t.Helper()
	var st api.Status
	if code, err := httpGetJSON("http://"+p.admin+"/v1/status", &st); err != nil || code != 200 {
		t.Fatalf("node %d: GET /v1/status = %d, %v", p.id, code, err)
	}
	for _, n := range st.Nodes {
		if n.ID == node {
			return time.Duration(n.HeartbeatAgeMs) * time.Millisecond
		}
	}
	t.Fatalf("node %d's status lists no node %d", p.id, node)
	return 0
}

// Two real nodes with [tls]: they replicate over it (acks=all to RF 2 is
// acknowledged, both logs hold the records) and take each other's
// heartbeats; a plaintext client produces and consumes as on any cluster;
// a process without a certificate from the cluster CA cannot complete a
// node's handshake, and one with a node's certificate can.
func TestTLSProcess_twoNodesReplicateAndClientsStayPlain(t *testing.T) {
	pki := testpki.New(t, "proc-test")
	procs := newTLSProcCluster(t, pki, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	createTopic(t, procs, "tls-rep", 1, 2)
	waitTopic(t, procs[0], "tls-rep", 1)
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("tls-rep"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 200 {
		prod.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("record %d", i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("acks=all produce to RF 2 over TLS replication = %v", err)
	}
	pollFor(t, 20*time.Second, "both replicas' logs equal", func() bool {
		a, b := partitionLogs(t, procs[0], "tls-rep", 0), partitionLogs(t, procs[1], "tls-rep", 0)
		return len(a) > 0 && string(a) == string(b)
	})
	cons := clusterClient(t, procs, kgo.ConsumeTopics("tls-rep"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for n := 0; n < 200; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("plaintext consume = %v", err)
		}
		n += fs.NumRecords()
	}
	for _, p := range procs {
		other := uint64(3 - p.id)
		if age := heartbeatAge(t, p, other); age > 3*time.Second {
			t.Errorf("node %d last took node %d's heartbeat %v ago, want heartbeats over TLS", p.id, other, age)
		}
	}

	otherCA := testpki.New(t, "proc-test")
	for _, tt := range []struct {
		name string
		tc   *tls.Config
		ok   bool
	}{
		{"no certificate", strangerConfig(), false},
		{"another CA's certificate for node 1", strangerConfig(certPair(t, otherCA.Node(t, 1))), false},
		{"the cluster CA's certificate for node 2", strangerConfig(certPair(t, pki.Node(t, 2))), true},
	} {
		_, err := strangerRequest(procs[0].kafka, tt.tc, kmsg.NewPtrApiVersionsRequest(), 0)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ApiVersions over TLS to node 1 = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	for _, p := range procs {
		b, _ := os.ReadFile(p.logPath)
		if strings.Contains(string(b), "refused a request made as a node") {
			t.Errorf("node %d refused another node's request:\n%s", p.id, tail(string(b), 2000))
		}
	}
}

// The fake follower. Three nodes with [tls], a partition on all three with
// min.insync.replicas 3; one follower is frozen (SIGSTOP) and leaves the
// ISR. A stranger then fetches as the frozen follower at the leader's end
// offset, and heartbeats as it, for longer than the lag time: over
// plaintext, with the other follower's certificate, with another CA's
// certificate for the frozen node, and with none. Before [tls] reeve
// believed such a fetch: the frozen node was back in the ISR and acks=all
// writes were acknowledged with one copy fewer than promised. Now every
// attempt is refused (CLUSTER_AUTHORIZATION_FAILED, or no handshake), the
// ISR stays at two, acks=all still gets NOT_ENOUGH_REPLICAS, and the
// frozen node's heartbeat age keeps growing. Once thawed, the real node
// rejoins over TLS.
func TestTLSProcess_strangerCannotFetchAsAFrozenFollower(t *testing.T) {
	pki := testpki.New(t, "proc-test")
	procs := newTLSProcCluster(t, pki, 3, `replica_lag_time = "2s"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := clusterClient(t, procs)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("3")}, "tls-guarded"); err != nil {
		t.Fatal(err)
	}
	waitTopic(t, procs[0], "tls-guarded", 1)
	_, leaderID := isrOf(t, procs[0], "tls-guarded", 0)
	leader := procs[leaderID-1]
	followers := allBut(procs, leader)
	frozen, other := followers[0], followers[1]
	t.Cleanup(func() { frozen.cmd.Process.Signal(syscall.SIGCONT) })
	prod := clusterClient(t, procs, kgo.DefaultProduceTopic("tls-guarded"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(3*time.Second))
	produce := func(v string) error {
		pctx, pcancel := context.WithTimeout(ctx, 8*time.Second)
		defer pcancel()
		return prod.ProduceSync(pctx, &kgo.Record{Value: []byte(v)}).FirstErr()
	}
	if err := produce("all three in sync"); err != nil {
		t.Fatal(err)
	}
	isrLen := func() int {
		isr, _ := isrOf(t, leader, "tls-guarded", 0)
		return len(isr)
	}

	frozen.cmd.Process.Signal(syscall.SIGSTOP)
	pollFor(t, 30*time.Second, "the frozen follower out of the ISR", func() bool { return isrLen() == 2 })
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "tls-guarded")
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup("tls-guarded", 0)
	frozenID := int32(frozen.id)
	strangers := []struct {
		name      string
		tc        *tls.Config
		handshake bool // whether the handshake completes
	}{
		{"plaintext", nil, true},
		{fmt.Sprintf("node %d's certificate", other.id), strangerConfig(certPair(t, pki.Node(t, uint64(other.id)))), true},
		{"another CA's certificate for the frozen node", strangerConfig(certPair(t, testpki.New(t, "proc-test").Node(t, uint64(frozenID)))), false},
		{"no certificate", strangerConfig(), false},
	}
	// Longer than replica_lag_time, at a follower's pace.
	for start := time.Now(); time.Since(start) < 3*time.Second; time.Sleep(200 * time.Millisecond) {
		for _, s := range strangers {
			code, err := fetchAsReplica(leader.kafka, s.tc, "tls-guarded", frozenID, end.Offset)
			switch {
			case !s.handshake && err == nil:
				t.Fatalf("%s: fetch as node %d = code %d, want the handshake refused", s.name, frozenID, code)
			case s.handshake && (err != nil || code != kerr.ClusterAuthorizationFailed.Code):
				t.Fatalf("%s: fetch as node %d = code %d, %v; want CLUSTER_AUTHORIZATION_FAILED", s.name, frozenID, code, err)
			}
			code, err = heartbeatAsNode(leader.kafka, s.tc, frozenID)
			if s.handshake && (err != nil || code != kerr.ClusterAuthorizationFailed.Code) {
				t.Fatalf("%s: heartbeat as node %d = code %d, %v; want CLUSTER_AUTHORIZATION_FAILED", s.name, frozenID, code, err)
			}
		}
		if n := isrLen(); n != 2 {
			t.Fatalf("ISR has %d members while node %d is frozen and strangers fetch as it, want 2", n, frozenID)
		}
	}
	if err := produce("two in sync"); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with node %d frozen = %v, want NOT_ENOUGH_REPLICAS", frozenID, err)
	}
	if age := heartbeatAge(t, leader, uint64(frozenID)); age < 3*time.Second {
		t.Errorf("leader took node %d's heartbeat %v ago while it was frozen, want strangers' heartbeats refused", frozenID, age)
	}

	frozen.cmd.Process.Signal(syscall.SIGCONT)
	pollFor(t, 30*time.Second, "the thawed follower back in the ISR", func() bool { return isrLen() == 3 })
	if err := produce("three again"); err != nil {
		t.Fatalf("acks=all after node %d rejoined over TLS = %v", frozenID, err)
	}
}

// pollFor polls cond every 50 ms until it holds or d passes.
func pollFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
	}
}
