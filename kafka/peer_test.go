package kafka

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestPeer_dialsFromTheNodesAddress: with Config.SourceIP, this node's
// connections to other nodes come from that address, so nodes sharing a
// host are told apart by address.
func TestPeer_dialsFromTheNodesAddress(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.SourceIP = net.ParseIP("127.0.0.3") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	from := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		from <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	p := s.peerTo(2, ln.Addr().String(), "test")
	defer p.close()
	p.request(ctxT(t), kmsg.NewPtrApiVersionsRequest(), 0) // answered by a close
	if got := <-from; got != "127.0.0.3" {
		t.Errorf("peer connection from %s, want 127.0.0.3", got)
	}
}
