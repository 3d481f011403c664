package cli

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/reeve-edge/reeve/config"
)

type codedError struct{ code int }

func (e codedError) Error() string { return "coded" }
func (e codedError) ExitCode() int { return e.code }

// TestServe_exitStatus: reeve serve exits 0 when the node stopped cleanly,
// with the status an error names when it has an ExitCode (2 for a
// configuration the cluster refused), even wrapped, and 1 otherwise.
func TestServe_exitStatus(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"clean stop", nil, exitOK},
		{"failure", errors.New("listener died"), exitFailure},
		{"configuration refused by the cluster", codedError{2}, exitUsage},
		{"wrapped", errors.Join(errors.New("stopping"), codedError{2}), exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got := Main([]string{"serve"}, io.Discard, &stderr, "test", func(*config.Config, io.Writer) error { return tt.err })
			if got != tt.want {
				t.Errorf("exit status %d, want %d (stderr %q)", got, tt.want, stderr.String())
			}
		})
	}
}
