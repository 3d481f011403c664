package appliance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck_reportsEveryErrorWithPositionAndExits2 runs the real binary
// on broken files: `reeve config check` and `reeve serve` both print each
// problem as file:line:col: key: reason and exit with status 2.
func TestConfigCheck_reportsEveryErrorWithPositionAndExits2(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of stderr
	}{
		{
			name: "unknown key",
			src:  "[raft]\naddress = \"127.0.0.1:9093\"\nrt = \"50ms\"\n",
			want: []string{`reeve.toml:3:1: raft.rt: unknown key; did you mean "rtt"?`},
		},
		{
			name: "wrong type",
			src:  "[raft]\nelection_rtt = \"20\"\n",
			want: []string{`reeve.toml:2:1: raft.election_rtt:`, `integer`},
		},
		{
			name: "bad duration",
			src:  "[raft]\nrtt = \"10x\"\n",
			want: []string{`reeve.toml:2:1: raft.rtt: bad duration "10x"`},
		},
		{
			name: "bad address",
			src:  "[admin]\nlisten = \"127.0.0.1:99999\"\n",
			want: []string{`reeve.toml:2:1: admin.listen:`, `99999`},
		},
		{
			name: "missing node id in cluster mode",
			src:  "[cluster]\ninitial_members = [\"1@10.0.0.1:9093\", \"2@10.0.0.2:9093\", \"3@10.0.0.3:9093\"]\n[raft]\naddress = \"10.0.0.1:9093\"\n",
			want: []string{`reeve.toml: node.id: required in cluster mode`},
		},
		{
			name: "several errors at once",
			src:  "[node]\nid = 0\n[log]\nlevel = \"loud\"\n[raft]\nrtt = \"-5s\"\n",
			want: []string{`reeve.toml:2:1: node.id:`, `reeve.toml:4:1: log.level:`, `reeve.toml:6:1: raft.rtt:`, `3 error(s)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "reeve.toml")
			if err := os.WriteFile(path, []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "check", "-c", path}, {"serve", "-c", path}} {
				stdout, stderr, status := run(t, args...)
				if status != 2 {
					t.Errorf("reeve %v = status %d, want 2 (stdout %q, stderr %q)", args[:2], status, stdout, stderr)
				}
				for _, w := range tt.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("reeve %v stderr = %q, want it to contain %q", args[:2], stderr, w)
					}
				}
			}
		})
	}
}

func TestConfigCheck_validFilePrintsOK(t *testing.T) {
	stdout, stderr, status := run(t, "config", "check", "-c", "../systemd/reeve.toml")
	if status != 0 || !strings.HasSuffix(strings.TrimSpace(stdout), ": OK") {
		t.Errorf("config check of the sample = status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
}

func TestCLI_usageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"config"}, {"config", "check"}, {"topic", "create", "--admin", "127.0.0.1:1"}} {
		if _, stderr, status := run(t, args...); status != 2 {
			t.Errorf("reeve %v = status %d (stderr %q), want 2", args, status, stderr)
		}
	}
	_, stderr, status := run(t, "topic", "list", "--admin", "127.0.0.1:1")
	if status != 1 || !strings.Contains(stderr, "is reeve running?") {
		t.Errorf("reeve topic list with nothing listening = status %d, stderr %q; want 1 and a hint", status, stderr)
	}
}

func TestVersion_printsBuildVersion(t *testing.T) {
	stdout, _, status := run(t, "version")
	if status != 0 || !strings.HasPrefix(stdout, "reeve ") {
		t.Errorf("reeve version = status %d, %q", status, stdout)
	}
}
