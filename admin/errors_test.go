package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lni/dragonboat/v4"

	"github.com/reeve-edge/reeve/raft"
)

// TestWriteError_statuses: each store error maps to the status the docs
// give it; a commit that timed out is a 503 (try again), not a 500.
func TestWriteError_statuses(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("create: %w", raft.ErrTopicExists), http.StatusConflict},
		{fmt.Errorf("remove node 1: %w", raft.ErrLastNode), http.StatusConflict},
		{fmt.Errorf("describe: %w", raft.ErrUnknownTopic), http.StatusNotFound},
		{fmt.Errorf("%w: body: EOF", errBadRequest), http.StatusBadRequest},
		{fmt.Errorf("delete topic: %w", dragonboat.ErrTimeout), http.StatusServiceUnavailable},
		{context.DeadlineExceeded, http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, tt.err)
		if rec.Code != tt.want {
			t.Errorf("writeError(%v) = %d, want %d", tt.err, rec.Code, tt.want)
		}
	}
}
