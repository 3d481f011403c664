// Package testpki makes the certificates tests need for node-to-node TLS:
// a cluster CA, node certificates naming their node as [tls] requires, and
// a stranger's CA and certificates to be refused. Keys are ECDSA P-256,
// made fresh for each PKI; files are written under the test's temporary
// directory, keys with mode 0600.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reeve-edge/reeve/config"
)

// PKI is one cluster CA and the files it wrote.
type PKI struct {
	Cluster string
	// CAFile is the CA certificate's PEM file, for tls.ca_file.
	CAFile string
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// New makes a CA for cluster, writing its certificate under a new
// temporary directory of t.
func New(t testing.TB, cluster string) *PKI {
	t.Helper()
	p := &PKI{Cluster: cluster, dir: t.TempDir()}
	p.caKey = newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reeve test CA " + cluster},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.CAFile, "CERTIFICATE", der, 0o644)
	p.serial = 1
	return p
}

// Node writes a certificate for node id of the PKI's cluster, valid for
// server and client authentication on 127.0.0.1 and localhost, and
// returns [tls] for it.
func (p *PKI) Node(t testing.TB, id uint64) config.TLS {
	t.Helper()
	return p.Cert(t, "node"+strconv.FormatUint(id, 10), config.NodeURI(p.Cluster, id))
}

// Cert writes a certificate named name carrying the URI SANs uris (none,
// one, or several: the cases a peer's certificate may present) and returns
// [tls] with it.
func (p *PKI) Cert(t testing.TB, name string, uris ...string) config.TLS {
	t.Helper()
	key := newKey(t)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyFile := filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
	writePEM(t, cert, "CERTIFICATE", der, 0o644)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER, 0o600)
	return config.TLS{CAFile: p.CAFile, CertFile: cert, KeyFile: keyFile}
}

// NodeCert loads what Node wrote, as a node does at start.
func (p *PKI) NodeCert(t testing.TB, id uint64) *config.NodeCert {
	t.Helper()
	nc, err := config.LoadNodeCert(p.Node(t, id), p.Cluster, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
