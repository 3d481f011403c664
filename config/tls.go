package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NodeCert is a node's TLS identity, loaded and checked from [tls].
type NodeCert struct {
	// Cert is the node's certificate and key, for tls.Config.Certificates.
	Cert tls.Certificate
	// CAs holds the cluster CA, for tls.Config.RootCAs and ClientCAs.
	CAs *x509.CertPool
}

// LoadNodeCert reads [tls]'s files and checks that the certificate is
// signed by the CA, matches its key, is valid at now, and names node id of
// cluster (NodeURI). The error says which of these failed and how to fix
// it.
func LoadNodeCert(t TLS, cluster string, id uint64, now time.Time) (*NodeCert, error) {
	caPEM, err := readPEM(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("tls.ca_file: %w", err)
	}
	cas := x509.NewCertPool()
	if !cas.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("tls.ca_file %s holds no PEM certificate", t.CAFile)
	}
	certPEM, err := readPEM(t.CertFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	keyPEM, err := readPEM(t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.key_file: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s and %s: %w (the certificate and its key must be PEM and belong together)", t.CertFile, t.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.CertFile, err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cas, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%s is not usable with the CA in %s: %w (a node's certificate must be signed by the cluster CA, "+
			"be valid now and allow both server and client authentication)", t.CertFile, t.CAFile, err)
	}
	if got, ok := NodeOf(leaf, cluster); !ok || got != id {
		return nil, fmt.Errorf("%s does not name this node: it needs the URI SAN %s (it has %s)",
			t.CertFile, NodeURI(cluster, id), uriList(leaf))
	}
	pair.Leaf = leaf
	return &NodeCert{Cert: pair, CAs: cas}, nil
}

// maxPEMBytes bounds a certificate or key file: a chain of a few
// certificates is a few KiB, and a path to a device or a log file must not
// be read for ever.
const maxPEMBytes = 1 << 20

// readPEM reads a PEM file of at most maxPEMBytes.
func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("%s is larger than 1 MiB; it should hold PEM certificates or a key", path)
	}
	return b, nil
}

// NodeOf returns the node id a verified certificate names in cluster, from
// its URI SAN reeve://<cluster>/node/<id>; ok is false when it names none,
// or more than one.
func NodeOf(cert *x509.Certificate, cluster string) (id uint64, ok bool) {
	prefix := "reeve://" + cluster + "/node/"
	found := 0
	for _, u := range cert.URIs {
		s := u.String()
		if rest, cut := strings.CutPrefix(s, prefix); cut {
			n, err := strconv.ParseUint(rest, 10, 64)
			if err != nil || n == 0 {
				return 0, false
			}
			id, found = n, found+1
		}
	}
	return id, found == 1
}

func uriList(c *x509.Certificate) string {
	if len(c.URIs) == 0 {
		return "no URI SAN"
	}
	var us []string
	for _, u := range c.URIs {
		us = append(us, u.String())
	}
	slices.Sort(us)
	return strings.Join(us, ", ")
}
