package appliance

import "net"

// sourceIP returns the address this node's connections to other nodes
// should come from, so that nodes sharing a host are still distinct
// endpoints (per-address firewall rules, fault tests): the host of the
// first of addrs (host:port) that is an IP address, not 0.0.0.0 or ::, and
// held by this host. Nil, for the kernel to choose, when none is: a name,
// or an advertised address NAT puts in front of the node.
func sourceIP(addrs ...string) net.IP {
	held, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.IsUnspecified() {
			continue
		}
		for _, h := range held {
			n, ok := h.(*net.IPNet)
			if !ok {
				continue
			}
			// The whole loopback network is this host's (Linux answers
			// 127.0.0.2 on lo as 127.0.0.1); other addresses must match.
			if n.IP.Equal(ip) || ip.IsLoopback() && n.IP.IsLoopback() && n.Contains(ip) {
				return ip
			}
		}
	}
	return nil
}
