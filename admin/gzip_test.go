package admin

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestGzipped: a client that accepts gzip gets the same body compressed
// (with no stale Content-Length); one that does not, a Range request and a
// 304 get the answer unchanged.
func TestGzipped(t *testing.T) {
	body := strings.Repeat(`{"topic":"plant-telemetry","partition":0,"leader":1},`, 2000)
	h := gzipped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/file" {
			http.ServeContent(w, r, "page.html", time.Time{}, strings.NewReader(body))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	for _, path := range []string{"/json", "/file"} {
		resp := get(path, "Accept-Encoding", "br;q=1.0, gzip;q=0.8")
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Content-Length") != "" {
			t.Fatalf("%s: headers %v, want gzip and no Content-Length", path, resp.Header)
		}
		raw, _ := io.ReadAll(resp.Body)
		z, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := io.ReadAll(z)
		if err != nil || string(got) != body {
			t.Fatalf("%s: decompressed %d bytes (%v), want the %d-byte body", path, len(got), err, len(body))
		}
		t.Logf("%s: %d bytes as %d", path, len(body), len(raw))
	}
	for _, c := range []struct {
		name   string
		header []string
		status int
	}{
		{"no Accept-Encoding", nil, http.StatusOK},
		{"gzip refused", []string{"Accept-Encoding", "gzip;q=0, identity"}, http.StatusOK},
		{"range", []string{"Accept-Encoding", "gzip", "Range", "bytes=0-9"}, http.StatusPartialContent},
		{"not modified", []string{"Accept-Encoding", "gzip", "If-None-Match", `"v1"`}, http.StatusNotModified},
	} {
		path := "/json"
		if c.status != http.StatusOK {
			path = "/file"
		}
		if c.status == http.StatusNotModified {
			h = gzipped(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("ETag", `"v1"`)
				http.ServeContent(w, r, "page.html", time.Time{}, strings.NewReader(body))
			}))
		}
		resp := get(path, c.header...)
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("%s: %d %v, want %d uncompressed", c.name, resp.StatusCode, resp.Header, c.status)
		}
		if c.status == http.StatusOK && string(raw) != body {
			t.Errorf("%s: body changed", c.name)
		}
	}
}
