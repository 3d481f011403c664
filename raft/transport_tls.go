package raft

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/reeve-edge/reeve/config"
)

// Mutual TLS between nodes ([tls], Config.NodeCert).
//
// With a node certificate, every transport connection, for messages or a
// snapshot's chunks, opens with a TLS 1.3 handshake in which both sides
// present a certificate signed by the cluster CA that names a node of this
// cluster (config.NodeOf: the URI SAN reeve://<cluster>/node/<id>); the
// hello and every frame travel inside it. So each side knows which node
// it talks to:
//
//   - the listener believes only messages and chunks sent as the node the
//     dialer's certificate names (From), so a node cannot speak for
//     another, and a stranger without a certificate cannot speak at all;
//   - the dialer sends only to the node it meant: the listener's
//     certificate must name a node its member table knows at the raft
//     address it dialed, so whoever takes over an address gets nothing.
//
// Host names and IP addresses in the certificates are not checked: a node
// is its URI, and a raft address may be an IP its certificate does not
// list. Dragonboat's own TLS (NodeHostConfig.MutualTLS) stays off; this
// transport wraps its connections itself.

// errWrongNode is a dial whose listener's certificate names a node other
// than the one the member table knows at the address dialed.
var errWrongNode = errors.New("raft address answered by another node")

// tlsHandshakeTimeout bounds a connection's TLS handshake on either side,
// so a dialer that connects and sends nothing, or half a handshake, holds a
// connection no longer; a test may shorten it.
var tlsHandshakeTimeout = 10 * time.Second

// peerTLS is a transport's TLS setup: the node's certificate, the cluster
// CA, and the cluster whose node URIs identify peers.
type peerTLS struct {
	cluster string
	cas     *x509.CertPool
	server  *tls.Config
	client  *tls.Config
}

func newPeerTLS(nc *config.NodeCert, cluster string) *peerTLS {
	p := &peerTLS{cluster: cluster, cas: nc.CAs}
	p.server = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{nc.Cert},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              nc.CAs,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := p.nodeOf(cs)
			return err
		},
	}
	p.client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{nc.Cert},
		// verifyServer checks the chain against the CA itself, without a
		// host name (see above), so the standard check is skipped.
		InsecureSkipVerify: true,
		VerifyConnection:   p.verifyServer,
	}
	return p
}

// nodeOf returns the node the peer's (verified) certificate names.
func (p *peerTLS) nodeOf(cs tls.ConnectionState) (uint64, error) {
	if len(cs.PeerCertificates) == 0 {
		return 0, errors.New("the peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	id, ok := config.NodeOf(leaf, p.cluster)
	if !ok {
		return 0, fmt.Errorf("the peer's certificate (subject %q) names no node of cluster %q; it needs one URI SAN reeve://%s/node/<id>",
			leaf.Subject.CommonName, p.cluster, p.cluster)
	}
	return id, nil
}

// verifyServer checks a listener's certificate: signed by the cluster CA,
// valid now, for server authentication, naming a node of the cluster.
func (p *peerTLS) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: p.cas, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("the peer's certificate is not the cluster CA's: %w", err)
	}
	_, err := p.nodeOf(cs)
	return err
}

// handshakeIn runs the TLS handshake of an accepted connection and returns
// the connection to read the hello from and the node the dialer's
// certificate names; without TLS, nc itself and 0.
func (t *Transport) handshakeIn(nc net.Conn) (net.Conn, uint64, error) {
	if t.tls == nil {
		return nc, 0, nil
	}
	tc := tls.Server(nc, t.tls.server)
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, 0, err
	}
	id, err := t.tls.nodeOf(tc.ConnectionState())
	if err != nil { // VerifyConnection refused it already
		return nil, 0, err
	}
	return tc, id, nil
}

// handshakeOut runs the TLS handshake of a dialed connection, checks that
// the listener is the node the member table knows at target, and returns
// the node its certificate names; without TLS, nc itself and 0.
func (t *Transport) handshakeOut(ctx context.Context, nc net.Conn, target string) (net.Conn, uint64, error) {
	if t.tls == nil {
		return nc, 0, nil
	}
	tc := tls.Client(nc, t.tls.client)
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, 0, fmt.Errorf("TLS handshake: %w; check that both nodes' [tls] certificates are the same cluster CA's", err)
	}
	id, err := t.tls.nodeOf(tc.ConnectionState())
	if err != nil {
		return nil, 0, err
	}
	if t.members == nil {
		return tc, id, nil
	}
	if at, anyKnown := t.members.nodeAt(id, target); anyKnown && !at {
		return nil, 0, fmt.Errorf("%w: %s presented node %d's certificate, but this node knows no node %d at that address; "+
			"check that the raft address in the node registry belongs to the node whose certificate is installed there",
			errWrongNode, target, id, id)
	}
	return tc, id, nil
}

// tlsRefusal names, for the log, why a dialer's TLS handshake failed and
// whether an operator can act on it (a port probe or a dialer that gave up
// cannot be helped).
func tlsRefusal(err error) (why string, actionable bool) {
	var rh tls.RecordHeaderError
	var cv *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &rh):
		return "the dialer does not speak TLS; set [tls] on every node of the cluster", true
	case errors.As(err, &cv):
		return "the dialer's certificate is not the cluster CA's, has expired or does not allow client authentication", true
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "", false
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "", false
	default:
		return "the dialer's certificate does not name a node of this cluster, or its TLS setup does not match (TLS 1.3 and a client certificate are required)", true
	}
}
