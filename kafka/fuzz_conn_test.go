package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"net"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// FuzzConnection drives live connections to one in-process server with
// request sequences decoded from the input. It checks what a client can
// rely on whatever it sends:
//
//   - the server never panics (the kafka package has no recover, so a
//     handler's panic ends the fuzz process and is reported as a crash);
//   - every complete frame gets an answer with its correlation id that
//     decodes at the request's version, or the connection is closed,
//     within fuzzAnswerDeadline; a frame cut short or with a length out
//     of range gets no answer and its connection is closed;
//   - after the input, a fresh connection still gets ApiVersions answered.
//
// # Input format
//
// The input is a sequence of at most fuzzMaxOps operations, each
//
//	op u8 | api u8 | version u8 | length u16 | payload [length]byte
//
// op's bits 0-2 pick the mode (0-3 a well-formed request, 4 one with bytes
// overwritten, 5 a body of raw payload bytes, 6 a frame cut short, 7 a
// length prefix out of range), bits 3-4 the connection (0-2; 3 reconnects
// connection 0 first), bit 5 a negative correlation id, bit 6 a null
// client id. api indexes the API keys the server answers and a few it
// does not; version picks one in the supported range below 0xf0 and one
// around or outside it above. A well-formed request is a kmsg request
// whose fields are filled from the payload in field order; a zero byte
// always picks a sensible value (one element, the first topic name, a
// valid uncompressed record batch), so a payload of zeros is a plain
// request and seeds are easy to write by hand.
//
// # Notes
//
// The server outlives the inputs, so an input may see topics an earlier
// one left; they are dropped once there are more than fuzzMaxTopics. The
// groups inputs name are emptied and deleted after each input. A request the protocol lets the server hold (JoinGroup and
// SyncGroup, parked until the group moves) may outlast its deadline: its
// connection is then abandoned, not failed. Long polls are clamped to
// 100 ms before sending, so parked fetches never pile up.
func FuzzConnection(f *testing.F) {
	s, mc := startServer(f, func(c *Config) {
		c.DefaultPartitions, c.DefaultReplicationFactor = 2, 1
		c.MaxRequestBytes = 1 << 20
		c.MaxMessageBytes = 256 << 10
		c.QueuedMaxRequestBytes = 8 << 20
		c.MaxPartitions = 256
		c.MaxConnections, c.MaxConnectionsPerIP = 10000, 10000
		c.RequestTimeout = 2 * time.Second
		c.Log.Fsync = storage.FsyncNever // fsyncs would cost more than the rest of an input
	})
	addr, keys := s.Addr().String(), fuzzAPIKeys()
	shortMinimization()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		r := &fuzzRun{t: t, addr: addr, keys: keys, mc: mc, maxReq: s.cfg.MaxRequestBytes}
		defer r.closeAll()
		in := fuzzBytes(data)
		for range fuzzMaxOps {
			if len(in) < 5 {
				break
			}
			op, api, ver := in.u8(), in.u8(), in.u8()
			payload := fuzzBytes(in.take(int(in.u16())))
			r.step(op, api, ver, payload)
		}
		r.closeAll()
		r.checkAlive()
		t.Log(strings.Join(r.log, "\n"))
		if ts := mc.Topics(); len(ts) > fuzzMaxTopics {
			for _, tp := range ts {
				mc.DeleteTopic(t.Context(), tp.Name)
			}
			s.MetadataChanged()
		}
	})
}

// shortMinimization bounds each minimization attempt to a few executions
// unless -test.fuzzminimizetime was given. The server's own goroutines
// (group sweeps, log maintenance, requests an earlier input left parked)
// run code while an input runs, so coverage is not a pure function of the
// input: an input that seemed to find new coverage often does not on the
// next run, and minimizing it for the default 60 s leaves a worker
// executing nothing the coordinator counts for seconds at a time (a third
// fewer executions in a 25 s run).
func shortMinimization() {
	explicit := false
	flag.Visit(func(fl *flag.Flag) { explicit = explicit || fl.Name == "test.fuzzminimizetime" })
	if !explicit && flag.Lookup("test.fuzzminimizetime") != nil {
		flag.Set("test.fuzzminimizetime", "50x")
	}
}

const (
	fuzzMaxInput  = 64 << 10
	fuzzMaxOps    = 32
	fuzzMaxTopics = 16
	// fuzzAnswerDeadline is how long a frame may go unanswered. Generous,
	// for -race on a loaded machine: a hang is a hang at any deadline.
	fuzzAnswerDeadline = 5 * time.Second
	// fuzzParkPatience is how long a request the server may hold is
	// waited for before its connection is abandoned.
	fuzzParkPatience = 300 * time.Millisecond
	// fuzzMaxWaitMillis clamps a Fetch's long poll.
	fuzzMaxWaitMillis = 100
)

// fuzzRun is one input's connections and what the answers told it.
type fuzzRun struct {
	t      *testing.T
	addr   string
	keys   []int16
	mc     *memCluster
	maxReq int32
	conns  [3]net.Conn
	corr   int32
	log    []string // the requests sent, for failure messages

	// Answers feed later requests, so an input can walk a group through
	// join and sync, or produce with the producer id it was given.
	memberID   string
	generation int32
	producerID int64
	epoch      int16
}

func (r *fuzzRun) closeAll() {
	for i, c := range r.conns {
		if c != nil {
			c.Close()
			r.conns[i] = nil
		}
	}
}

func (r *fuzzRun) conn(i int) net.Conn {
	if r.conns[i] == nil {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			r.t.Fatalf("dial %s: %v", r.addr, err)
		}
		r.conns[i] = c
	}
	return r.conns[i]
}

func (r *fuzzRun) drop(i int) {
	if r.conns[i] != nil {
		r.conns[i].Close()
		r.conns[i] = nil
	}
}

// fuzzAPIKeys are the API keys an input picks from: the server's, in key
// order, then some it does not answer. (A function: apis is filled by
// init, after package variables.)
func fuzzAPIKeys() []int16 {
	var keys []int16
	for k := range apis {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return append(keys, int16(kmsg.SASLHandshake), int16(kmsg.SASLAuthenticate), int16(kmsg.EndTxn), -1, 1000, math.MaxInt16)
}

func fuzzVersion(key int16, v byte) int16 {
	a, ok := apis[key]
	if !ok {
		return int16(v % 16)
	}
	if v < 0xf0 {
		return a.min + int16(v)%(a.max-a.min+1)
	}
	switch v & 0xf {
	case 0:
		return a.min - 1
	case 1:
		return a.max + 1
	case 2:
		return a.max + 2
	case 3:
		return -1
	case 4:
		return math.MaxInt16
	case 5:
		return math.MinInt16
	}
	return int16(v & 0xf)
}

func (r *fuzzRun) step(op, apiSel, verSel byte, in fuzzBytes) {
	key := r.keys[int(apiSel)%len(r.keys)]
	version := fuzzVersion(key, verSel)
	ci := int(op>>3) & 3
	if ci == 3 {
		r.drop(0)
		ci = 0
	}
	r.corr++
	corr := r.corr
	if op&0x20 != 0 {
		corr = -corr
	}
	clientID := "fuzz"
	if op&0x40 != 0 {
		clientID = ""
	}

	mode := op & 7
	var frame []byte
	switch {
	case mode == 5: // raw body
		frame = append(fuzzHeader(key, version, corr, clientID), in...)
	case mode == 7: // length prefix out of range
		r.sendBadSize(ci, in)
		return
	default:
		frame = r.wellFormed(key, version, corr, clientID, &in)
		if mode == 4 && len(frame) > 0 {
			for n := int(in.u8()%4) + 1; n > 0 && len(in) > 0; n-- {
				pos := int(in.u16()) % len(frame)
				copy(frame[pos:], in.take(int(in.u8()%4)+1))
			}
		}
	}
	frame = clampWaits(frame)
	full := binary.BigEndian.AppendUint32(nil, uint32(len(frame)))
	full = append(full, frame...)
	if mode == 6 {
		r.sendTruncated(ci, full, in)
		return
	}
	desc := describeFrame(frame)
	r.log = append(r.log, fmt.Sprintf("conn %d: %s", ci, desc))

	c := r.conn(ci)
	c.SetWriteDeadline(time.Now().Add(fuzzAnswerDeadline))
	if _, err := c.Write(full); err != nil {
		r.drop(ci) // closed over an earlier frame: allowed
		return
	}
	p := peekFrame(frame)
	if p.noAnswer {
		r.outcome("no answer due (acks=0)")
		return
	}
	deadline := fuzzAnswerDeadline
	if p.parks {
		deadline = fuzzParkPatience
	}
	corr = int32(binary.BigEndian.Uint32(frame[4:])) // a mutation may have changed it
	gotCorr, body, err := readAnswer(c, deadline)
	switch {
	case err == nil:
	case isTimeout(err) && p.parks:
		r.outcome("held by the server; connection abandoned")
		r.drop(ci)
		return
	case isTimeout(err):
		r.fail("no answer to %s and the connection is still open after %v", desc, deadline)
	default: // closed: allowed for any frame
		r.outcome("connection closed")
		r.drop(ci)
		return
	}
	if gotCorr != corr {
		r.fail("answer to %s has correlation id %d, want %d", desc, gotCorr, corr)
	}
	if p.req == nil {
		r.fail("answer to %s, which does not decode: the server should have closed the connection", desc)
	}
	resp := p.req.ResponseKind()
	resp.SetVersion(p.respVersion)
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		if body, err = skipTags(body); err != nil {
			r.fail("answer to %s: response header tags: %v", desc, err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		r.fail("answer to %s does not decode as %s v%d: %v", desc, kmsg.NameForKey(resp.Key()), p.respVersion, err)
	}
	r.outcome(fmt.Sprintf("answered, %d bytes, error codes %v", len(body), errorCodes(reflect.ValueOf(resp), nil)))
	switch resp := resp.(type) {
	case *kmsg.JoinGroupResponse:
		if resp.MemberID != "" {
			r.memberID, r.generation = resp.MemberID, resp.Generation
		}
	case *kmsg.InitProducerIDResponse:
		if resp.ErrorCode == 0 {
			r.producerID, r.epoch = resp.ProducerID, resp.ProducerEpoch
		}
	}
}

// sendTruncated sends a frame cut short, then ends the write side: the
// server must close the connection without answering.
func (r *fuzzRun) sendTruncated(ci int, full []byte, in fuzzBytes) {
	cut := len(full) / 2
	if n := int(in.u16()); n != 0 {
		cut = n % len(full)
	}
	desc := fmt.Sprintf("%d of a %d-byte frame (%s), then EOF", cut, len(full), describeFrame(full[4:]))
	r.log = append(r.log, fmt.Sprintf("conn %d: %s", ci, desc))
	c := r.conn(ci)
	c.SetWriteDeadline(time.Now().Add(fuzzAnswerDeadline))
	if _, err := c.Write(full[:cut]); err != nil {
		r.drop(ci)
		return
	}
	c.(*net.TCPConn).CloseWrite()
	r.expectClose(ci, desc)
}

// sendBadSize sends a length prefix out of range and a few bytes: the
// server must close the connection at once, allocating nothing.
func (r *fuzzRun) sendBadSize(ci int, in fuzzBytes) {
	var size uint32
	switch in.u8() % 8 {
	case 0:
		size = math.MaxInt32 // 2 GiB
	case 1:
		size = 1 << 31 // negative
	case 2:
		size = math.MaxUint32 // -1
	case 3:
		size = uint32(r.maxReq) + 1
	case 4:
		size = minFrame - 1
	case 5:
		size = 0
	case 6:
		size = 1 << 30
	default:
		size = in.u32()
		if size >= minFrame && size <= uint32(r.maxReq) {
			size = uint32(r.maxReq) + 1 + size
		}
	}
	desc := fmt.Sprintf("length prefix %d (%#x)", int32(size), size)
	r.log = append(r.log, fmt.Sprintf("conn %d: %s", ci, desc))
	c := r.conn(ci)
	c.SetWriteDeadline(time.Now().Add(fuzzAnswerDeadline))
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, size), in.take(16)...)); err != nil {
		r.drop(ci)
		return
	}
	r.expectClose(ci, desc)
}

func (r *fuzzRun) expectClose(ci int, desc string) {
	c := r.conns[ci]
	c.SetReadDeadline(time.Now().Add(fuzzAnswerDeadline))
	n, err := io.Copy(io.Discard, c)
	switch {
	case isTimeout(err):
		r.fail("after %s the connection is still open after %v", desc, fuzzAnswerDeadline)
	case n > 0:
		r.fail("after %s the server sent %d bytes, want none", desc, n)
	}
	r.drop(ci)
}

// checkAlive asks a fresh connection for ApiVersions, then empties the
// groups inputs use: a member an input left behind (its JoinGroup parked
// on a connection since abandoned) would otherwise hold every later join
// to its group until its session expires.
func (r *fuzzRun) checkAlive() {
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		r.fail("after the input: dial: %v", err)
	}
	defer c.Close()
	resp, err := roundTrip(c, kmsg.NewPtrApiVersionsRequest(), 3)
	if err != nil {
		r.fail("after the input: ApiVersions on a fresh connection: %v", err)
	}
	if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 {
		r.fail("after the input: ApiVersions error code %d, want 0", code)
	}

	describe := kmsg.NewPtrDescribeGroupsRequest()
	describe.Groups = fuzzGroups
	resp, err = roundTrip(c, describe, 5)
	if err != nil {
		r.fail("after the input: DescribeGroups: %v", err)
	}
	for _, g := range resp.(*kmsg.DescribeGroupsResponse).Groups {
		if len(g.Members) == 0 {
			continue
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = g.Group
		for _, m := range g.Members {
			leave.Members = append(leave.Members, kmsg.LeaveGroupRequestMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
		if _, err := roundTrip(c, leave, 5); err != nil {
			r.fail("after the input: LeaveGroup %q: %v", g.Group, err)
		}
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = fuzzGroups
	if _, err := roundTrip(c, del, 2); err != nil {
		r.fail("after the input: DeleteGroups: %v", err)
	}
}

// roundTrip sends one request and decodes its answer.
func roundTrip(c net.Conn, req kmsg.Request, version int16) (kmsg.Response, error) {
	const corr = 7
	frame := fuzzRequest(req, version, corr, "alive")
	c.SetWriteDeadline(time.Now().Add(fuzzAnswerDeadline))
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)); err != nil {
		return nil, err
	}
	got, body, err := readAnswer(c, fuzzAnswerDeadline)
	if err != nil {
		return nil, err
	}
	if got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		if body, err = skipTags(body); err != nil {
			return nil, err
		}
	}
	return resp, resp.ReadFrom(body)
}

func (r *fuzzRun) outcome(what string) { r.log[len(r.log)-1] += " -> " + what }

func (r *fuzzRun) fail(format string, args ...any) {
	r.t.Helper()
	buf := make([]byte, 256<<10)
	buf = buf[:runtime.Stack(buf, true)]
	r.t.Fatalf("%s\nrequests sent:\n  %s\ngoroutines:\n%s", fmt.Sprintf(format, args...), strings.Join(r.log, "\n  "), buf)
}

// errorCodes lists the error codes in an answer, for the input's log.
func errorCodes(v reflect.Value, codes []int16) []int16 {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			codes = errorCodes(v.Elem(), codes)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.Name == "ErrorCode" {
				codes = append(codes, int16(v.Field(i).Int()))
			} else if f.IsExported() {
				codes = errorCodes(v.Field(i), codes)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				codes = errorCodes(v.Index(i), codes)
			}
		}
	}
	return codes
}

func readAnswer(c net.Conn, d time.Duration) (int32, []byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return 0, nil, fmt.Errorf("answer of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func fuzzHeader(key, version int16, corr int32, clientID string) []byte {
	h := binary.BigEndian.AppendUint16(nil, uint16(key))
	h = binary.BigEndian.AppendUint16(h, uint16(version))
	h = binary.BigEndian.AppendUint32(h, uint32(corr))
	if clientID == "" {
		return binary.BigEndian.AppendUint16(h, 0xffff)
	}
	h = binary.BigEndian.AppendUint16(h, uint16(len(clientID)))
	return append(h, clientID...)
}

func fuzzRequest(req kmsg.Request, version int16, corr int32, clientID string) []byte {
	req.SetVersion(version)
	f := fuzzHeader(req.Key(), version, corr, clientID)
	if req.IsFlexible() {
		f = append(f, 0)
	}
	return req.AppendTo(f)
}

// peeked is what the harness expects of a frame, decoded as handleFrame
// decodes it.
type peeked struct {
	req         kmsg.Request // nil: the frame does not decode
	respVersion int16
	noAnswer    bool // an acks=0 produce
	parks       bool // the server may hold it until its group moves
}

func peekFrame(frame []byte) peeked {
	if len(frame) < minFrame {
		return peeked{}
	}
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	rest := frame[10:]
	if idLen > 0 {
		if int(idLen) > len(rest) {
			return peeked{}
		}
		rest = rest[idLen:]
	}
	a, ok := apis[key]
	if !ok {
		return peeked{}
	}
	if version < a.min || version > a.max {
		if key == int16(kmsg.ApiVersions) {
			return peeked{req: kmsg.NewPtrApiVersionsRequest(), respVersion: 0}
		}
		return peeked{}
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	if req.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return peeked{}
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return peeked{}
	}
	p := peeked{req: req, respVersion: version}
	switch req := req.(type) {
	case *kmsg.ProduceRequest:
		p.noAnswer = req.Acks == 0
	case *kmsg.JoinGroupRequest, *kmsg.SyncGroupRequest:
		p.parks = true
	}
	return p
}

// clampWaits re-encodes a frame that decodes as a Fetch with a long poll
// over fuzzMaxWaitMillis or a JoinGroup with a long rebalance timeout, so
// an input cannot park requests for minutes.
func clampWaits(frame []byte) []byte {
	p := peekFrame(frame)
	if p.req == nil {
		return frame
	}
	switch req := p.req.(type) {
	case *kmsg.FetchRequest:
		if req.MaxWaitMillis <= fuzzMaxWaitMillis {
			return frame
		}
		req.MaxWaitMillis = fuzzMaxWaitMillis
	case *kmsg.JoinGroupRequest:
		if req.Version == 0 || req.RebalanceTimeoutMillis > 0 && req.RebalanceTimeoutMillis <= 500 {
			return frame
		}
		req.RebalanceTimeoutMillis = 500
	default:
		return frame
	}
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	idLen := int16(binary.BigEndian.Uint16(frame[8:]))
	clientID := ""
	if idLen > 0 {
		clientID = string(frame[10 : 10+int(idLen)])
	}
	f := fuzzHeader(key, version, corr, clientID)
	if p.req.IsFlexible() {
		f = append(f, 0)
	}
	return p.req.AppendTo(f)
}

func describeFrame(frame []byte) string {
	if len(frame) < 4 {
		return fmt.Sprintf("% x", frame)
	}
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	head := frame[:min(len(frame), 48)]
	return fmt.Sprintf("%s (key %d) v%d, %d bytes: %x", kmsg.NameForKey(key), key, version, len(frame), head)
}

// wellFormed encodes a request of key at version with its fields filled
// from the input; keys kmsg does not know get a raw body.
func (r *fuzzRun) wellFormed(key, version int16, corr int32, clientID string, in *fuzzBytes) []byte {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return append(fuzzHeader(key, version, corr, clientID), *in...)
	}
	req.SetVersion(version)
	fl := &fuzzFiller{run: r, in: in}
	fl.fill(reflect.ValueOf(req).Elem(), "", 0)
	return fuzzRequest(req, version, corr, clientID)
}

// fuzzFiller sets a kmsg request's fields from the input. Field names
// steer the choices: topic names come from a small set, so requests meet
// the topics earlier ones created.
type fuzzFiller struct {
	run *fuzzRun
	in  *fuzzBytes
}

var (
	fuzzTopics = []string{"t0", "t1", "t2", "", ".", "..", "a/b", strings.Repeat("x", 250), "__consumer_offsets"}
	fuzzGroups = []string{"g0", "g1", ""}
	fuzzConfig = []string{"retention.ms", "segment.bytes", "max.message.bytes", "cleanup.policy", "min.insync.replicas",
		"retention.bytes", "segment.ms", "compression.type", "unclean.leader.election.enable", "no.such.config"}
	fuzzValues = []string{"1048576", "-1", "0", "delete", "compact", "producer", "true", "9223372036854775807", "1e3", ""}
)

func (fl *fuzzFiller) pick(set []string) string {
	c := int(fl.in.u8())
	if c%(len(set)+1) == len(set) {
		return string(fl.in.take(int(fl.in.u8() % 64)))
	}
	return set[c%(len(set)+1)]
}

// fieldName is the last part of a field path "Type.Field".
func fieldName(path string) string { return path[strings.LastIndexByte(path, '.')+1:] }

func (fl *fuzzFiller) str(path string) string {
	field := fieldName(path)
	switch {
	case strings.Contains(field, "Topic") || field == "ResourceName":
		return fl.pick(fuzzTopics)
	case strings.Contains(field, "Group"):
		return fl.pick(fuzzGroups)
	case field == "MemberID" || field == "LeaderID":
		if c := fl.in.u8() % 3; c == 0 {
			return fl.run.memberID
		} else if c == 1 {
			return ""
		}
		return string(fl.in.take(int(fl.in.u8() % 64)))
	case field == "ProtocolType":
		return fl.pick([]string{"consumer", "connect"})
	case field == "Protocol" || field == "ProtocolName" || field == "Name" && strings.Contains(path, "Protocol"):
		return fl.pick([]string{"range", "cooperative-sticky"})
	case field == "Value":
		return fl.pick(fuzzValues)
	case strings.Contains(path, "Config"):
		return fl.pick(fuzzConfig)
	}
	return fl.pick([]string{"fuzz"})
}

func (fl *fuzzFiller) integer(path string, bits int) int64 {
	field := fieldName(path)
	in := fl.in
	c := in.u8()
	switch field {
	case "MaxWaitMillis":
		return int64(c) % (fuzzMaxWaitMillis + 1)
	case "SessionTimeoutMillis":
		return []int64{6000, 10000, 5999, int64(int32(in.u32()))}[c%4]
	case "RebalanceTimeoutMillis":
		return []int64{100, 0, int64(in.u8())}[c%3]
	case "Acks":
		return []int64{-1, 1, 0, 2, int64(int16(in.u16()))}[c%5]
	case "ReplicaID":
		return []int64{-1, 1, 2, int64(int32(in.u32()))}[c%4]
	case "ReplicationFactor":
		return []int64{-1, 1, 2, int64(int16(in.u16()))}[c%4]
	case "NumPartitions", "Count":
		return []int64{1, -1, 0, 3, int64(in.u16()), int64(int32(in.u32()))}[c%6]
	case "ProducerID":
		return []int64{-1, fl.run.producerID, int64(in.u64())}[c%3]
	case "ProducerEpoch":
		return []int64{-1, int64(fl.run.epoch), int64(int16(in.u16()))}[c%3]
	case "Generation":
		return []int64{int64(fl.run.generation), -1, int64(int32(in.u32()))}[c%3]
	case "Timestamp":
		return []int64{-1, -2, -3, 0, int64(in.u64())}[c%5]
	case "MaxBytes", "PartitionMaxBytes":
		return []int64{1 << 20, 0, -1, int64(in.u8()), int64(int32(in.u32()))}[c%5]
	case "ResourceType":
		return []int64{2, 4, 0, int64(int8(in.u8()))}[c%4]
	}
	switch c % 8 {
	case 0:
		return 0
	case 1:
		return 1
	case 2:
		return -1
	case 3:
		return int64(in.u8())
	case 4:
		return 1<<(bits-1) - 1
	case 5:
		return -1 << (bits - 1)
	case 6:
		return -int64(in.u8())
	}
	v := int64(in.u64())
	return v << (64 - bits) >> (64 - bits)
}

// sliceLen is one element for a zero byte, so a zero payload asks about
// one topic and one partition rather than none, except for the lists a
// plain request leaves empty.
func (fl *fuzzFiller) sliceLen(path string, depth int) int {
	c := int(fl.in.u8())
	switch fieldName(path) {
	case "ReplicaAssignment", "ForgottenTopics":
		c++
	}
	if depth >= 3 {
		return c % 2
	}
	return []int{1, 0, 2, 3}[c%4]
}

// fuzzNilByDefault are the optional strings a plain request leaves null:
// a transactional id, say, makes a produce fail.
func fuzzNilByDefault(path string) bool {
	f := fieldName(path)
	return strings.Contains(f, "Transaction") || strings.Contains(f, "InstanceID") || strings.Contains(f, "Rack")
}

func (fl *fuzzFiller) fill(v reflect.Value, field string, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		ty := v.Type()
		for i := range v.NumField() {
			sf := ty.Field(i)
			if !sf.IsExported() || sf.Name == "Version" || sf.Name == "UnknownTags" {
				continue
			}
			fl.fill(v.Field(i), ty.Name()+"."+sf.Name, depth)
		}
	case reflect.Bool:
		v.SetBool(fl.in.u8()&1 == 1)
	case reflect.Int8:
		v.SetInt(fl.integer(field, 8))
	case reflect.Int16:
		v.SetInt(fl.integer(field, 16))
	case reflect.Int32:
		v.SetInt(fl.integer(field, 32))
	case reflect.Int64:
		v.SetInt(fl.integer(field, 64))
	case reflect.Float64:
		v.SetFloat(float64(int8(fl.in.u8())))
	case reflect.String:
		v.SetString(fl.str(field))
	case reflect.Pointer:
		if fl.in.u8()&1 == 0 != fuzzNilByDefault(field) {
			p := reflect.New(v.Type().Elem())
			fl.fill(p.Elem(), field, depth)
			v.Set(p)
		}
	case reflect.Array: // topic ids
		if v.Type().Elem().Kind() != reflect.Uint8 {
			return
		}
		var id [16]byte
		switch fl.in.u8() % 4 {
		case 0, 1:
			if t, ok := fl.run.mc.Topic(fuzzTopics[0]); ok {
				id = t.ID
			}
		case 2:
			copy(id[:], fl.in.take(16))
		case 3:
			if ts := fl.run.mc.Topics(); len(ts) > 0 {
				id = ts[int(fl.in.u8())%len(ts)].ID
			}
		}
		reflect.Copy(v, reflect.ValueOf(id[:]))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if fieldName(field) == "Records" {
				v.SetBytes(fl.batches())
			} else {
				v.SetBytes(fl.in.take(int(fl.in.u8() % 64)))
			}
			return
		}
		n := fl.sliceLen(field, depth)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fl.fill(s.Index(i), field, depth+1)
		}
		v.Set(s)
	}
}

// fuzzCodecs compress record batches; index = attributes bits 0-2.
var fuzzCodecs = func() []kgo.Compressor {
	out := []kgo.Compressor{nil}
	for _, c := range []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		comp, err := kgo.DefaultCompressor(c)
		if err != nil {
			panic(err)
		}
		out = append(out, comp)
	}
	return out
}()

// batches builds zero to two v2 record batches. A zero byte keeps each
// part valid (one uncompressed record, the right CRC and lengths); other
// values pick a codec (5-7 are unknown ones), records, producer state and
// which header field to get wrong.
func (fl *fuzzFiller) batches() []byte {
	in := fl.in
	var out []byte
	for range []int{1, 0, 2}[in.u8()%3] {
		codec := in.u8()
		attrs := int16(codec&7) | int16(in.u8()&0xf8) // bit 3 timestamp type, 4 transactional, 5 control
		nrec := []int{1, 0, 2, 3, 8}[in.u8()%5]
		var recs []byte
		for i := range nrec {
			var rec []byte
			rec = append(rec, 0) // attributes
			rec = binary.AppendVarint(rec, int64(int8(in.u8())))
			delta := int64(i)
			if in.u8()&1 == 1 {
				delta = int64(int32(in.u32()))
			}
			rec = binary.AppendVarint(rec, delta)
			if k := in.take(int(in.u8() % 32)); len(k) > 0 {
				rec = binary.AppendVarint(rec, int64(len(k)))
				rec = append(rec, k...)
			} else {
				rec = binary.AppendVarint(rec, -1)
			}
			val := in.take(int(in.u8() % 64))
			rec = binary.AppendVarint(rec, int64(len(val)))
			rec = append(rec, val...)
			nh := int(in.u8() % 3)
			rec = binary.AppendVarint(rec, int64(nh))
			for range nh {
				hk := in.take(int(in.u8() % 8))
				rec = binary.AppendVarint(rec, int64(len(hk)))
				rec = append(rec, hk...)
				rec = binary.AppendVarint(rec, -1)
			}
			recLen := int64(len(rec))
			if b := in.u8(); b&0x80 != 0 {
				recLen += int64(int8(b << 1)) // a record length off by some bytes
			}
			recs = append(binary.AppendVarint(recs, recLen), rec...)
		}
		corrupt := in.u8()
		if corrupt&0x20 != 0 {
			recs = in.take(int(in.u8())) // what the codec gets is garbage
		}
		if c := int(codec & 7); c >= 1 && c <= 4 && corrupt&0x20 == 0 {
			var buf bytes.Buffer
			z, used := fuzzCodecs[c].Compress(&buf, recs)
			if used == kgo.CompressionCodecType(c) {
				recs = append([]byte(nil), z...)
			} else {
				attrs &^= 7
			}
		}
		pid, epoch, seq := int64(-1), int16(-1), int32(-1)
		if in.u8()&1 == 1 {
			pid, epoch, seq = fl.run.producerID, fl.run.epoch, int32(in.u8())
		}
		b := make([]byte, 0, 61+len(recs))
		b = binary.BigEndian.AppendUint64(b, 0)             // base offset
		b = binary.BigEndian.AppendUint32(b, 0)             // batch length, below
		b = binary.BigEndian.AppendUint32(b, 0)             // partition leader epoch
		b = append(b, 2)                                    // magic
		b = binary.BigEndian.AppendUint32(b, 0)             // crc, below
		b = binary.BigEndian.AppendUint16(b, uint16(attrs)) // attributes
		b = binary.BigEndian.AppendUint32(b, uint32(max(nrec-1, 0)))
		b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000)
		b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000)
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(epoch))
		b = binary.BigEndian.AppendUint32(b, uint32(seq))
		count := uint32(nrec)
		if corrupt&1 != 0 {
			count = in.u32()
		}
		b = binary.BigEndian.AppendUint32(b, count)
		b = append(b, recs...)
		batchLen := uint32(len(b) - 12)
		if corrupt&2 != 0 {
			batchLen = in.u32()
		}
		binary.BigEndian.PutUint32(b[8:], batchLen)
		if corrupt&4 != 0 {
			b[16] = in.u8()
		}
		crc := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
		if corrupt&8 != 0 {
			crc ^= 1
		}
		binary.BigEndian.PutUint32(b[17:], crc)
		if corrupt&0x10 != 0 && len(b) > 0 {
			b = b[:int(in.u16())%len(b)]
		}
		out = append(out, b...)
	}
	return out
}

// fuzzBytes is the input not yet read; reads past its end give zeros.
type fuzzBytes []byte

func (b *fuzzBytes) take(n int) []byte {
	n = min(n, len(*b))
	out := (*b)[:n:n]
	*b = (*b)[n:]
	return out
}

func (b *fuzzBytes) u8() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (b *fuzzBytes) u16() uint16 { return uint16(b.u8())<<8 | uint16(b.u8()) }
func (b *fuzzBytes) u32() uint32 { return uint32(b.u16())<<16 | uint32(b.u16()) }
func (b *fuzzBytes) u64() uint64 { return uint64(b.u32())<<32 | uint64(b.u32()) }
