package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/internal/testpki"
)

// TestParse_tls: [tls] is all three files or none, and the certificate
// must be the CA's, match its key and name this node of this cluster; each
// refusal says what to fix.
func TestParse_tls(t *testing.T) {
	pki := testpki.New(t, "site1")
	other := testpki.New(t, "site1") // another CA, same cluster name
	node2 := pki.Node(t, 2)
	src := func(tls config.TLS, extra string) string {
		return fmt.Sprintf("[node]\nid = 2\n[cluster]\nname = \"site1\"\n[tls]\nca_file = %q\ncert_file = %q\nkey_file = %q\n%s",
			tls.CAFile, tls.CertFile, tls.KeyFile, extra)
	}
	c, err := config.Parse("t.toml", []byte(src(node2, "")))
	if err != nil || !c.TLS.Enabled() || c.TLS.CertFile != node2.CertFile {
		t.Fatalf("valid [tls]: %v, %+v", err, c.TLS)
	}
	foreign := other.Node(t, 2)
	foreign.CAFile = pki.CAFile
	noURI := pki.Cert(t, "plain")
	twoURIs := pki.Cert(t, "twice", config.NodeURI("site1", 2), config.NodeURI("site1", 3))
	openKey := pki.Cert(t, "node2-open", config.NodeURI("site1", 2))
	if err := os.Chmod(openKey.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		src  string
		want string
	}{
		{"node 3's certificate", src(pki.Node(t, 3), ""), "does not name this node: it needs the URI SAN reeve://site1/node/2 (it has reeve://site1/node/3)"},
		{"another cluster's name", strings.Replace(src(node2, ""), `name = "site1"`, `name = "site2"`, 1), "needs the URI SAN reeve://site2/node/2"},
		{"signed by another CA", src(foreign, ""), "is not usable with the CA in"},
		{"no URI SAN", src(noURI, ""), "(it has no URI SAN)"},
		{"two node URIs", src(twoURIs, ""), "does not name this node"},
		{"key readable by others", src(openKey, ""), "tls.key_file: " + openKey.KeyFile + " is readable by group or others (mode 0644)"},
		{"huge requests", src(node2, "[kafka]\nmax_request_bytes = 536870912\n"), "kafka.max_request_bytes: 536870912 is too large with [tls] set: use less than 369098752"},
		{"a device as the CA", src(config.TLS{CAFile: "/dev/zero", CertFile: node2.CertFile, KeyFile: node2.KeyFile}, ""), "/dev/zero is larger than 1 MiB"},
		{"cert only", fmt.Sprintf("[tls]\ncert_file = %q\n", node2.CertFile), "tls.ca_file: set tls.ca_file, tls.cert_file and tls.key_file together"},
		{"key of another certificate", src(config.TLS{CAFile: pki.CAFile, CertFile: node2.CertFile, KeyFile: noURI.KeyFile}, ""), "must be PEM and belong together"},
	} {
		_, err := config.Parse("t.toml", []byte(tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v\nwant it to contain %q", tt.name, err, tt.want)
		}
	}
	// Valid now, not after the certificate expired.
	if _, err := config.LoadNodeCert(node2, "site1", 2, time.Now().Add(48*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("LoadNodeCert two days on = %v, want an expired certificate", err)
	}
}
