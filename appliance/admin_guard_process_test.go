package appliance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/reeve-edge/reeve/api"
)

// The admin endpoint's guard (admin/guard.go) against the real binary: a
// node with admin.token_file set, driven by the reeve command, curl-like
// requests and, for the status page, headless Chromium.

const procToken = "proc-test-token-0123456789abcdef"

// tokenProc starts one node whose [admin] section also has adminLines,
// with a token file (mode 0600) holding procToken named in
// admin.token_file.
func tokenProc(t *testing.T, adminLines ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{id: 1, raft: freePort(t, "127.0.0.1"), admin: freePort(t, "127.0.0.1"),
		cfgPath: filepath.Join(dir, "reeve.toml"), logPath: filepath.Join(dir, "reeve.log")}
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(procToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeNodeConfig(t, p, filepath.Join(dir, "data"), fmt.Sprintf("initial_members = [%q]", "1@"+p.raft))
	b, err := os.ReadFile(p.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := append([]string{fmt.Sprintf("token_file = %q", tokenFile)}, adminLines...)
	cfg := strings.Replace(string(b), "[admin]\n", "[admin]\n"+strings.Join(lines, "\n")+"\n", 1)
	if err := os.WriteFile(p.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(t)
	p.waitReady(t)
	return p
}

// adminRequest sends a request to p's admin endpoint and returns the
// status and body. headers are pairs of name and value.
func adminRequest(t *testing.T, p *proc, method, path, body string, headers ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Host" {
			req.Host = headers[i+1]
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProcess_adminToken_cliWithConfigFile: on a node with a token, the
// reeve command works given -c FILE (whose admin.token_file it reads) or
// --token-file, and without either fails saying to pass one; reads need
// the token too (public_reads is off), probes do not.
func TestProcess_adminToken_cliWithConfigFile(t *testing.T) {
	p := tokenProc(t)
	out, errOut, status := run(t, "topic", "create", "guarded", "-p", "2", "-c", p.cfgPath)
	if status != 0 || !strings.Contains(out, "created topic guarded") {
		t.Fatalf("reeve topic create guarded -c FILE: status %d, %s%s", status, out, errOut)
	}
	tokenFile := filepath.Join(filepath.Dir(p.cfgPath), "admin.token")
	out, errOut, status = run(t, "topic", "list", "--admin", p.admin, "--token-file", tokenFile)
	if status != 0 || !strings.Contains(out, "guarded") {
		t.Errorf("reeve topic list --token-file: status %d, %s%s", status, out, errOut)
	}

	for _, args := range [][]string{
		{"topic", "create", "unguarded", "-r", "1", "--admin", p.admin},
		{"topic", "list", "--admin", p.admin},
		{"node", "remove", "1", "--admin", p.admin},
	} {
		out, errOut, status = run(t, args...)
		if status != 1 || !strings.Contains(errOut, "wants its admin token: pass --token-file FILE") || !strings.Contains(errOut, "-c FILE") {
			t.Errorf("reeve %s without a token: status %d, stdout %q, stderr %q; want 1 saying to pass --token-file or -c",
				strings.Join(args, " "), status, out, errOut)
		}
	}
	if code, body := adminRequest(t, p, "GET", "/v1/topics", ""); code != http.StatusUnauthorized || !strings.Contains(body, "admin.token_file") {
		t.Errorf("GET /v1/topics without the token = %d %s, want 401", code, body)
	}
	for _, probe := range []string{"/healthz", "/readyz", "/livez"} {
		if code, body := adminRequest(t, p, "GET", probe, ""); code != http.StatusOK {
			t.Errorf("GET %s without the token = %d %s, want 200", probe, code, body)
		}
	}
	code, body := adminRequest(t, p, "GET", "/v1/topics", "", "Authorization", "Bearer "+procToken)
	var topics []api.Topic
	if err := json.Unmarshal([]byte(body), &topics); code != http.StatusOK || err != nil || len(topics) != 1 || topics[0].Name != "guarded" {
		t.Errorf("GET /v1/topics with the token = %d %s (%v), want only guarded", code, body, err)
	}
}

// TestProcess_adminGuard_browserWritesChangeNothing: on a node with no
// token at all, what a web page can send without a preflight (text/plain
// or a form, from a foreign Origin or not) and a request through a
// rebound name change nothing; a JSON request from curl still works.
func TestProcess_adminGuard_browserWritesChangeNothing(t *testing.T) {
	p, _ := kafkaNodeTB(t, "")
	nodes := func() string {
		t.Helper()
		code, body := adminRequest(t, p, "GET", "/v1/nodes", "")
		if code != http.StatusOK {
			t.Fatalf("GET /v1/nodes = %d %s", code, body)
		}
		return body
	}
	before := nodes()
	nodeBody := `{"id": 7, "raft_address": "127.0.0.1:1"}`
	for _, tt := range []struct {
		name, path, body string
		headers          []string
		status           int
	}{
		{"text/plain node add from a foreign page", "/v1/nodes", nodeBody,
			[]string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "http://evil.example"}, http.StatusForbidden},
		{"text/plain node add", "/v1/nodes", nodeBody, []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"form topic create from a foreign page", "/v1/topics", "name=pwned&partitions=1&replication_factor=1",
			[]string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "http://evil.example"}, http.StatusForbidden},
		{"text/plain topic create", "/v1/topics", `{"name": "pwned", "partitions": 1, "replication_factor": 1}`,
			[]string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"JSON node add through a rebound name", "/v1/nodes", nodeBody,
			[]string{"Content-Type", "application/json", "Host", "evil.example:" + strings.Split(p.admin, ":")[1]}, http.StatusMisdirectedRequest},
	} {
		if code, body := adminRequest(t, p, "POST", tt.path, tt.body, tt.headers...); code != tt.status {
			t.Errorf("%s: POST %s = %d %s, want %d", tt.name, tt.path, code, body, tt.status)
		}
	}
	if code, body := adminRequest(t, p, "GET", "/v1/topics", "", "Host", "evil.example"); code != http.StatusMisdirectedRequest ||
		!strings.Contains(body, "admin.allowed_hosts") {
		t.Errorf("GET /v1/topics with Host: evil.example = %d %s, want 421 naming admin.allowed_hosts", code, body)
	}
	// Even a well-formed request cannot add a node nobody runs ...
	if code, body := adminRequest(t, p, "POST", "/v1/nodes", nodeBody, "Content-Type", "application/json"); code != http.StatusConflict ||
		!strings.Contains(body, "cluster.join = true") {
		t.Errorf("JSON node add of a node nobody runs = %d %s, want 409 saying to start it first", code, body)
	}
	if after := nodes(); after != before {
		t.Errorf("GET /v1/nodes changed:\nbefore %s\nafter  %s", before, after)
	}
	// ... and a forced one adds a non-voter: the one-node cluster keeps
	// its quorum (the topic below is created after it).
	if code, body := adminRequest(t, p, "POST", "/v1/nodes", `{"id": 7, "raft_address": "127.0.0.1:1", "force": true}`,
		"Content-Type", "application/json"); code != http.StatusOK {
		t.Errorf("forced JSON node add = %d %s, want 200", code, body)
	}
	code, body := adminRequest(t, p, "POST", "/v1/topics", `{"name": "by-curl", "partitions": 1, "replication_factor": 1}`,
		"Content-Type", "application/json")
	if code != http.StatusCreated {
		t.Fatalf("JSON POST /v1/topics = %d %s, want 201", code, body)
	}
	_, body = adminRequest(t, p, "GET", "/v1/topics", "")
	var topics []api.Topic
	json.Unmarshal([]byte(body), &topics)
	if len(topics) != 1 || topics[0].Name != "by-curl" {
		t.Errorf("topics = %s, want only by-curl", body)
	}
}

// TestStatusPage_browserAsksForTheToken: the status page of a node with a
// token shows the token form; a wrong token is refused and asked again,
// the right one shows the cluster, and a reload keeps it (session storage).
func TestStatusPage_browserAsksForTheToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tab, pageErrors := browser(t, ctx)
	p := tokenProc(t)

	const state = `(() => ({conn: document.getElementById('conn').dataset.state,
	  form: !document.getElementById('token-form').hidden,
	  why: document.getElementById('token-why').textContent,
	  nodes: document.querySelectorAll('#nodes tbody tr[data-node-id]').length}))()`
	type view struct {
		Conn  string `json:"conn"`
		Form  bool   `json:"form"`
		Why   string `json:"why"`
		Nodes int    `json:"nodes"`
	}
	wait := func(what string, ok func(view) bool) view {
		t.Helper()
		var v view
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var err error
			v, err = chromedp.Run(tab, chromedp.Evaluate[view](state))
			if err == nil && ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("page never showed %s: %+v, %v", what, v, err)
			}
		}
	}
	submit := func(token string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Steps(chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))); err != nil {
			t.Fatalf("type the token: %v", err)
		}
	}

	url := "http://" + p.admin + "/"
	if _, err := chromedp.Run(tab, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	v := wait("the token form", func(v view) bool { return v.Conn == "locked" && v.Form })
	if !strings.Contains(v.Why, "admin.token_file") || v.Nodes != 0 {
		t.Errorf("locked page = %+v, want the form naming admin.token_file and no data", v)
	}
	screenshot(t, tab, "statuspage-token.png", false)

	submit("not-the-token-0123456789")
	wait("the wrong token refused", func(v view) bool { return v.Conn == "locked" && v.Form && strings.Contains(v.Why, "refused") })
	submit(procToken)
	wait("the cluster", func(v view) bool { return v.Conn == "ok" && !v.Form && v.Nodes == 1 })

	if _, err := chromedp.Run(tab, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	wait("the cluster after a reload", func(v view) bool { return v.Conn == "ok" && !v.Form && v.Nodes == 1 })
	// The 401s are logged by the browser as failed loads; anything else
	// (an exception, a CSP violation) is the page's fault.
	errs := slices.DeleteFunc(pageErrors(), func(e string) bool { return strings.Contains(e, "401") })
	if len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestProcess_adminToken_rotatedBySIGHUP: rewriting admin.token_file and
// sending SIGHUP puts the new token in force without a restart; the old
// one is refused from then on.
func TestProcess_adminToken_rotatedBySIGHUP(t *testing.T) {
	p := tokenProc(t)
	const rotated = "rotated-token-fedcba9876543210"
	auth := func(token string) int {
		code, _ := adminRequest(t, p, "GET", "/v1/nodes", "", "Authorization", "Bearer "+token)
		return code
	}
	if code := auth(procToken); code != http.StatusOK {
		t.Fatalf("GET /v1/nodes with the token: %d", code)
	}
	tokenFile := filepath.Join(filepath.Dir(p.cfgPath), "admin.token")
	if err := os.WriteFile(tokenFile, []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); auth(rotated) != http.StatusOK; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rewritten token was not in force 10 s after SIGHUP")
		}
	}
	if code := auth(procToken); code != http.StatusUnauthorized {
		t.Errorf("the old token after the rotation: %d, want 401", code)
	}
}
