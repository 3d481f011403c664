package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeve-edge/reeve/config"
)

// peer is a connection to another reeve node's Kafka listener, for the
// node-to-node requests (replica fetches, leader-epoch lookups). Both ends
// are reeve, so the versions are fixed instead of negotiated. One request
// is in flight at a time.
type peer struct {
	addr     string
	clientID string
	// tls, when set, makes the connection TLS, checked to reach the node
	// the peer was made for (Server.peerTo).
	tls    *tls.Config
	source net.IP // nil: the kernel picks the source address
	conn   net.Conn
	br     *bufio.Reader
	corr   int32
}

// peerTo returns a peer, not yet dialled, for node's listener at addr,
// dialled from Config.SourceIP when set.
// With [tls] it dials TLS with this node's certificate and accepts only a
// listener whose certificate names node: an address now held by another
// machine, or another node, is not taken for it.
func (s *Server) peerTo(node int32, addr, clientID string) *peer {
	p := &peer{addr: addr, clientID: clientID, source: s.cfg.SourceIP}
	if n := s.nodeTLS; n != nil {
		p.tls = &tls.Config{
			Certificates: []tls.Certificate{n.cert.Cert},
			RootCAs:      n.cert.CAs,
			MinVersion:   tls.VersionTLS13,
			// A node's certificate names it by its URI SAN, not by the
			// host it is reached at, so the default check of the host
			// name is off and verifyNode checks the chain and the node.
			InsecureSkipVerify: true,
			VerifyConnection:   func(cs tls.ConnectionState) error { return n.verifyNode(cs, node) },
		}
	}
	return p
}

// verifyNode checks that the certificate a listener presented is signed
// by the cluster CA, valid now for server authentication, and names node.
func (n *nodeTLS) verifyNode(cs tls.ConnectionState, node int32) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("node %d presented no certificate", node)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: n.cert.CAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("node %d's certificate: %w", node, err)
	}
	if id, ok := config.NodeOf(leaf, n.cluster); !ok || id != uint64(node) {
		var uris []string
		for _, u := range leaf.URIs {
			uris = append(uris, u.String())
		}
		return fmt.Errorf("the certificate at node %d's address does not name it: want the URI SAN %s, have [%s]",
			node, config.NodeURI(n.cluster, uint64(node)), strings.Join(uris, " "))
	}
	return nil
}

func (c *peer) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// request sends req at version and decodes the answer into its response.
// Any error closes the connection; the next request redials.
func (c *peer) request(ctx context.Context, req kmsg.Request, version int16) (kmsg.Response, error) {
	if c.conn == nil {
		var d net.Dialer
		if c.source != nil {
			d.LocalAddr = &net.TCPAddr{IP: c.source}
		}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", c.addr, err)
		}
		if c.tls != nil {
			tc := tls.Client(conn, c.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				conn.Close()
				return nil, fmt.Errorf("tls handshake with %s: %w", c.addr, err)
			}
			conn = tc
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	} else {
		c.conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	// Cancelling ctx ends a request blocked in a read at once.
	conn := c.conn
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	c.corr++
	req.SetVersion(version)
	frame := make([]byte, 4, 256)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(c.clientID)))
	frame = append(frame, c.clientID...)
	if req.IsFlexible() {
		frame = append(frame, 0)
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := c.conn.Write(frame); err != nil {
		c.close()
		return nil, fmt.Errorf("send to %s: %w", c.addr, err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		c.close()
		return nil, fmt.Errorf("read from %s: %w", c.addr, err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<30 {
		c.close()
		return nil, fmt.Errorf("read from %s: answer of %d bytes", c.addr, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		c.close()
		return nil, fmt.Errorf("read from %s: %w", c.addr, err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != c.corr {
		c.close()
		return nil, fmt.Errorf("answer from %s: correlation id %d, want %d", c.addr, corr, c.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if resp.IsFlexible() && req.Key() != int16(kmsg.ApiVersions) {
		var err error
		if body, err = skipTags(body); err != nil {
			c.close()
			return nil, fmt.Errorf("answer from %s: %w", c.addr, err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		c.close()
		return nil, fmt.Errorf("decode answer from %s: %w", c.addr, err)
	}
	return resp, nil
}
