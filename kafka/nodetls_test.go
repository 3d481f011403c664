package kafka

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/internal/leakcheck"
	"github.com/reeve-edge/reeve/internal/testpki"
)

// tlsCluster is the cluster name the node certificates of these tests name.
const tlsCluster = "site1"

// nodeSet is a cluster of in-process servers that share one memCluster's
// topics, each seeing itself as its own node: enough for replication and
// heartbeats between them, with no Raft.
type nodeSet struct {
	mc      *memCluster
	mu      sync.Mutex
	brokers []Broker
	servers []*Server
}

// nodeView is one node's Cluster in a nodeSet.
type nodeView struct {
	*memCluster
	id  int32
	set *nodeSet
}

func (v nodeView) LocalNode() int32    { return v.id }
func (v nodeView) ControllerID() int32 { return v.id }
func (v nodeView) LiveNodes() int      { return len(v.Brokers()) }
func (v nodeView) Brokers() []Broker {
	v.set.mu.Lock()
	defer v.set.mu.Unlock()
	return slices.Clone(v.set.brokers)
}

// UpdateISR commits the change and tells every node, as Raft's change feed
// does in a node.
func (v nodeView) UpdateISR(ctx context.Context, id [16]byte, partition, leaderEpoch, partitionEpoch int32, isr []int32) (Partition, error) {
	p, err := v.memCluster.UpdateISR(ctx, id, partition, leaderEpoch, partitionEpoch, isr)
	v.set.changed()
	return p, err
}

func (ns *nodeSet) changed() {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for _, s := range ns.servers {
		s.MetadataChanged()
	}
}

// addTopic puts a one-partition topic led by node 1 on replicas with isr.
func (ns *nodeSet) addTopic(name string, replicas, isr []int32) {
	mc := ns.mc
	mc.mu.Lock()
	t := Topic{Name: name, ReplicationFactor: int16(len(replicas)), ID: [16]byte{byte(len(mc.order) + 1), 't'}}
	t.Partitions = []Partition{{Leader: 1, Replicas: replicas, ISR: isr}}
	mc.topics[name] = t
	mc.order = append(mc.order, name)
	mc.mu.Unlock()
	ns.changed()
}

func (ns *nodeSet) isr(name string) []int32 {
	ns.mc.mu.Lock()
	defer ns.mc.mu.Unlock()
	return slices.Clone(ns.mc.topics[name].Partitions[0].ISR)
}

// heartbeatLog records the heartbeats a node takes.
type heartbeatLog struct {
	mu   sync.Mutex
	from map[uint64]int
}

func (h *heartbeatLog) Heartbeat(node uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.from == nil {
		h.from = map[uint64]int{}
	}
	h.from[node]++
}

func (h *heartbeatLog) count(node uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.from[node]
}

// startTLSNodes starts nodes 1..n, each with its certificate from pki, and
// returns them with their heartbeat logs.
func startTLSNodes(t *testing.T, pki *testpki.PKI, n int, mutate ...func(*Config)) (*nodeSet, []*Server, []*heartbeatLog) {
	t.Helper()
	ns := &nodeSet{mc: newMemCluster()}
	var logs []*heartbeatLog
	for id := int32(1); id <= int32(n); id++ {
		hb := &heartbeatLog{}
		cfg := Config{
			Listen: "127.0.0.1:0", DataDir: t.TempDir(), MaxRequestBytes: 1 << 20,
			Log:      LogOptions{SegmentBytes: 1 << 20},
			NodeCert: pki.NodeCert(t, uint64(id)), ClusterName: pki.Cluster,
			Heartbeats: hb, HeartbeatInterval: 50 * time.Millisecond,
		}
		for _, f := range mutate {
			f(&cfg)
		}
		s, err := New(cfg, nodeView{memCluster: ns.mc, id: id, set: ns})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		host, port, _ := SplitHostPort(s.Addr().String())
		ns.brokers = append(ns.brokers, Broker{ID: id, Host: host, Port: port})
		ns.servers = append(ns.servers, s)
		logs = append(logs, hb)
	}
	for _, s := range ns.servers {
		go s.Serve()
	}
	return ns, ns.servers, logs
}

// strangerTLS is what a process holding the certificate c wrote dials
// with, checking nothing of the server.
func strangerTLS(t *testing.T, c config.TLS) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
}

// fetchAs sends one Fetch for topic's partition 0 at offset, made as
// replica, on p.
func fetchAs(ctx context.Context, p *peer, topic string, replica int32, offset int64) (kmsg.FetchResponseTopicPartition, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = replica, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	// v12 names the topic; the node-claim checks are the same at every
	// version (the replica fetcher's own uses topic ids).
	r, err := p.request(ctx, req, 12)
	if err != nil {
		return kmsg.FetchResponseTopicPartition{}, err
	}
	return r.(*kmsg.FetchResponse).Topics[0].Partitions[0], nil
}

func heartbeatAs(ctx context.Context, p *peer, node int32) (int16, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset = node, -1, -1
	r, err := p.request(ctx, req, 0)
	if err != nil {
		return 0, err
	}
	return r.(*kmsg.BrokerHeartbeatResponse).ErrorCode, nil
}

// Two nodes with [tls] replicate over it (an acks=all produce to a
// partition on both is acknowledged only once node 2 has fetched it) and
// take each other's heartbeats, while a plaintext client produces and
// consumes as before.
func TestNodeTLS_twoNodesReplicateAndHeartbeat(t *testing.T) {
	pki := testpki.New(t, tlsCluster)
	ns, servers, hbs := startTLSNodes(t, pki, 2)
	ns.addTopic("rep", []int32{1, 2}, []int32{1, 2})
	ctx := ctxT(t)
	cl := newClient(t, servers[0], kgo.DefaultProduceTopic("rep"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
	for i := range 10 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("acks=all produce %d = %v, want it acknowledged", i, err)
		}
	}
	if end := servers[1].partitionEnd(t, "rep", 0); end != 10 {
		t.Errorf("node 2's log ends at %d, want 10", end)
	}
	waitFor(t, "heartbeats both ways", func() bool { return hbs[0].count(2) > 0 && hbs[1].count(1) > 0 })

	cons := newClient(t, servers[0], kgo.ConsumeTopics("rep"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 10 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches = %v", err)
		}
		got += fs.NumRecords()
	}
}

// Close ends node connections too: the fetchers' and heartbeats' TLS
// connections between two replicating nodes, and a handshake a stranger
// started and left hanging.
func TestNodeTLS_closeLeavesNoGoroutine(t *testing.T) {
	base := leakcheck.Take()
	pki := testpki.New(t, tlsCluster)
	ns, servers, hbs := startTLSNodes(t, pki, 2)
	ns.addTopic("leak", []int32{1, 2}, []int32{1, 2})
	cl, err := kgo.NewClient(kgo.SeedBrokers(servers[0].Addr().String()), kgo.DefaultProduceTopic("leak"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "heartbeats both ways", func() bool { return hbs[0].count(2) > 0 && hbs[1].count(1) > 0 })
	hung := dialRaw(t, servers[0])
	if _, err := hung.Write([]byte{tlsHandshakeByte}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stranger's handshake under way", func() bool { return len(base.Started("crypto/tls.(*Conn).serverHandshake", "")) > 0 })
	for _, s := range servers {
		if err := s.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	base.CheckCode(t, "github.com/reeve-edge/reeve/kafka.", "")
	cl.Close()
	hung.Close()
	base.VerifyNone(t)
}

// A request made as a node is believed only on a TLS connection whose
// certificate names that node: a plaintext connection, a TLS connection
// with node 3's certificate claiming node 2, and one with a certificate
// from another CA (whose handshake fails) are refused, and change
// nothing: node 2 has no recorded log end, stays out of the ISR, and gets
// no heartbeat recorded. The same requests with node 2's certificate are
// believed.
func TestNodeTLS_nodeClaimsAreBelievedOnlyFromTheNodesCertificate(t *testing.T) {
	pki := testpki.New(t, tlsCluster)
	ns, servers, hbs := startTLSNodes(t, pki, 1, func(c *Config) { c.HeartbeatInterval = 0 })
	s := servers[0]
	// Node 2 is known but not serving: only strangers may speak for it.
	ns.mu.Lock()
	ns.brokers = append(ns.brokers, Broker{ID: 2, Host: "127.0.0.1", Port: 1})
	ns.mu.Unlock()
	ns.addTopic("claims", []int32{1, 2}, []int32{1})
	ctx := ctxT(t)
	cl := newClient(t, s, kgo.DefaultProduceTopic("claims"), kgo.ProducerLinger(0))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	otherCA := testpki.New(t, tlsCluster)
	refused := []struct {
		name          string
		tls           *tls.Config
		handshakeFail bool
	}{
		{"plaintext", nil, false},
		{"node 3's certificate", strangerTLS(t, pki.Node(t, 3)), false},
		{"a certificate naming no node", strangerTLS(t, pki.Cert(t, "nameless")), false},
		{"node 2 of another cluster", strangerTLS(t, pki.Cert(t, "elsewhere", config.NodeURI("site2", 2))), false},
		{"another CA's certificate for node 2", strangerTLS(t, otherCA.Node(t, 2)), true},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			p := &peer{addr: addr, clientID: "stranger", tls: tt.tls}
			defer p.close()
			sp, err := fetchAs(ctx, p, "claims", 2, 1)
			switch {
			case tt.handshakeFail:
				if err == nil {
					t.Fatalf("fetch as node 2 = %+v, want the handshake refused", sp)
				}
				return
			case err != nil:
				t.Fatal(err)
			case sp.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(sp.RecordBatches) != 0:
				t.Errorf("fetch as node 2 = code %d, %d bytes; want CLUSTER_AUTHORIZATION_FAILED and nothing",
					sp.ErrorCode, len(sp.RecordBatches))
			}
			code, err := heartbeatAs(ctx, p, 2)
			if err != nil || code != kerr.ClusterAuthorizationFailed.Code {
				t.Errorf("heartbeat as node 2 = %d, %v; want CLUSTER_AUTHORIZATION_FAILED", code, err)
			}
		})
	}
	// Each refusal is counted: a fetch and a heartbeat from each of the
	// four connections that got through TLS, one failed handshake.
	if claims, hs := s.metrics.nodeClaims.Get(), s.metrics.nodeHandshakes.Get(); claims != 8 || hs != 1 {
		t.Errorf("reeve_kafka_node_refused_total: claim %d, handshake %d; want 8 and 1", claims, hs)
	}
	tp, _ := s.parts.topic("claims")
	part, err := s.parts.get(tp, 0)
	if err != nil {
		t.Fatal(err)
	}
	part.mu.Lock()
	follower := part.repl.followers[2]
	part.mu.Unlock()
	if follower != nil {
		t.Errorf("after refused fetches node 2's state = %+v, want none", *follower)
	}
	time.Sleep(isrCheckPeriod + 200*time.Millisecond) // an ISR pass that would see a fetch
	if isr := ns.isr("claims"); !slices.Equal(isr, []int32{1}) {
		t.Errorf("ISR after refused fetches = %v, want [1]", isr)
	}
	if n := hbs[0].count(2); n != 0 {
		t.Errorf("heartbeats recorded for node 2 = %d, want 0", n)
	}

	p := &peer{addr: addr, clientID: "node2", tls: strangerTLS(t, pki.Node(t, 2))}
	defer p.close()
	if sp, err := fetchAs(ctx, p, "claims", 2, 1); err != nil || sp.ErrorCode != 0 {
		t.Fatalf("fetch as node 2 with its certificate = %+v, %v; want it served", sp, err)
	}
	waitFor(t, "node 2 in the ISR", func() bool { return slices.Equal(ns.isr("claims"), []int32{1, 2}) })
	if code, err := heartbeatAs(ctx, p, 2); err != nil || code != 0 {
		t.Fatalf("heartbeat as node 2 with its certificate = %d, %v; want it taken", code, err)
	}
	if n := hbs[0].count(2); n != 1 {
		t.Errorf("heartbeats recorded for node 2 = %d, want 1", n)
	}
	// Node 2's connection speaks for node 2 only.
	if sp, err := fetchAs(ctx, p, "claims", 3, 1); err != nil || sp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("fetch as node 3 with node 2's certificate = %+v, %v; want CLUSTER_AUTHORIZATION_FAILED", sp, err)
	}
}

// A node dials another over TLS and accepts only the node it meant to
// reach: the certificate at the address must name that node.
func TestNodeTLS_peerChecksTheNodeItReaches(t *testing.T) {
	pki := testpki.New(t, tlsCluster)
	_, servers, _ := startTLSNodes(t, pki, 2, func(c *Config) { c.HeartbeatInterval = 0 })
	ctx := ctxT(t)
	addr := servers[1].Addr().String() // node 2's listener
	right := servers[0].peerTo(2, addr, "test")
	defer right.close()
	if _, err := right.request(ctx, kmsg.NewPtrApiVersionsRequest(), 0); err != nil {
		t.Fatalf("node 1 to node 2 = %v, want an answer", err)
	}
	wrong := servers[0].peerTo(3, addr, "test")
	defer wrong.close()
	_, err := wrong.request(ctx, kmsg.NewPtrApiVersionsRequest(), 0)
	if err == nil || !strings.Contains(err.Error(), "does not name it") {
		t.Fatalf("node 1 to node 3 at node 2's address = %v, want the certificate refused", err)
	}
}

// With [tls], max_request_bytes must stay below the smallest frame whose
// length starts with the TLS handshake byte; without it any size goes.
func TestNew_tlsCapsMaxRequestBytes(t *testing.T) {
	pki := testpki.New(t, tlsCluster)
	cert := pki.NodeCert(t, 1)
	for _, tt := range []struct {
		name string
		max  int32
		cert *config.NodeCert
		ok   bool
	}{
		{"tls, largest allowed", tlsFirstByteFrame - 1, cert, true},
		{"tls, first ambiguous size", tlsFirstByteFrame, cert, false},
		{"tls, 1 GiB", 1 << 30, cert, false},
		{"plain, 1 GiB", 1 << 30, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Config{DataDir: t.TempDir(), MaxRequestBytes: tt.max, NodeCert: tt.cert, ClusterName: tlsCluster}, newMemCluster())
			if s != nil {
				s.Close()
			}
			if (err == nil) != tt.ok || err != nil && !strings.Contains(err.Error(), "kafka.max_request_bytes") {
				t.Errorf("New(max_request_bytes %d) = %v, want ok %v (an error naming kafka.max_request_bytes)", tt.max, err, tt.ok)
			}
		})
	}
}
