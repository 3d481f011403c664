package appliance_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka"
)

// The attack tests hold each limit of the Kafka listener (docs/kafka.md,
// "Limits") against the real reeve binary, measured from outside as the
// issue's acceptance states it: the node stays up (its process has not
// exited and /readyz answers), its peak resident memory (VmHWM in
// /proc/<pid>/status) stays under 512 MB, the attacker gets a Kafka error
// code where the protocol has one, and a normal franz-go client (acks=all
// produce, then consume what it produced) works after each attack, and
// during it where the limit leaves it room. The kafka package tests each
// limit in process; these pin the same behaviour across the process
// boundary, where memory is the kernel's figure and descriptors are the
// process's. Each attack logs its figures on a line starting "figures:".
//
// Open-file limits are set with util-linux prlimit(1), which sets its own
// limit and execs reeve, so the pid is reeve's. exec.Cmd cannot set a
// child's rlimits, and lowering the test process's hard limit around
// cmd.Start is one way without CAP_SYS_RESOURCE (a container's root often
// lacks it): the rest of the test binary, the 5,000-connection attack
// included, would be left with 4096. Without prlimit these tests skip.

// attackPeakLimitMB is the acceptance's bound on a node's resident memory.
const attackPeakLimitMB = 512

// attackMaxConnections and attackMaxConnectionsPerIP are the defaults of
// kafka.max_connections and kafka.max_connections_per_ip, which the attack
// nodes keep.
const (
	attackMaxConnections      = 1000
	attackMaxConnectionsPerIP = 100
)

// TestAttack_fileHandleLimit: under an open-file limit of 4096 the node
// derives kafka.max_partitions = (4096-1000-1024)/8 = 259 and refuses a
// topic of 1,200 partitions, which would need 4,800 descriptors for its
// logs alone, with POLICY_VIOLATION; it stays up, and restarted under the
// same limit with the partitions it does hold it comes up again, still
// refuses what would not fit, and serves a normal client.
func TestAttack_fileHandleLimit(t *testing.T) {
	const nofile = 4096
	if hardNofile(t) < nofile {
		t.Skipf("the open-file hard limit is below %d", nofile)
	}
	p, addr := attackNode(t, nofile)
	if got := loggedPartitionLimit(t, p); got != 259 {
		t.Fatalf("partition limit under an open-file limit of %d = %d, want 259", nofile, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	mustCreateTopic(ctx, t, adm, "normal", 1)
	start := time.Now()
	mustCreateTopic(ctx, t, adm, "held", 200)
	heldTook := time.Since(start)
	resetPeak(p)

	start = time.Now()
	res, err := adm.CreateTopic(ctx, 1200, 1, nil, "too-many-files")
	refusedTook := time.Since(start)
	if code := createTopicCode(res, err); code != kerr.PolicyViolation.Code || !strings.Contains(res.ErrMessage, "259") {
		t.Errorf("CreateTopics of 1,200 partitions = %v (%q), want POLICY_VIOLATION naming the limit 259", err, res.ErrMessage)
	}
	assertTopicAbsent(ctx, t, adm, "too-many-files")
	assertNodeUp(t, p)
	fdsBefore := countFDs(t, p)
	rss, peak := memMB(t, p)
	normal := checkNormalClient(t, addr, "normal")
	t.Logf("figures: file handles, limit 259 under nofile %d: 1,200 partitions refused %s in %v; 200 held (created in %v); %d fds open; VmHWM %.1f MB, VmRSS %.1f MB; normal client %v",
		nofile, kerr.ErrorForCode(createTopicCode(res, err)), refusedTook.Round(time.Millisecond), heldTook.Round(time.Millisecond), fdsBefore, peak, rss, normal.Round(time.Millisecond))
	checkPeak(t, peak)

	// A node that had taken the 1,200 would die of EMFILE opening its logs
	// at every start; this one holds 201 and comes back.
	p.kill(t, syscall.SIGTERM)
	start = time.Now()
	startUnderNofile(t, p, nofile)
	p.waitReady(t)
	restartTook := time.Since(start)
	time.Sleep(time.Second) // a crash loop would show as an exit by now
	assertNodeUp(t, p)
	if got := loggedPartitionLimit(t, p); got != 259 {
		t.Errorf("partition limit after the restart = %d, want 259", got)
	}
	fdsAfter := countFDs(t, p)
	if fdsAfter >= nofile {
		t.Errorf("node holds %d descriptors after the restart, at its limit %d", fdsAfter, nofile)
	}
	adm = kadm.NewClient(kgoClient(t, addr))
	res, err = adm.CreateTopic(ctx, 100, 1, nil, "past-the-rest")
	if code := createTopicCode(res, err); code != kerr.PolicyViolation.Code {
		t.Errorf("after the restart, CreateTopics of 100 partitions with 201 held = %v, want POLICY_VIOLATION", err)
	}
	rss, peak = memMB(t, p)
	normal = checkNormalClient(t, addr, "normal")
	t.Logf("figures: file handles, restart under nofile %d: ready in %v with %d fds open; 100 more partitions refused %s; VmHWM %.1f MB, VmRSS %.1f MB; normal client %v",
		nofile, restartTook.Round(time.Millisecond), fdsAfter, kerr.ErrorForCode(createTopicCode(res, err)), peak, rss, normal.Round(time.Millisecond))
	checkPeak(t, peak)
}

// TestAttack_listenerLimits runs the other attacks one after another
// against one node under the open-file limit of the shipped systemd unit
// (LimitNOFILE=65536, or the test process's hard limit if that is lower:
// prlimit cannot raise it without CAP_SYS_RESOURCE), with the node's peak
// memory reset before each, so each figure is its own attack's.
func TestAttack_listenerLimits(t *testing.T) {
	nofile := min(65536, hardNofile(t))
	p, addr := attackNode(t, nofile)
	limit := loggedPartitionLimit(t, p)
	if want := kafka.DerivePartitionLimit(nofile, attackMaxConnections); limit != want || limit >= 100_000 {
		t.Fatalf("partition limit under an open-file limit of %d = %d, want %d", nofile, limit, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	for _, topic := range []string{"normal", "bomb", "big"} {
		mustCreateTopic(ctx, t, adm, topic, 1)
	}
	checkNormalClient(t, addr, "normal")

	t.Run("hundredThousandPartitions", func(t *testing.T) {
		// raft.ReserveBytes: the data directory holds a 64 MiB ballast
		// file for the Raft store (raft/reserve.go) from the start.
		const reserveMB = 64
		dataDir := filepath.Join(filepath.Dir(p.cfgPath), "data")
		duBefore := diskUsageMB(t, dataDir)
		underAttack(t, p, addr, func(t *testing.T) string {
			start := time.Now()
			res, err := adm.CreateTopic(ctx, 100_000, 1, nil, "hundred-thousand")
			took := time.Since(start)
			code := createTopicCode(res, err)
			if code != kerr.PolicyViolation.Code || !strings.Contains(res.ErrMessage, strconv.Itoa(limit)) {
				t.Errorf("CreateTopics of 100,000 partitions = %v (%q), want POLICY_VIOLATION naming the limit %d", err, res.ErrMessage, limit)
			}
			if took > 5*time.Second {
				t.Errorf("CreateTopics of 100,000 partitions took %v, want a refusal within 5s", took)
			}
			assertTopicAbsent(ctx, t, adm, "hundred-thousand")
			// 50,000 more: a topic may have at most 100,000, which is
			// INVALID_PARTITIONS before any limit of the node's.
			cp, err := adm.CreatePartitions(ctx, 50_000, "normal")
			cpCode := int16(-1)
			if err == nil {
				if r, ok := cp["normal"]; ok {
					cpCode = errCode(r.Err)
				}
			}
			if cpCode != kerr.PolicyViolation.Code {
				t.Errorf("CreatePartitions of 50,000 more = %+v, %v, want POLICY_VIOLATION", cp, err)
			}
			du := diskUsageMB(t, dataDir)
			if du-duBefore >= 1 || du-reserveMB >= 50 {
				t.Errorf("data directory after the refusals = %.1f MB, %.1f before; want it to stay under 50 MB besides Raft's %d MB reserve file", du, duBefore, reserveMB)
			}
			return fmt.Sprintf("100,000 partitions: CreateTopics %s in %v, CreatePartitions of 50,000 more %s; limit %d; data dir %.1f MB (%.1f MB before, %d MB of it Raft's reserve file)",
				kerr.ErrorForCode(code), took.Round(time.Millisecond), kerr.ErrorForCode(cpCode), limit, du, duBefore, reserveMB)
		})
	})

	for _, bomb := range []struct {
		name       string
		attributes int16
		records    func() ([]byte, int64)
	}{
		// 2 bits of deflate per 258 bytes, the most deflate can say.
		{"gzip", 1, func() ([]byte, int64) { return gzipBomb((1<<30)/258 + 1) }},
		// Raw-level blocks: 4 bytes per 128 KiB.
		{"zstd", 4, func() ([]byte, int64) { return zstdBomb(1<<13 + 1) }},
	} {
		t.Run("compressionBomb/"+bomb.name, func(t *testing.T) {
			cl := kgoClient(t, addr)
			underAttack(t, p, addr, func(t *testing.T) string {
				records, expands := bomb.records()
				batch := rawBatch(bomb.attributes, records, 0)
				// Under kafka.max_message_bytes, so the header check passes
				// and it is the bounded decompression that refuses it.
				if len(batch) > 1048588 || expands <= 1<<30 {
					t.Fatalf("%s bomb: batch of %d bytes expanding to %d, want at most 1048588 expanding past 1 GiB", bomb.name, len(batch), expands)
				}
				start := time.Now()
				code, err := produceRaw(ctx, cl, "bomb", batch)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("produce the %s bomb: %v", bomb.name, err)
				}
				if code != kerr.MessageTooLarge.Code && code != kerr.CorruptMessage.Code {
					t.Errorf("produce the %s bomb = %v, want MESSAGE_TOO_LARGE or CORRUPT_MESSAGE", bomb.name, kerr.ErrorForCode(code))
				}
				return fmt.Sprintf("%s bomb of %d bytes expanding to %d: %s in %v", bomb.name, len(batch), expands, kerr.ErrorForCode(code), took.Round(time.Millisecond))
			})
		})
	}

	t.Run("hundredMegabyteRecord", func(t *testing.T) {
		underAttack(t, p, addr, func(t *testing.T) string {
			start := time.Now()
			code, size, err := produceZeroRecord(ctx, addr, "big", 100_000_000)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("produce a 100 MB record: %v", err)
			}
			if code != kerr.MessageTooLarge.Code {
				t.Errorf("produce a 100 MB record = %v, want MESSAGE_TOO_LARGE", kerr.ErrorForCode(code))
			}
			return fmt.Sprintf("100 MB record (request %d bytes): %s in %v", size, kerr.ErrorForCode(code), took.Round(time.Millisecond))
		})
	})

	t.Run("fiveThousandConnections", func(t *testing.T) {
		raiseNofile(t)
		underAttack(t, p, addr, func(t *testing.T) string { return connectionAttack(ctx, t, p, addr) })
	})

	// Last: the budget the attackers held comes back only at their
	// requests' deadline (see trickleAttack).
	t.Run("trickledBodies", func(t *testing.T) {
		underAttack(t, p, addr, func(t *testing.T) string { return trickleAttack(t, p, addr) })
	})
}

// trickleAttack: 30 connections each declare a 100 MiB Produce request
// (3,000 MiB in all) and send its body in 64 KiB pieces every 10 ms for 5
// s, as fast as the node reads, while a normal client produces and
// consumes. The node holds at most queued_max_request_bytes (128 MiB) of
// what they sent; the normal client's small requests take the budget's
// reserve.
//
// # Notes
//
// A connection waiting on the budget reads nothing, so it sees its peer
// gone only at its request deadline (30 s from its length prefix): the
// attackers' part stays held that long after they close, and a large
// request (past one 64 KiB chunk) waits for it. The attack measures how
// long a normal 256 KiB produce then takes and checks the budget comes
// back by the deadline.
func trickleAttack(t *testing.T, p *proc, addr string) string {
	const (
		conns    = 30
		declared = 100 << 20
		piece    = 64 << 10
		lasting  = 5 * time.Second
	)
	waitsBefore, _ := nodeMetric(t, p, "reeve_kafka_request_budget_waits_total")
	attackStart := time.Now()
	var sent atomic.Int64
	stop := make(chan struct{})
	var attackers sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial attacker %d: %v", i, err)
		}
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			defer c.Close()
			// A Produce v8 header, then zeros: declared bytes in all
			// after the length prefix, the most max_request_bytes allows.
			head := frameHead(declared-(len(frameHead(0, 0, 0, 0))-4), int16(kmsg.Produce), 8, int32(i))
			if _, err := c.Write(head); err != nil {
				errs <- err
				return
			}
			zeros := make([]byte, piece)
			for written := len(head) - 4; written+piece < declared; {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				// The node stops reading while the budget is spent: a write
				// that times out is the attack working, not failing.
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				n, err := c.Write(zeros)
				written += n
				sent.Add(int64(n))
				var ne net.Error
				if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
					errs <- fmt.Errorf("attacker %d after %d bytes: %w", i, written, err)
					return
				}
			}
		}()
	}

	// The normal client, round after round while the attack lasts.
	var rounds int
	var slowest time.Duration
	var normalErr error
	normalDone := make(chan struct{})
	go func() {
		defer close(normalDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			d, err := normalRound(ctx, addr, "normal")
			cancel()
			if err != nil {
				normalErr = err
				return
			}
			rounds++
			slowest = max(slowest, d)
		}
	}()

	var peakQueued float64
	deadline := time.Now().Add(lasting)
	for time.Now().Before(deadline) {
		if q, ok := nodeMetric(t, p, "reeve_kafka_request_bytes_queued"); ok {
			peakQueued = max(peakQueued, q)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	attackers.Wait()
	<-normalDone
	close(errs)
	for err := range errs {
		t.Errorf("trickling: %v", err)
	}
	if normalErr != nil || rounds == 0 {
		t.Errorf("normal client during the attack: %d rounds, then %v", rounds, normalErr)
	}
	if peakQueued > 128<<20 {
		t.Errorf("reeve_kafka_request_bytes_queued peaked at %.0f, past queued_max_request_bytes %d", peakQueued, 128<<20)
	}
	heldAtClose, _ := nodeMetric(t, p, "reeve_kafka_request_bytes_queued")

	closed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	large, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("normal"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer large.Close()
	if err := large.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 256<<10)}).FirstErr(); err != nil {
		t.Errorf("a normal 256 KiB produce after the attackers closed: %v", err)
	}
	largeTook := time.Since(closed)
	// Every attacker's part comes back by its request deadline.
	waitMetric(t, p, "reeve_kafka_request_bytes_queued", 40*time.Second, func(v float64) bool { return v < 64<<10 })
	drained := time.Since(attackStart)
	if drained > 35*time.Second {
		t.Errorf("request budget came back %v after the attack began, want by the 30 s request deadline", drained)
	}
	waitsAfter, _ := nodeMetric(t, p, "reeve_kafka_request_budget_waits_total")
	return fmt.Sprintf("30 x 100 MiB declared, %.1f MiB sent in %v; request bytes queued peaked at %.1f MiB, %.1f MiB when the attackers closed, back to 0 %v after the attack began; %.0f budget waits; "+
		"normal client %d rounds during, slowest %v; a normal 256 KiB produce after the attackers closed took %v",
		float64(sent.Load())/(1<<20), lasting, peakQueued/(1<<20), heldAtClose/(1<<20), drained.Round(time.Millisecond), waitsAfter-waitsBefore,
		rounds, slowest.Round(time.Millisecond), largeTook.Round(time.Millisecond))
}

// connectionAttack opens 5,000 connections from one address, while a
// normal client from another produces and consumes, then 5,000 spread
// over 50 addresses, 100 from each. The node holds at most
// max_connections_per_ip of the first and max_connections of the second,
// closing the rest as it accepts them.
func connectionAttack(ctx context.Context, t *testing.T, p *proc, addr string) string {
	base, _ := nodeMetric(t, p, "reeve_kafka_connections")
	fdsBase := countFDs(t, p)

	one := make([]net.IP, 5000)
	for i := range one {
		one[i] = net.IPv4(127, 0, 2, 1)
	}
	start := time.Now()
	conns, failed := dialMany(ctx, addr, one)
	heldOne := waitMetricSettled(t, p, "reeve_kafka_connections") - base
	fdsOne := countFDs(t, p)
	tookOne := time.Since(start)
	if heldOne > attackMaxConnectionsPerIP {
		t.Errorf("node holds %.0f connections from one address, past max_connections_per_ip %d", heldOne, attackMaxConnectionsPerIP)
	}
	normalDuring := checkNormalClient(t, addr, "normal")
	refusedIP, _ := nodeMetric(t, p, `reeve_kafka_connections_refused_total{reason="max_connections_per_ip"}`)
	closeAll(conns)
	waitMetric(t, p, "reeve_kafka_connections", 10*time.Second, func(v float64) bool { return v <= base })

	spread := make([]net.IP, 5000)
	for i := range spread {
		spread[i] = net.IPv4(127, 0, 3, byte(1+i%50))
	}
	start = time.Now()
	conns, failedSpread := dialMany(ctx, addr, spread)
	heldSpread := waitMetricSettled(t, p, "reeve_kafka_connections")
	fdsSpread := countFDs(t, p)
	tookSpread := time.Since(start)
	if heldSpread > attackMaxConnections {
		t.Errorf("node holds %.0f connections, past max_connections %d", heldSpread, attackMaxConnections)
	}
	refusedMax, _ := nodeMetric(t, p, `reeve_kafka_connections_refused_total{reason="max_connections"}`)
	closeAll(conns)
	waitMetric(t, p, "reeve_kafka_connections", 10*time.Second, func(v float64) bool { return v <= base })
	if failed+failedSpread > 0 {
		t.Logf("%d and %d dials failed", failed, failedSpread)
	}
	return fmt.Sprintf("5,000 connections from one address: %.0f held (%d fds, %d before), %v, refused max_connections_per_ip %.0f, normal client from another address %v; "+
		"5,000 from 50 addresses: %.0f held (%d fds), %v, refused max_connections %.0f",
		heldOne, fdsOne, fdsBase, tookOne.Round(time.Millisecond), refusedIP, normalDuring.Round(time.Millisecond),
		heldSpread, fdsSpread, tookSpread.Round(time.Millisecond), refusedMax)
}

// dialMany dials addr once from each source address, 64 at a time; it
// returns the connections made, those the node closed at once included, and
// how many dials failed.
func dialMany(ctx context.Context, addr string, sources []net.IP) ([]net.Conn, int) {
	var mu sync.Mutex
	var conns []net.Conn
	failed := 0
	next := make(chan net.IP)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ip := range next {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
				c, err := d.DialContext(ctx, "tcp", addr)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	for _, ip := range sources {
		next <- ip
	}
	close(next)
	wg.Wait()
	return conns, failed
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// underAttack resets the node's peak memory, runs attack, which returns
// what it did and saw, and then checks what the acceptance asks of every
// attack: the node is up, its peak stayed under 512 MB, and a normal client
// works. It logs the figures.
func underAttack(t *testing.T, p *proc, addr string, attack func(t *testing.T) string) {
	t.Helper()
	since := "this attack"
	rssBefore, _ := memMB(t, p)
	if !resetPeak(p) {
		since = "the node's start"
	}
	start := time.Now()
	what := attack(t)
	took := time.Since(start)
	assertNodeUp(t, p)
	rss, peak := memMB(t, p)
	normal := checkNormalClient(t, addr, "normal")
	t.Logf("figures: %s; attack took %v; VmHWM %.1f MB (since %s), VmRSS %.1f MB before, %.1f MB after; normal client after %v",
		what, took.Round(time.Millisecond), peak, since, rssBefore, rss, normal.Round(time.Millisecond))
	checkPeak(t, peak)
}

func checkPeak(t *testing.T, peak float64) {
	t.Helper()
	if peak >= attackPeakLimitMB {
		t.Errorf("node's VmHWM = %.1f MB, want under %d MB", peak, attackPeakLimitMB)
	}
}

// attackNode starts a one-node cluster as kafkaNodeTB does, then restarts
// it under an open-file limit of nofile, soft and hard: Go raises the soft
// limit to the hard one at start, so the hard one is what reeve gets.
func attackNode(t *testing.T, nofile uint64) (*proc, string) {
	t.Helper()
	p, addr := kafkaNodeTB(t, "")
	p.kill(t, syscall.SIGTERM)
	startUnderNofile(t, p, nofile)
	p.waitReady(t)
	return p, addr
}

// startUnderNofile starts p through prlimit(1), which execs reeve, so the
// process p tracks is reeve's.
func startUnderNofile(t *testing.T, p *proc, nofile uint64) {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed: no way to start reeve under a lower open-file limit")
	}
	p.wrap = []string{prlimit, fmt.Sprintf("--nofile=%d:%d", nofile, nofile)}
	p.start(t)
}

// loggedPartitionLimit is the max_partitions of the node's latest
// "kafka: partition limit" log line.
func loggedPartitionLimit(t *testing.T, p *proc) int {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	limit := -1
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Msg           string `json:"msg"`
			MaxPartitions int    `json:"max_partitions"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "kafka: partition limit" {
			limit = rec.MaxPartitions
		}
	}
	if limit < 0 {
		t.Fatalf("node %d logged no partition limit", p.id)
	}
	return limit
}

func hardNofile(t *testing.T) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return lim.Max
}

// raiseNofile raises the test process's soft open-file limit to its hard
// one until the test ends, for the attacker's side of 5,000 connections.
func raiseNofile(t *testing.T) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	orig := lim
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
	if lim.Cur < 6000 {
		t.Skipf("the open-file limit %d leaves no room for 5,000 connections", lim.Cur)
	}
}

// statusField is one field of /proc/<pid>/status.
func statusField(t *testing.T, p *proc, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("node %d: %v", p.id, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("node %d: no %s in /proc/<pid>/status", p.id, field)
	return ""
}

// memMB is the node's resident memory now (VmRSS) and at its peak (VmHWM),
// in MB of 2^20 bytes.
func memMB(t *testing.T, p *proc) (rss, peak float64) {
	t.Helper()
	kb := func(field string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(statusField(t, p, field), " kB"), 64)
		if err != nil {
			t.Fatalf("node %d: %s: %v", p.id, field, err)
		}
		return v / 1024
	}
	return kb("VmRSS"), kb("VmHWM")
}

// resetPeak sets the node's VmHWM back to its VmRSS (writing 5 to
// /proc/<pid>/clear_refs, Linux 4.0 on), so an attack's peak is its own;
// false if the kernel refuses, when the peak counts from the node's start,
// which is stricter.
func resetPeak(p *proc) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0) == nil
}

func countFDs(t *testing.T, p *proc) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("node %d: %v", p.id, err)
	}
	return len(ents)
}

// assertNodeUp fails the test unless the node's process is running (not
// exited, not a zombie) and its /readyz answers 200.
func assertNodeUp(t *testing.T, p *proc) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		t.Fatalf("node %d exited: %v", p.id, p.cmd.ProcessState)
	}
	if st := statusField(t, p, "State"); strings.HasPrefix(st, "Z") {
		t.Fatalf("node %d exited: state %s", p.id, st)
	}
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + p.admin + "/readyz")
	if err != nil {
		t.Fatalf("node %d: GET /readyz: %v", p.id, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("node %d: GET /readyz = %s, want 200", p.id, resp.Status)
	}
}

// nodeMetric reads one series from the node's /metrics, named with its
// labels as exposed; false if the node does not expose it (yet).
func nodeMetric(t *testing.T, p *proc, series string) (float64, bool) {
	t.Helper()
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatalf("node %d: GET /metrics: %v", p.id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("node %d: GET /metrics = %s, %v", p.id, resp.Status, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("node %d: metric line %q: %v", p.id, line, err)
			}
			return f, true
		}
	}
	return 0, false
}

// waitMetric waits up to timeout for series to satisfy ok and returns it.
func waitMetric(t *testing.T, p *proc, series string, timeout time.Duration, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, _ := nodeMetric(t, p, series)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s = %v after %v", p.id, series, v, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMetricSettled waits until series reads the same three times 100 ms apart.
func waitMetricSettled(t *testing.T, p *proc, series string) float64 {
	t.Helper()
	last, same := -1.0, 0
	deadline := time.Now().Add(10 * time.Second)
	for same < 3 && time.Now().Before(deadline) {
		v, _ := nodeMetric(t, p, series)
		if v == last {
			same++
		} else {
			last, same = v, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// diskUsageMB is what the files under dir take on disk, as du counts it.
func diskUsageMB(t *testing.T, dir string) float64 {
	t.Helper()
	var blocks int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks
		}
		return nil
	})
	if err != nil {
		t.Fatalf("du %s: %v", dir, err)
	}
	return float64(blocks*512) / (1 << 20)
}

func mustCreateTopic(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	res, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("CreateTopic(%s, %d partitions) = %v", topic, partitions, err)
	}
}

func assertTopicAbsent(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics = %v", err)
	}
	if details.Has(topic) {
		t.Errorf("topic %s exists after its creation was refused", topic)
	}
}

// createTopicCode is the Kafka error code of one CreateTopic answer.
func createTopicCode(res kadm.CreateTopicResponse, err error) int16 {
	if err == nil {
		err = res.Err
	}
	return errCode(err)
}

// errCode is the Kafka error code err carries: 0 for none, -1 for an error
// that is not a Kafka code (a closed connection, a timeout).
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return -1
}

// checkNormalClient runs normalRound and fails the test if it fails.
func checkNormalClient(t *testing.T, addr, topic string, opts ...kgo.Opt) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := normalRound(ctx, addr, topic, opts...)
	if err != nil {
		t.Fatalf("normal client: %v", err)
	}
	return d
}

// normalRound is a normal client's work: ten records produced with
// acks=all to partition 0 of topic, then consumed from the first one's
// offset, by new clients that it closes. It returns how long that took.
func normalRound(ctx context.Context, addr, topic string, opts ...kgo.Opt) (time.Duration, error) {
	start := time.Now()
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		return 0, err
	}
	defer prod.Close()
	marker := strconv.FormatInt(time.Now().UnixNano(), 36)
	first := int64(-1)
	for i := range 10 {
		r := &kgo.Record{Partition: 0, Value: []byte(marker + "-" + strconv.Itoa(i))}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			return 0, fmt.Errorf("produce record %d: %w", i, err)
		}
		if i == 0 {
			first = r.Offset
		}
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(first)}})}, opts...)...)
	if err != nil {
		return 0, err
	}
	defer cons.Close()
	for got := 0; got < 10; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return 0, fmt.Errorf("consume after %d records: %w", got, err)
		}
		for _, r := range fs.Records() {
			if got < 10 {
				if want := marker + "-" + strconv.Itoa(got); string(r.Value) != want || r.Offset != first+int64(got) {
					return 0, fmt.Errorf("consumed offset %d %q, want offset %d %q", r.Offset, r.Value, first+int64(got), want)
				}
			}
			got++
		}
	}
	return time.Since(start), nil
}

// produceRaw sends one Produce request with batch as partition 0 of topic
// and returns that partition's error code.
func produceRaw(ctx context.Context, cl *kgo.Client, topic string, batch []byte) (int16, error) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1 // the client's default, which it would rewrite the request to
	req.TimeoutMillis = 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("produce answer for %d topics, want 1", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode, nil
}

// rawBatch is a v2 record batch of one record with the given attributes
// (bits 0-2: the codec) around records and then zeros more zero bytes, left
// for the caller to send, its length and CRC-32C counting them.
func rawBatch(attributes int16, records []byte, zeros int) []byte {
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: attributes, FirstTimestamp: now,
		MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: records}
	buf := b.AppendTo(nil)
	binary.BigEndian.PutUint32(buf[8:], uint32(len(buf)-12+zeros))
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	crc := crc32.Checksum(buf[21:], castagnoli)
	zero := make([]byte, min(zeros, 1<<20))
	for left := zeros; left > 0; left -= len(zero) {
		crc = crc32.Update(crc, castagnoli, zero[:min(left, len(zero))])
	}
	binary.BigEndian.PutUint32(buf[17:], crc)
	return buf
}

// frameHead is a request's length prefix, for a body of size bytes after
// the header, and its header: key, version, correlation id and the client
// id "attack".
func frameHead(size int, key, version int16, correlationID int32) []byte {
	const clientID = "attack"
	b := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+len(clientID)+size))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	return append(b, clientID...)
}

// produceZeroRecord sends, over a connection of its own, a Produce v8
// request (acks=all) of one uncompressed batch for partition 0 of topic
// holding one record whose value is n zero bytes, streamed from a small
// buffer so the test never holds the record, and returns the partition's
// error code and the request's size.
func produceZeroRecord(ctx context.Context, addr, topic string, n int) (int16, int, error) {
	// The record up to its value; after the value comes only its header
	// count, 0, one more zero byte.
	rec := []byte{0}                   // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, int64(n))
	zeros := n + 1
	rec = append(binary.AppendVarint(nil, int64(len(rec)+zeros)), rec...)
	batch := rawBatch(0, rec, zeros)

	req := kmsg.NewPtrProduceRequest()
	req.Version = 8
	req.Acks = -1
	req.TimeoutMillis = 30_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	body := req.AppendTo(nil)
	// The records are the request's last field: their length counts the
	// zeros sent after it.
	binary.BigEndian.PutUint32(body[len(body)-len(batch)-4:], uint32(len(batch)+zeros))
	head := frameHead(len(body)+zeros, int16(kmsg.Produce), req.Version, 1)

	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write(append(head, body...)); err != nil {
		return 0, 0, err
	}
	zero := make([]byte, 1<<20)
	for left := zeros; left > 0; left -= len(zero) {
		if _, err := c.Write(zero[:min(left, len(zero))]); err != nil {
			return 0, 0, fmt.Errorf("after %d of %d bytes: %w", zeros-left, zeros, err)
		}
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return 0, 0, fmt.Errorf("read the answer: %w", err)
	}
	answer := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, answer); err != nil || len(answer) < 4 {
		return 0, 0, fmt.Errorf("read the answer: %w", err)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.Version
	if err := resp.ReadFrom(answer[4:]); err != nil {
		return 0, 0, fmt.Errorf("decode the answer: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, 0, fmt.Errorf("produce answer for %d topics, want 1", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0].ErrorCode, len(head) - 4 + len(body) + zeros, nil
}

// gzipBomb is a gzip stream of 1 + 258*matches zero bytes, and that size.
// Compressing a gigabyte takes minutes under the race detector, so the
// deflate block is written by hand: one dynamic block whose literal/length
// code gives length 258 one bit, literal 0 and end-of-block two, and whose
// single distance code (distance 1) one bit. After one literal zero, each
// match copies 258 zeros in two zero bits, the best ratio deflate allows.
func gzipBomb(matches int) ([]byte, int64) {
	size := 1 + 258*int64(matches)
	w := bitWriter{out: []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}}
	w.bits(1, 1)  // BFINAL
	w.bits(2, 2)  // BTYPE dynamic
	w.bits(29, 5) // HLIT: 286 literal/length codes, up to 285 (length 258)
	w.bits(0, 5)  // HDIST: 1 distance code
	w.bits(14, 4) // HCLEN: 18 code length codes, up to the one for length 1
	// Code length code lengths in their order 16, 17, 18, 0, 8, 7, 9, 6,
	// 10, 5, 11, 4, 12, 3, 13, 2, 14, 1: 18 (a run of zeros) gets code 0,
	// lengths 1 and 2 codes 10 and 11.
	for _, l := range []uint64{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2} {
		w.bits(l, 3)
	}
	// Literal/length code lengths, then the distance code's, each a code
	// length code and its extra bits: literal 0 and end of block (256) get
	// 2 bits, 285 (length 258) 1, the one distance code (distance 1) 1;
	// runs of 18 (11 + its 7 extra bits zeros) skip the rest.
	for _, l := range []struct{ code, n, extra, extraBits uint64 }{
		{0b11, 2, 0, 0},  // literal 0: 2
		{0b0, 1, 127, 7}, // 1-138: none
		{0b0, 1, 106, 7}, // 139-255: none
		{0b11, 2, 0, 0},  // 256, end of block: 2
		{0b0, 1, 17, 7},  // 257-284: none
		{0b10, 2, 0, 0},  // 285, length 258: 1
		{0b10, 2, 0, 0},  // distance code 0, distance 1: 1
	} {
		w.code(l.code, uint(l.n))
		w.bits(l.extra, uint(l.extraBits))
	}
	// Their canonical codes: 285 -> 0, literal 0 -> 10, end of block ->
	// 11, distance code 0 -> 0.
	w.code(0b10, 2)      // literal 0
	w.zeros(2 * matches) // each match: length 258, distance 1
	w.code(0b11, 2)      // end of block
	w.align()
	crc := crc32.NewIEEE()
	zero := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zero)) {
		crc.Write(zero[:min(left, int64(len(zero)))])
	}
	w.out = binary.LittleEndian.AppendUint32(w.out, crc.Sum32())
	w.out = binary.LittleEndian.AppendUint32(w.out, uint32(size))
	return w.out, size
}

// bitWriter packs deflate's bit stream, least significant bit first.
type bitWriter struct {
	out []byte
	acc uint64
	n   uint
}

func (w *bitWriter) bits(v uint64, n uint) {
	w.acc |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

// code writes a Huffman code of n bits, most significant bit first.
func (w *bitWriter) code(c uint64, n uint) {
	for ; n > 0; n-- {
		w.bits(c>>(n-1)&1, 1)
	}
}

func (w *bitWriter) zeros(n int) {
	for ; n > 0 && w.n != 0; n-- {
		w.bits(0, 1)
	}
	w.out = append(w.out, make([]byte, n/8)...)
	w.bits(0, uint(n%8))
}

func (w *bitWriter) align() {
	if w.n > 0 {
		w.bits(0, 8-w.n)
	}
}

// zstdBomb is a zstd frame of blocks run-length blocks of 128 KiB of
// zeros, 4 bytes each, with a 1 MiB window and no content size, and its
// decompressed size.
func zstdBomb(blocks int) ([]byte, int64) {
	const blockSize = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 10 << 3} // magic, descriptor, window 2^(10+10)
	for i := range blocks {
		h := uint32(1<<1 | blockSize<<3) // RLE
		if i == blocks-1 {
			h |= 1 // last block
		}
		out = append(out, byte(h), byte(h>>8), byte(h>>16), 0)
	}
	return out, int64(blocks) * blockSize
}

// TestAttack_bombsDecompress: the hand-made bombs are valid streams of the
// sizes they claim, checked at a small size with the standard gzip reader
// and klauspost's zstd decoder, so the node refuses them for their size
// and not as garbage.
func TestAttack_bombsDecompress(t *testing.T) {
	check := func(name string, r io.Reader, want int64) {
		t.Helper()
		got, err := io.ReadAll(r)
		if err != nil || int64(len(got)) != want || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
			t.Errorf("%s bomb: %d bytes, %v, want %d zeros", name, len(got), err, want)
		}
	}
	gz, size := gzipBomb(1000)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gzipBomb(1000): %v", err)
	}
	check("gzip", zr, size)

	zs, size := zstdBomb(5)
	dec, err := zstd.NewReader(bytes.NewReader(zs))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	check("zstd", dec, size)
}
