package appliance

import (
	"net"
	"testing"
)

func TestSourceIP(t *testing.T) {
	for _, tt := range []struct {
		name  string
		addrs []string
		want  net.IP
	}{
		{"a loopback address of its own", []string{"127.0.0.2:9093"}, net.ParseIP("127.0.0.2")},
		{"the first usable one", []string{"0.0.0.0:9092", "127.0.0.3:9092"}, net.ParseIP("127.0.0.3")},
		{"unspecified", []string{"0.0.0.0:9093", "[::]:9093"}, nil},
		{"a name", []string{"localhost:9093"}, nil},
		{"an address this host does not hold", []string{"192.0.2.7:9093"}, nil},
		{"no port", []string{"127.0.0.2"}, nil},
	} {
		if got := sourceIP(tt.addrs...); !got.Equal(tt.want) {
			t.Errorf("%s: sourceIP(%v) = %v, want %v", tt.name, tt.addrs, got, tt.want)
		}
	}
}
