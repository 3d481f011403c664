package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reeve-edge/reeve/api"
)

// The status page in a real browser: Debian's chromium, headless, driven
// over the DevTools protocol. test/ui/deps.sh installs it; CI sets
// REEVE_REQUIRE_CHROMIUM=1 so a missing browser fails instead of skipping.

const chromiumPath = "/usr/bin/chromium"

// browser starts a headless Chromium with a fresh profile and returns a tab
// context. JavaScript exceptions, console errors and the browser's error
// log entries (failed loads, CSP violations) are collected into the
// returned function's answer.
func browser(t *testing.T, ctx context.Context) (tab context.Context, pageErrors func() []string) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("REEVE_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("%s: %v; install it with: bash test/ui/deps.sh", chromiumPath, err)
		}
		t.Skipf("%s not installed; bash test/ui/deps.sh installs it (REEVE_REQUIRE_CHROMIUM=1 makes this a failure)", chromiumPath)
	}
	// Without the background-networking flags Chromium dials Google's
	// services at start; on a closed network those connections are refused
	// and only slow it down.
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
		chromedp.WindowSize(1280, 900),
	)
	tab, cancelTab := chromedp.NewContext(alloc, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	var mu sync.Mutex
	var errs []string
	if err := chromedp.Listen(tab, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			errs = append(errs, fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				errs = append(errs, "console.error: "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			// The browser's own complaints: a failed load, a
			// Content-Security-Policy violation.
			if e := ev.Entry; e.Level == cdplog.EntryLevelError {
				errs = append(errs, fmt.Sprintf("%s: %s %s", e.Source, e.Text, e.URL))
			}
		}
	}); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	if _, err := chromedp.Call(tab, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("%s: enable the log domain: %v", chromiumPath, err)
	}
	return tab, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}

// artifactsDir is where browser tests leave screenshots:
// $REEVE_TEST_ARTIFACTS, or test-artifacts/ at the repository root.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("REEVE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "test-artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("test artifacts folder: %v", err)
	}
	return dir
}

// screenshot saves the whole page (or with full false, what the viewport
// shows) as a PNG artifact and logs its path.
func screenshot(t *testing.T, tab context.Context, name string, full bool) {
	t.Helper()
	shot := chromedp.CaptureScreenshot()
	if full {
		shot = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(tab, shot)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifactsDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// pageView is what the status page's DOM shows, read through the data
// attributes it sets for this purpose.
type pageView struct {
	Conn      string            `json:"conn"`
	Marker    string            `json:"marker"`
	Nodes     map[string]bool   `json:"nodes"`   // node id → alive
	Leaders   map[string]uint64 `json:"leaders"` // topic-partition → leader node (0 offline)
	Dead      []string          `json:"dead"`    // topic-partition/node of replicas shown down
	Elections []string          `json:"elections"`
	Policies  []string          `json:"policies"` // topics pattern policy running
}

const readPage = `(() => {
  const rows = (sel) => [...document.querySelectorAll(sel)];
  return {
    conn: document.getElementById('conn').dataset.state,
    marker: window.reeveTestMarker || '',
    nodes: Object.fromEntries(rows('#nodes tbody tr[data-node-id]').map((r) => [r.dataset.nodeId, r.dataset.alive === 'true'])),
    leaders: Object.fromEntries(rows('#partitions tbody tr[data-partition]').map((r) => [r.dataset.partition, Number(r.dataset.leader)])),
    dead: rows('#partitions tbody tr[data-partition] .replica[data-alive="false"]').map((c) => c.closest('tr').dataset.partition + '/' + c.dataset.node),
    elections: rows('#elections tbody tr[data-partition]').map((r) => r.dataset.partition + '→' + r.dataset.to),
    policies: rows('#policies tbody tr[data-policy]').map((r) => r.querySelector('th').textContent + ' ' + r.dataset.policy + ' ' + r.dataset.running),
  };
})()`

// apiView is what the answering node's API says, in pageView's terms.
func apiView(t *testing.T, p *proc) (pageView, error) {
	t.Helper()
	var st api.Status
	var parts partitionsBody
	var pol api.Policies
	for path, v := range map[string]any{"/v1/status": &st, "/v1/partitions?stale=true&offsets=false": &parts, "/v1/policies": &pol} {
		if code, err := httpGetJSON("http://"+p.admin+path, v); err != nil || code != http.StatusOK {
			return pageView{}, fmt.Errorf("GET %s on node %d: %d, %v", path, p.id, code, err)
		}
	}
	v := pageView{Conn: "ok", Nodes: map[string]bool{}, Leaders: map[string]uint64{}}
	for _, n := range st.Nodes {
		v.Nodes[fmt.Sprint(n.ID)] = n.Alive
	}
	for _, p := range parts.Partitions {
		name := fmt.Sprintf("%s-%d", p.Topic, p.Partition)
		v.Leaders[name] = p.Leader
		for _, r := range p.ReplicaStates {
			if !r.Alive {
				v.Dead = append(v.Dead, fmt.Sprintf("%s/%d", name, r.Node))
			}
		}
	}
	for _, r := range pol.Rules {
		v.Policies = append(v.Policies, fmt.Sprintf("%s %s %v", r.Topics, r.Policy, r.Running))
	}
	for _, e := range slices.Backward(st.Elections) {
		v.Elections = append(v.Elections, fmt.Sprintf("%s-%d→%d", e.Topic, e.Partition, e.To))
	}
	return v, nil
}

// waitPage polls the page until its DOM shows what the node's API says and
// ok holds for it, and returns that view.
func waitPage(t *testing.T, tab context.Context, p *proc, within time.Duration, what string, ok func(pageView) bool) pageView {
	t.Helper()
	deadline := time.Now().Add(within)
	var dom, api pageView
	for {
		var err error
		dom, err = chromedp.Run(tab, chromedp.Evaluate[pageView](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		api, err = apiView(t, p)
		if err == nil && ok(dom) && sameView(dom, api) {
			return dom
		}
		if time.Now().After(deadline) {
			t.Fatalf("page never showed %s within %v:\n page %+v\n api  %+v (%v)", what, within, dom, api, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func sameView(dom, api pageView) bool {
	return dom.Conn == api.Conn && maps.Equal(dom.Nodes, api.Nodes) && maps.Equal(dom.Leaders, api.Leaders) &&
		slices.Equal(slices.Sorted(slices.Values(dom.Dead)), slices.Sorted(slices.Values(api.Dead))) &&
		slices.Equal(dom.Elections, api.Elections) && slices.Equal(dom.Policies, api.Policies)
}

// TestStatusPage_browserShowsAFailoverWithoutReload is the status page's
// acceptance test: a 3-node cluster, an RF 3 topic with records in it, the
// page of a node that will survive open in headless Chromium. The page shows
// three live nodes and the leaders the API reports; after a SIGKILL of a
// node leading partitions it shows, without being reloaded, that node down,
// its replicas down, the new leaders and the elections, as the API does.
// At a phone's width nothing overflows. Last, the node serving the page is
// killed too, and the page says it is unreachable while keeping its last
// data. Screenshots of each step are saved as test artifacts.
func TestStatusPage_browserShowsAFailoverWithoutReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tab, pageErrors := browser(t, ctx)

	// Two rules for the policies table: the built-in for this test's topic,
	// and a module that is not in the policy folder (first-isr stands in).
	rules := append(slices.Clone(electionConfig), fmt.Sprintf("policy_dir = %q", t.TempDir()),
		"[[election.rules]]", `topics = "status-*"`, `policy = "first-isr"`,
		"[[election.rules]]", `topics = "sensors.*"`, `policy = "absent.wasm"`, `settings = { label = "zone", value = "z1" }`)
	procs := newProcCluster(t, 3, rules...)
	const topic = "status-page"
	createTopic(t, procs, topic, 6, 3)
	waitFullISR(t, procs[0], topic, 3, 30*time.Second)
	cl := clusterClient(t, procs, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var recs []*kgo.Record
	for i := range 120 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("status page")})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	cl.Close()
	waitSettled(t, procs, 30*time.Second)

	// Kill a partition leader, and watch from the Raft leader of that
	// partition's group: the controller that runs its election, so the
	// page's election table (this node's decision log) has rows to show.
	victim, viewer, controls := pickVictimAndViewer(t, procs, topic)
	t.Logf("viewing node %d's page (controller of a partition node %d leads: %v); node %d will be killed",
		viewer.id, victim.id, controls, victim.id)

	url := "http://" + viewer.admin + "/"
	if _, err := chromedp.Run(tab, chromedp.Steps(chromedp.Navigate(url), chromedp.WaitVisible("#nodes tbody tr"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	before := waitPage(t, tab, viewer, 30*time.Second, "three live nodes and the API's leaders", func(v pageView) bool {
		return len(v.Nodes) == 3 && v.Nodes["1"] && v.Nodes["2"] && v.Nodes["3"] && len(v.Leaders) == 6 && len(v.Dead) == 0 &&
			len(v.Policies) == 2
	})
	if want := []string{"status-* first-isr true", "sensors.* absent.wasm false"}; !slices.Equal(before.Policies, want) {
		t.Errorf("policies on the page = %q, want %q", before.Policies, want)
	}
	led := 0
	for _, l := range before.Leaders {
		if l == uint64(victim.id) {
			led++
		}
	}
	if led == 0 {
		t.Fatalf("node %d leads no partition in the page's view %v", victim.id, before.Leaders)
	}
	// The replicas' lag: acks=all means every in-sync follower has the
	// records, so each of the 18 replicas shows lag 0 (a refresh whose
	// offset question timed out shows it unknown until the next).
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		lags, err := chromedp.Run(tab, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('#partitions .replica[data-in-isr="true"]')].map((c) => c.dataset.lag)`))
		if err == nil && len(lags) == 18 && !slices.ContainsFunc(lags, func(l string) bool { return l != "0" }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in-sync replicas' lag on the page = %v, %v; want 18 times 0", lags, err)
		}
	}
	screenshot(t, tab, "statuspage-before.png", true)

	// A marker in the page's JavaScript state: a reload would lose it.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[chromedp.Void](`window.reeveTestMarker = 'not reloaded'`)); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	victim.kill(t, syscall.SIGKILL)
	dead := fmt.Sprint(victim.id)
	after := waitPage(t, tab, viewer, 45*time.Second, fmt.Sprintf("node %d down and new leaders", victim.id), func(v pageView) bool {
		if v.Marker != "not reloaded" || len(v.Nodes) != 3 || v.Nodes[dead] || len(v.Leaders) != 6 {
			return false
		}
		for _, l := range v.Leaders {
			if l == 0 || l == uint64(victim.id) {
				return false
			}
		}
		return len(v.Dead) == 6 && (!controls || slices.ContainsFunc(v.Elections, func(e string) bool {
			part, to, _ := strings.Cut(e, "→")
			return before.Leaders[part] == uint64(victim.id) && to != "0"
		}))
	})
	t.Logf("page showed node %d down and %d new leaders %v after the kill, no reload; elections %v",
		victim.id, led, time.Since(killed).Round(100*time.Millisecond), after.Elections)
	screenshot(t, tab, "statuspage-after.png", true)

	// A phone's width: the tables become cards and nothing overflows. The
	// screenshot is the phone's screen, at twice the pixels as a phone has.
	if _, err := chromedp.Run(tab, chromedp.Steps(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Sleep(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil || overflow > 0 {
		t.Errorf("at 390 px the page is %d px too wide (%v)", overflow, err)
	}
	screenshot(t, tab, "statuspage-phone.png", false)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}

	// The node serving the page goes away: the page says so at once and
	// keeps its last data, greyed.
	if _, err := chromedp.Run(tab, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	viewer.kill(t, syscall.SIGKILL)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		v, err := chromedp.Run(tab, chromedp.Evaluate[pageView](readPage))
		if err == nil && v.Conn == "down" && v.Marker == "not reloaded" && len(v.Leaders) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("page never showed node %d unreachable (keeping its data): %v, %v", viewer.id, v, err)
		}
	}
	banner, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById('conn').textContent`))
	if err != nil || !strings.Contains(banner, "Unreachable: "+viewer.admin) {
		t.Errorf("banner = %q, %v; want it to name %s unreachable", banner, err, viewer.admin)
	}
	screenshot(t, tab, "statuspage-unreachable.png", true)
}

// pickVictimAndViewer picks a node leading a partition of topic whose Raft
// group another node leads: the first will be killed, the second, its
// controller, is watched (controls is true). Without such a partition the
// leader of partition 0 is killed and the next node watched.
func pickVictimAndViewer(t *testing.T, procs []*proc, topic string) (victim, viewer *proc, controls bool) {
	t.Helper()
	ps, err := partitionViews(procs[0], topic, true)
	if err != nil {
		t.Fatal(err)
	}
	var info api.Cluster
	if code, err := httpGetJSON("http://"+procs[0].admin+"/v1/cluster", &info); err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/cluster: %d, %v", code, err)
	}
	groupLeader := map[uint64]uint64{}
	for _, g := range info.Groups {
		groupLeader[g.ID] = g.Leader
	}
	for _, p := range ps {
		if g := groupLeader[p.Group]; p.Leader != 0 && g != 0 && g != p.Leader {
			return procs[p.Leader-1], procs[g-1], true
		}
	}
	l := ps[0].Leader
	return procs[l-1], procs[l%3], false
}

// String shows a pageView as JSON in failure messages.
func (v pageView) String() string {
	b, _ := json.Marshal(v)
	return string(b)
}
