package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
	"github.com/reeve-edge/reeve/appliance"
	"github.com/reeve-edge/reeve/config"
)

// statusNode starts a one-node reeve in this process with events off.
func statusNode(t *testing.T) *appliance.Server {
	t.Helper()
	return startNode(t, func(c *config.Config) {
		off := false
		c.Events.Enabled = &off
	})
}

// httpGet returns a GET's status, headers and body.
func httpGet(t *testing.T, url string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestStatusPage_servesTheEmbeddedPage: GET / is the page, its script and
// style come from /ui/ with their types, it names no asset outside its own
// origin, a revalidation with the ETag is a 304, and nothing but the
// embedded files is served (no listing, no other path).
func TestStatusPage_servesTheEmbeddedPage(t *testing.T) {
	s := statusNode(t)
	base := "http://" + s.AdminAddr()

	code, h, body := httpGet(t, base+"/")
	if code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d, Content-Type %q, want 200 text/html; charset=utf-8", code, h.Get("Content-Type"))
	}
	for _, want := range []string{`<title>reeve status</title>`, `src="ui/app.js"`, `href="ui/style.css"`,
		`id="nodes"`, `id="partitions"`, `id="elections"`, `id="policies"`, `id="conn"`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / lacks %s", want)
		}
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET / Content-Security-Policy = %q, want only its own origin", csp)
	}
	// Every src and href is relative to the page (or a data: URL): no CDN,
	// no external font, and it still works behind a path prefix.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		if u := m[1]; strings.Contains(u, "//") || strings.HasPrefix(u, "/") {
			t.Errorf("GET / refers to %q, want a relative or data: URL", u)
		}
	}

	for _, tc := range []struct{ path, ctype, has string }{
		{"/ui/app.js", "text/javascript; charset=utf-8", "v1/partitions?stale=true"},
		{"/ui/style.css", "text/css; charset=utf-8", "@media (max-width: 720px)"},
		{"/ui/index.html", "text/html; charset=utf-8", `id="nodes"`},
	} {
		code, h, body := httpGet(t, base+tc.path)
		if code != http.StatusOK || h.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.has) {
			t.Errorf("GET %s = %d, %q, has %q: %v; want 200 %s", tc.path, code, h.Get("Content-Type"), tc.has,
				strings.Contains(body, tc.has), tc.ctype)
		}
		etag := h.Get("ETag")
		if code, _, _ := httpGet(t, base+tc.path, "If-None-Match", etag); etag == "" || code != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s = %d, want 304", tc.path, etag, code)
		}
	}
	for _, path := range []string{"/ui/", "/ui/nope.js", "/index.html", "/ui/../statuspage.go", "/app.js"} {
		if code, _, _ := httpGet(t, base+path); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, code)
		}
	}
}

// partitionsBody is GET /v1/partitions; the test below also checks its
// keys against the raw JSON, so a field the API type lacks shows up.
type partitionsBody = api.Partitions

// TestStatusPage_partitionsAPIShape: GET /v1/partitions lists every
// partition sorted by topic and partition, with exactly the documented keys,
// each replica's log end offset (after 7 records to partition 0 of "b", 7
// there and 0 elsewhere) and lag; ?offsets=false leaves offsets unknown,
// ?stale=true says so, ?topic= filters and an unknown topic is a 404.
func TestStatusPage_partitionsAPIShape(t *testing.T) {
	s := statusNode(t)
	base := "http://" + s.AdminAddr()
	cl := kgoClient(t, s.KafkaAddr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	procs := []*proc{{kafka: s.KafkaAddr()}}
	createTopic(t, procs, "b", 2, 1)
	createTopic(t, procs, "a", 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 7 {
		r := &kgo.Record{Topic: "b", Partition: 0, Value: []byte{byte(i)}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce to b-0: %v", err)
		}
	}

	code, _, raw := httpGet(t, base+"/v1/partitions")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/partitions = %d: %s", code, raw)
	}
	// The documented keys, no more and no fewer.
	var loose struct {
		Partitions []map[string]json.RawMessage `json:"partitions"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &top); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(top)); !slices.Equal(got, []string{"node_id", "offsets", "partitions", "stale"}) {
		t.Errorf("GET /v1/partitions keys = %v", got)
	}
	json.Unmarshal([]byte(raw), &loose)
	wantKeys := []string{"group", "isr", "leader", "leader_epoch", "max_lag", "partition", "partition_epoch",
		"replica_states", "replicas", "topic", "topic_id"}
	for _, p := range loose.Partitions {
		if got := slices.Sorted(maps.Keys(p)); !slices.Equal(got, wantKeys) {
			t.Errorf("partition keys = %v, want %v", got, wantKeys)
		}
		var rs []map[string]json.RawMessage
		json.Unmarshal(p["replica_states"], &rs)
		for _, r := range rs {
			if got := slices.Sorted(maps.Keys(r)); !slices.Equal(got, []string{"alive", "in_isr", "lag", "leader", "log_end_offset", "node"}) {
				t.Errorf("replica state keys = %v", got)
			}
		}
	}

	var body partitionsBody
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatal(err)
	}
	if body.NodeID != 1 || body.Stale || !body.Offsets || len(body.Partitions) != 3 {
		t.Fatalf("GET /v1/partitions = node %d stale %v offsets %v, %d partitions; want node 1, false, true, 3",
			body.NodeID, body.Stale, body.Offsets, len(body.Partitions))
	}
	var names []string
	for _, p := range body.Partitions {
		names = append(names, fmt.Sprintf("%s-%d", p.Topic, p.Partition))
		wantLEO := int64(0)
		if p.Topic == "b" && p.Partition == 0 {
			wantLEO = 7
		}
		if p.Leader != 1 || !slices.Equal(p.ISR, []uint64{1}) || !slices.Equal(p.Replicas, []uint64{1}) || p.Group < 2 ||
			p.TopicID == "" || p.MaxLag != -1 || len(p.ReplicaStates) != 1 {
			t.Errorf("%s-%d = %+v", p.Topic, p.Partition, p)
			continue
		}
		r := p.ReplicaStates[0]
		if r.Node != 1 || !r.Leader || !r.InISR || !r.Alive || r.LogEndOffset != wantLEO || r.Lag != 0 {
			t.Errorf("%s-%d replica = %+v, want node 1 leader in sync alive, log end %d, lag 0", p.Topic, p.Partition, r, wantLEO)
		}
	}
	if want := []string{"a-0", "b-0", "b-1"}; !slices.Equal(names, want) {
		t.Errorf("partitions in order %v, want %v", names, want)
	}

	var quick partitionsBody
	if code, err := httpGetJSON(base+"/v1/partitions?offsets=false&stale=true&topic=b", &quick); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/partitions?offsets=false&stale=true&topic=b = %d, %v", code, err)
	}
	if !quick.Stale || quick.Offsets || len(quick.Partitions) != 2 || quick.Partitions[0].Topic != "b" {
		t.Fatalf("?offsets=false&stale=true&topic=b = %+v", quick)
	}
	if r := quick.Partitions[0].ReplicaStates[0]; r.LogEndOffset != -1 || r.Lag != -1 {
		t.Errorf("?offsets=false: b-0 replica = %+v, want log end and lag -1", r)
	}
	if code, _, body := httpGet(t, base+"/v1/partitions?topic=nope"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /v1/partitions?topic=nope = %d %s, want 404 with an error", code, body)
	}
}
