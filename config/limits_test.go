package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParse_limitErrors: limits that contradict each other are refused
// with the key to change and why.
func TestParse_limitErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[kafka]\nmax_connections = 10\nmax_connections_per_ip = 20\n",
			"t.toml:3:1: kafka.max_connections_per_ip: 20 is more than kafka.max_connections (10); use at most that"},
		{"[kafka]\nqueued_max_request_bytes = 2097152\nmax_request_bytes = 4194304\n",
			"t.toml:2:1: kafka.queued_max_request_bytes: 2097152 is less than kafka.max_request_bytes (4194304): a request of the largest allowed size could never be read; raise it or lower max_request_bytes"},
		{"[kafka]\nmax_message_bytes = 4194304\nmax_request_bytes = 2097152\n",
			"t.toml:2:1: kafka.max_message_bytes: 4194304 is more than kafka.max_request_bytes (2097152): no produce request could carry such a batch; use at most that"},
		{"[kafka]\nmax_connections = 0\n", "t.toml:2:1: kafka.max_connections: 0 is out of range; use 1 to 1000000"},
		{"[kafka]\nmax_partitions = -1\n", "t.toml:2:1: kafka.max_partitions: -1 is out of range; use 0 to 1000000"},
		{"[admin]\nallowed_hosts = [\"http://reeve1\"]\n",
			`t.toml:2:1: admin.allowed_hosts: "http://reeve1" is not a host name; give names such as "reeve1.plant.local" or addresses such as "10.0.0.5", without scheme or path`},
	} {
		_, err := Parse("t.toml", []byte(tt.src))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Parse(%q) error = %v\nwant %s", tt.src, err, tt.want)
		}
	}
}

// TestParse_tokenFile: the admin token file must exist, be private to its
// owner and hold a long enough token; the error says how to make one.
func TestParse_tokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  0123456789abcdef0123  \nignored second line\n", 0o600)
	for _, tt := range []struct {
		path string
		want string // "" for valid
	}{
		{good, ""},
		{write("open", "0123456789abcdef0123\n", 0o644), "is readable by group or others (mode 0644); chmod 600"},
		{write("short", "secret\n", 0o600), "holds a 6-character token; use at least 16"},
		{write("big", strings.Repeat("x", 5000), 0o600), "is larger than 4 KiB"},
		{filepath.Join(dir, "missing"), "no such file or directory; create it with a random token"},
	} {
		src := fmt.Sprintf("[admin]\ntoken_file = %q\n", tt.path)
		c, err := Parse("t.toml", []byte(src))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.path, err)
		case tt.want == "" && c.Admin.TokenFile != tt.path:
			t.Errorf("%s: token_file = %q", tt.path, c.Admin.TokenFile)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "t.toml:2:1: admin.token_file: ")):
			t.Errorf("%s: error = %v, want admin.token_file ... %q", tt.path, err, tt.want)
		}
	}
	if tok, err := ReadToken(good); err != nil || tok != "0123456789abcdef0123" {
		t.Errorf("ReadToken = %q, %v; want the first line trimmed", tok, err)
	}
}
