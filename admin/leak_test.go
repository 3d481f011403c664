package admin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

// TestServer_Close_leavesNoGoroutine serves a request with a kept-alive
// connection, closes the endpoint and finds no goroutine left once the
// client's idle connections are closed too.
func TestServer_Close_leavesNoGoroutine(t *testing.T) {
	baseline := goleak.IgnoreCurrent() // the tests run one at a time: none is parallel
	s, err := Listen("127.0.0.1:0", Node{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %s, want 200", resp.Status)
	}

	s.Close(context.Background())
	if err := <-served; err != nil {
		t.Errorf("Serve() = %v after Close, want nil", err)
	}
	client.CloseIdleConnections()
	goleak.VerifyNone(t, baseline)
}
