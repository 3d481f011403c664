package admin

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/api"
)

const testToken = "s3cret-token-0123456789"

// guardedServer is a Server with no node behind it (no store: a handler
// that touches it panics) and the guard newGuard builds for listen and n.
func guardedServer(listen string, n Node) *Server {
	n.Log = slog.New(slog.DiscardHandler)
	return &Server{n: n, guard: newGuard(listen, n)}
}

// recorded is the server's routes behind its guard, each route's handler
// wrapped to count the requests that reach it. With delegate, the wrapper
// then calls the real handler; without, it answers 204 itself.
func recorded(s *Server, delegate bool) (http.Handler, map[string]int) {
	reached := map[string]int{}
	mux := http.NewServeMux()
	for _, rt := range s.routeList() {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			reached[r.Pattern]++
			if delegate {
				rt.h(w, r)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
	return s.guard.wrap(gzipped(mux)), reached
}

// concrete turns a route pattern into a method and a path it matches.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{$}", "")
	path = regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "1")
	if strings.HasSuffix(path, "/ui/") {
		path += "app.js"
	}
	return method, path
}

// request is a request as a client on this machine sends it: Host is the
// listen address.
func request(method, path, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, "http://127.0.0.1:9644"+path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errorText is an answer's api.Error text; "" when the body is not one.
func errorText(w *httptest.ResponseRecorder) string {
	var e api.Error
	json.Unmarshal(w.Body.Bytes(), &e)
	return e.Error
}

// TestGuard_browserWritesChangeNothing: what a web page can send to the
// API without a CORS preflight (a text/plain or form-encoded POST, from a
// foreign Origin or not) and a JSON write from another site are refused
// before any handler runs, with or without a token configured.
func TestGuard_browserWritesChangeNothing(t *testing.T) {
	nodeBody := `{"id": 9, "raft_address": "10.9.9.9:7100"}`
	topicBody := `{"name": "pwned", "partitions": 1, "replication_factor": 1}`
	for _, tt := range []struct {
		name        string
		path, body  string
		contentType string
		headers     map[string]string
		status      int
		says        string
	}{
		{"text/plain node add", "/v1/nodes", nodeBody, "text/plain", nil, http.StatusUnsupportedMediaType, "application/json"},
		{"text/plain node add from a foreign page", "/v1/nodes", nodeBody, "text/plain;charset=UTF-8",
			map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden, "evil.example"},
		{"form topic create from a foreign page", "/v1/topics", "name=pwned&partitions=1", "application/x-www-form-urlencoded",
			map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden, "evil.example"},
		{"text/plain topic create", "/v1/topics", topicBody, "text/plain", nil, http.StatusUnsupportedMediaType, "Content-Type"},
		{"multipart topic create", "/v1/topics", "--x--", "multipart/form-data; boundary=x", nil, http.StatusUnsupportedMediaType, "Content-Type"},
		{"no content type", "/v1/topics", topicBody, "", nil, http.StatusUnsupportedMediaType, "Content-Type"},
		{"JSON from a foreign page", "/v1/topics", topicBody, "application/json",
			map[string]string{"Origin": "https://evil.example:9644"}, http.StatusForbidden, "admin.allowed_hosts"},
		{"JSON from an opaque origin", "/v1/nodes", nodeBody, "application/json",
			map[string]string{"Origin": "null"}, http.StatusForbidden, "null"},
		{"JSON from another site", "/v1/nodes", nodeBody, "application/json",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "cross-site"},
		{"JSON from a sibling site", "/v1/topics", topicBody, "application/json",
			map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden, "same-site"},
	} {
		for _, token := range []string{"", testToken} {
			name := tt.name
			if token != "" {
				name += " with a token"
			}
			t.Run(name, func(t *testing.T) {
				h, reached := recorded(guardedServer("127.0.0.1:9644", Node{Token: token}), true)
				r := request("POST", tt.path, tt.contentType, tt.body)
				for k, v := range tt.headers {
					r.Header.Set(k, v)
				}
				if token != "" {
					r.Header.Set("Authorization", "Bearer "+token)
				}
				w := serve(h, r)
				if w.Code != tt.status || !strings.Contains(errorText(w), tt.says) {
					t.Errorf("POST %s = %d %q, want %d saying %q", tt.path, w.Code, w.Body, tt.status, tt.says)
				}
				if len(reached) != 0 {
					t.Errorf("handlers reached: %v, want none", reached)
				}
			})
		}
	}
}

// TestServer_Handler_isGuarded: the handler Listen serves has the guard in
// front (the server has no store: a request that got through would panic).
func TestServer_Handler_isGuarded(t *testing.T) {
	s := guardedServer("127.0.0.1:9644", Node{Token: testToken})
	h := s.Handler()
	r := request("POST", "/v1/topics", "text/plain", `{"name": "pwned", "partitions": 1, "replication_factor": 1}`)
	if w := serve(h, r); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST /v1/topics = %d %q, want 415", w.Code, w.Body)
	}
	r = request("DELETE", "/v1/nodes/1", "application/json", "")
	if w := serve(h, r); w.Code != http.StatusUnauthorized {
		t.Errorf("DELETE /v1/nodes/1 without the token = %d %q, want 401", w.Code, w.Body)
	}
	r = request("GET", "/v1/topics", "", "")
	r.Host = "evil.example"
	if w := serve(h, r); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("GET /v1/topics with Host: evil.example = %d %q, want 421", w.Code, w.Body)
	}
	r = request("GET", "/healthz", "", "")
	r.Host = "evil.example"
	if w := serve(h, r); w.Code != http.StatusOK {
		t.Errorf("GET /healthz with Host: evil.example = %d %q, want 200", w.Code, w.Body)
	}
}

// TestGuard_tokenOnEveryStateChangingRoute walks routeList, so a route
// added later is covered: with a token configured, each state-changing
// route answers 401 (with WWW-Authenticate: Bearer) without the token or
// with another one, and reaches its handler with it.
func TestGuard_tokenOnEveryStateChangingRoute(t *testing.T) {
	s := guardedServer("127.0.0.1:9644", Node{Token: testToken})
	h, reached := recorded(s, false)
	writes := 0
	for _, rt := range s.routeList() {
		method, path := concrete(rt.pattern)
		if safeMethod(method) {
			continue
		}
		writes++
		t.Run(rt.pattern, func(t *testing.T) {
			for _, auth := range []string{"", "Bearer not-the-token-at-all", "Basic " + testToken, testToken} {
				r := request(method, path, "application/json", "{}")
				if auth != "" {
					r.Header.Set("Authorization", auth)
				}
				w := serve(h, r)
				if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") ||
					!strings.Contains(errorText(w), "--token-file") {
					t.Errorf("%s %s with Authorization %q = %d %q (WWW-Authenticate %q), want 401 saying --token-file",
						method, path, auth, w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
				}
			}
			if reached[rt.pattern] != 0 {
				t.Fatalf("%s reached without the token", rt.pattern)
			}
			for _, auth := range []string{"Bearer " + testToken, "bearer " + testToken} {
				r := request(method, path, "application/json; charset=utf-8", "{}")
				r.Header.Set("Authorization", auth)
				r.Header.Set("Origin", "http://localhost:9644")
				r.Header.Set("Sec-Fetch-Site", "same-origin")
				if w := serve(h, r); w.Code != http.StatusNoContent {
					t.Errorf("%s %s with the token = %d %q, want the handler's 204", method, path, w.Code, w.Body)
				}
			}
			if reached[rt.pattern] != 2 {
				t.Errorf("%s reached %d times with the token, want 2", rt.pattern, reached[rt.pattern])
			}
		})
	}
	if writes < 5 {
		t.Errorf("routeList has %d state-changing routes, want at least the 5 documented", writes)
	}
}

// TestGuard_reads: GET routes need the token unless public_reads; the
// probes and the status page's files never do.
func TestGuard_reads(t *testing.T) {
	for _, tt := range []struct {
		name        string
		token       string
		publicReads bool
		auth        string
		open        bool // every GET route reaches its handler
	}{
		{name: "no token configured", open: true},
		{name: "token, no public reads, none sent", token: testToken},
		{name: "token, no public reads, wrong one sent", token: testToken, auth: "Bearer 0123456789abcdefgh"},
		{name: "token, no public reads, sent", token: testToken, auth: "Bearer " + testToken, open: true},
		{name: "token and public reads, none sent", token: testToken, publicReads: true, open: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := guardedServer("127.0.0.1:9644", Node{Token: tt.token, PublicReads: tt.publicReads})
			h, reached := recorded(s, false)
			for _, rt := range s.routeList() {
				method, path := concrete(rt.pattern)
				if method != "GET" {
					continue
				}
				for _, m := range []string{"GET", "HEAD"} {
					r := request(m, path, "", "")
					if tt.auth != "" {
						r.Header.Set("Authorization", tt.auth)
					}
					w := serve(h, r)
					always := isProbe(path) || isStatusPageFile(path)
					if tt.open || always {
						if w.Code != http.StatusNoContent {
							t.Errorf("%s %s = %d %q, want the handler's 204", m, path, w.Code, w.Body)
						}
						continue
					}
					if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s = %d %q, want 401 with WWW-Authenticate", m, path, w.Code, w.Body)
					}
					if reached[rt.pattern] != 0 {
						t.Errorf("%s reached without the token", rt.pattern)
					}
				}
			}
		})
	}
}

// TestGuard_host: the Host header must name this node, which stops DNS
// rebinding; probes answer whatever the Host.
func TestGuard_host(t *testing.T) {
	for _, tt := range []struct {
		listen, host string
		allowed      []string
		ok           bool
	}{
		{"127.0.0.1:9644", "127.0.0.1:9644", nil, true},
		{"127.0.0.1:9644", "127.0.0.1", nil, true},
		{"127.0.0.1:9644", "localhost:9644", nil, true},
		{"127.0.0.1:9644", "LOCALHOST.", nil, true},
		{"127.0.0.1:9644", "127.0.0.2:9644", nil, true},
		{"127.0.0.1:9644", "[::1]:9644", nil, true},
		{"127.0.0.1:9644", "evil.example", nil, false},
		{"127.0.0.1:9644", "evil.example:9644", nil, false},
		{"127.0.0.1:9644", "localhost.evil.example:9644", nil, false},
		{"127.0.0.1:9644", "10.0.0.5:9644", nil, false},
		{"127.0.0.1:9644", "", nil, false},
		{"10.0.0.5:9644", "10.0.0.5:9644", nil, true},
		{"10.0.0.5:9644", "10.0.0.6:9644", nil, false},
		{"10.0.0.5:9644", "reeve1.plant.local:9644", []string{"reeve1.plant.local"}, true},
		{"10.0.0.5:9644", "Reeve1.Plant.Local", []string{"reeve1.plant.local:9644"}, true},
		{"10.0.0.5:9644", "reeve2.plant.local", []string{"reeve1.plant.local"}, false},
		{"reeve1.plant.local:9644", "reeve1.plant.local:9644", nil, true},
		{"[fd00::5]:9644", "[fd00::5]:9644", nil, true},
		{"0.0.0.0:9644", "192.168.1.9:9644", nil, true},
		{":9644", "[fd00::9]:9644", nil, true},
		{"[::]:9644", "evil.example:9644", nil, false},
		{"0.0.0.0:9644", "reeve1.plant.local", []string{"reeve1.plant.local"}, true},
	} {
		s := guardedServer(tt.listen, Node{AllowedHosts: tt.allowed})
		h, _ := recorded(s, false)
		for _, path := range []string{"/v1/topics", "/"} {
			r := request("GET", path, "", "")
			r.Host = tt.host
			w := serve(h, r)
			if tt.ok && w.Code != http.StatusNoContent {
				t.Errorf("listen %s, allowed %q: GET %s with Host %q = %d %q, want 204", tt.listen, tt.allowed, path, tt.host, w.Code, w.Body)
			}
			if !tt.ok && (w.Code != http.StatusMisdirectedRequest || !strings.Contains(errorText(w), "admin.allowed_hosts")) {
				t.Errorf("listen %s, allowed %q: GET %s with Host %q = %d %q, want 421 naming admin.allowed_hosts",
					tt.listen, tt.allowed, path, tt.host, w.Code, w.Body)
			}
		}
		for _, path := range []string{"/healthz", "/readyz", "/livez"} {
			r := request("GET", path, "", "")
			r.Host = tt.host
			if w := serve(h, r); w.Code != http.StatusNoContent {
				t.Errorf("listen %s: GET %s with Host %q = %d %q, want 204: probes are open", tt.listen, path, tt.host, w.Code, w.Body)
			}
		}
	}
}

// TestGuard_allowedOrigin: a write whose Origin names this node passes, so
// a tool served from an allowed name can use the API with the token.
func TestGuard_allowedOrigin(t *testing.T) {
	s := guardedServer("0.0.0.0:9644", Node{AllowedHosts: []string{"reeve1.plant.local"}})
	h, reached := recorded(s, false)
	for _, origin := range []string{"http://reeve1.plant.local:9644", "https://reeve1.plant.local", "http://127.0.0.1:9644", "http://10.1.2.3"} {
		r := request("POST", "/v1/topics", "application/json", "{}")
		r.Header.Set("Origin", origin)
		if w := serve(h, r); w.Code != http.StatusNoContent {
			t.Errorf("POST /v1/topics from Origin %q = %d %q, want 204", origin, w.Code, w.Body)
		}
	}
	if reached["POST /v1/topics"] != 4 {
		t.Errorf("POST /v1/topics reached %d times, want 4", reached["POST /v1/topics"])
	}
}

// TestListen_timeouts: the server bounds slow clients, and its write
// timeout leaves room for the longest request (a node add, 60 s).
func TestListen_timeouts(t *testing.T) {
	s, err := Listen("127.0.0.1:0", Node{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	h := s.http
	if h.ReadHeaderTimeout <= 0 || h.ReadTimeout <= 0 || h.IdleTimeout <= 0 || h.MaxHeaderBytes <= 0 {
		t.Errorf("ReadHeaderTimeout %v, ReadTimeout %v, IdleTimeout %v, MaxHeaderBytes %d: want all set",
			h.ReadHeaderTimeout, h.ReadTimeout, h.IdleTimeout, h.MaxHeaderBytes)
	}
	if h.WriteTimeout < 60*time.Second+10*time.Second {
		t.Errorf("WriteTimeout = %v, want at least 70s: a node add waits up to 60 s before it answers", h.WriteTimeout)
	}
}
