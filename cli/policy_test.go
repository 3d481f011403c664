package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTest_expectedAnswers: a scenario's expect is checked, and
// `reeve policy test` exits 1 naming the partition whose answer differs.
func TestPolicyTest_expectedAnswers(t *testing.T) {
	const nodes = `
[[node]]
id = 1
alive = false
[[node]]
id = 2
[[node]]
id = 3
`
	for _, tt := range []struct {
		name, expect string
		code         int
	}{
		{"the answer", "leader 2", exitOK},
		{"another leader", "leader 3", exitFailure},
		{"keep", "keep", exitFailure},
		{"a typo", "leader two", exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.toml")
			scenario := nodes + `
[[partition]]
topic = "t"
partition = 0
leader = 1
replicas = [1, 2, 3]
isr = [1, 2, 3]
expect = "` + tt.expect + `"
`
			if err := os.WriteFile(path, []byte(scenario), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := cmdPolicy([]string{"test", "first-isr", "--scenario", path}, &out, &errOut)
			if code != tt.code {
				t.Fatalf("reeve policy test with expect %q = exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.expect, code, tt.code, &out, &errOut)
			}
			if tt.code == exitFailure && !strings.Contains(out.String(), "UNEXPECTED: the scenario expects "+tt.expect) {
				t.Errorf("stdout does not say the answer was unexpected:\n%s", &out)
			}
			if tt.code == exitUsage && !strings.Contains(errOut.String(), "expect") {
				t.Errorf("stderr does not name the bad expect:\n%s", &errOut)
			}
		})
	}
}
