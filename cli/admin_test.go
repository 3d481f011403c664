package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/reeve-edge/reeve/api"
)

// tokenNode is an admin endpoint that wants token: it answers POST
// /v1/topics with 201 and anything without the token with the 401 a node
// gives. It records the headers of each request.
func tokenNode(t *testing.T, token string) (addr string, seen func() []http.Header) {
	t.Helper()
	var mu sync.Mutex
	var headers []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reeve admin"`)
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(api.Error{Error: "this node requires its admin token"})
			return
		}
		var req api.CreateTopicRequest
		json.NewDecoder(r.Body).Decode(&req)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(api.Topic{Name: req.Name, ID: "AAAAAAAAAAAAAAAAAAAAAQ", Partitions: req.Partitions,
			ReplicationFactor: req.ReplicationFactor})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), func() []http.Header {
		mu.Lock()
		defer mu.Unlock()
		return headers
	}
}

// writeToken writes a token file as an operator makes one (mode 0600).
func writeToken(t *testing.T, dir, name, token string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAdminFlags_client_sendsToken: the client commands send the token
// from --token-file, else from admin.token_file of -c FILE, as
// Authorization: Bearer, with Content-Type: application/json.
func TestAdminFlags_client_sendsToken(t *testing.T) {
	const token, other = "node-token-0123456789", "another-token-0123456789"
	addr, seen := tokenNode(t, token)
	dir := t.TempDir()
	tokenFile := writeToken(t, dir, "admin.token", token)
	otherFile := writeToken(t, dir, "other.token", other)
	cfgFile := filepath.Join(dir, "reeve.toml")
	cfg := fmt.Sprintf("[admin]\nlisten = %q\ntoken_file = %q\n", addr, tokenFile)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"--token-file", []string{"--admin", addr, "--token-file", tokenFile}},
		{"-c FILE", []string{"-c", cfgFile}},
		{"-c FILE and --admin", []string{"-c", cfgFile, "--admin", addr}},
		{"-c FILE and --token-file", []string{"-c", cfgFile, "--token-file", tokenFile}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := len(seen())
			var stdout, stderr bytes.Buffer
			args := append([]string{"create", "line1.temp", "-p", "3", "-r", "1"}, tt.args...)
			if code := cmdTopic(args, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "created topic line1.temp") {
				t.Fatalf("reeve topic %s = %d, stdout %q, stderr %q; want created", strings.Join(args, " "), code, stdout.String(), stderr.String())
			}
			got := seen()[n:]
			if len(got) != 1 {
				t.Fatalf("the node got %d requests, want 1", len(got))
			}
			if a, ct := got[0].Get("Authorization"), got[0].Get("Content-Type"); a != "Bearer "+token || ct != "application/json" {
				t.Errorf("Authorization %q, Content-Type %q; want %q, application/json", a, ct, "Bearer "+token)
			}
		})
	}
	t.Run("--token-file wins over -c FILE's", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		args := []string{"create", "t", "-r", "1", "-c", cfgFile, "--token-file", otherFile}
		code := cmdTopic(args, &stdout, &stderr)
		if a := seen()[len(seen())-1].Get("Authorization"); a != "Bearer "+other {
			t.Errorf("Authorization %q, want the --token-file's %q", a, "Bearer "+other)
		}
		if want := "refused the admin token from --token-file " + otherFile; code != exitFailure || !strings.Contains(stderr.String(), want) {
			t.Errorf("reeve topic %s = %d, stderr %q; want 1 saying %q", strings.Join(args, " "), code, stderr.String(), want)
		}
	})
}

// TestAdminClient_unauthorized: a 401 tells the user what to pass.
func TestAdminClient_unauthorized(t *testing.T) {
	addr, seen := tokenNode(t, "node-token-0123456789")
	var stdout, stderr bytes.Buffer
	code := cmdTopic([]string{"create", "t", "-r", "1", "--admin", addr}, &stdout, &stderr)
	msg := stderr.String()
	if code != exitFailure || !strings.Contains(msg, "wants its admin token") || !strings.Contains(msg, "--token-file FILE") ||
		!strings.Contains(msg, "-c FILE") {
		t.Errorf("reeve topic create without a token = %d, stderr %q; want 1 naming --token-file FILE and -c FILE", code, msg)
	}
	if a := seen()[0].Get("Authorization"); a != "" {
		t.Errorf("Authorization %q sent with no token given, want none", a)
	}
}

// TestAdminFlags_client_badTokenFile: a token file that cannot be read is
// a usage error that names it, and nothing is sent.
func TestAdminFlags_client_badTokenFile(t *testing.T) {
	addr, seen := tokenNode(t, "node-token-0123456789")
	dir := t.TempDir()
	empty := writeToken(t, dir, "empty.token", "")
	for _, file := range []string{filepath.Join(dir, "missing.token"), empty} {
		var stdout, stderr bytes.Buffer
		code := cmdTopic([]string{"list", "--admin", addr, "--token-file", file}, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), file) {
			t.Errorf("reeve topic list --token-file %s = %d, stderr %q; want 2 naming the file", file, code, stderr.String())
		}
	}
	if n := len(seen()); n != 0 {
		t.Errorf("the node got %d requests, want none", n)
	}
}
