package appliance_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netLab puts each node of a test cluster in its own network namespace,
// joined to the test process by veth pairs on one bridge, so a test can
// cut a node off the network (its link down) as a failing switch port or
// cable would, without touching any other traffic of the host: every
// address is in a /24 the lab made and checked unused, and Cleanup removes
// the namespaces, links and bridge even when the test fails. It needs
// root and iproute2 (ip); newNetLab reports whether it could be built.
type netLab struct {
	t      testing.TB
	tag    string // 4 hex digits in every name the lab makes
	subnet string // "10.201.K"
	nodes  int
}

// newNetLab builds a lab for n nodes, or returns nil, with the reason,
// when this host cannot.
func newNetLab(t testing.TB, n int) (*netLab, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, "not root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, "no ip (iproute2)"
	}
	var b [2]byte
	rand.Read(b[:])
	l := &netLab{t: t, tag: hex.EncodeToString(b[:]), nodes: n}
	used, err := exec.Command("ip", "-o", "addr").Output()
	if err != nil {
		return nil, "ip addr: " + err.Error()
	}
	for k := int(b[0]); ; k = (k + 1) % 256 {
		l.subnet = fmt.Sprintf("10.201.%d", k)
		if !strings.Contains(string(used), " "+l.subnet+".") {
			break
		}
	}
	t.Cleanup(l.remove)
	steps := [][]string{
		{"link", "add", l.bridge(), "type", "bridge"},
		{"addr", "add", l.subnet + ".254/24", "dev", l.bridge()},
		{"link", "set", l.bridge(), "up"},
	}
	for i := 1; i <= n; i++ {
		ns, host, inner := l.ns(i), l.hostLink(i), l.innerLink(i)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", host, "type", "veth", "peer", "name", inner},
			[]string{"link", "set", inner, "netns", ns},
			[]string{"link", "set", host, "master", l.bridge(), "up"},
			[]string{"-n", ns, "addr", "add", l.addr(i) + "/24", "dev", inner},
			[]string{"-n", ns, "link", "set", inner, "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"})
	}
	// A host that cannot (a container without CAP_NET_ADMIN) says so at
	// the first step; what was made is removed and the caller goes on
	// without namespaces.
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			l.remove()
			return nil, fmt.Sprintf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return l, ""
}

func (l *netLab) bridge() string         { return "rvbr" + l.tag }
func (l *netLab) ns(i int) string        { return fmt.Sprintf("rv%s-%d", l.tag, i) }
func (l *netLab) hostLink(i int) string  { return fmt.Sprintf("rvh%s%d", l.tag, i) }
func (l *netLab) innerLink(i int) string { return fmt.Sprintf("rvn%s%d", l.tag, i) }

// addr is node i's address.
func (l *netLab) addr(i int) string { return fmt.Sprintf("%s.%d", l.subnet, i) }

// place gives a node its namespace's address, fixed ports (each node has
// its own address, so they cannot clash) and runs it in its namespace.
func (l *netLab) place(p *proc) {
	ip := l.addr(p.id)
	p.raft, p.admin, p.kafka = ip+":9093", ip+":9644", ip+":9092"
	p.wrap = []string{"ip", "netns", "exec", l.ns(p.id)}
}

// split cuts nodes a and b off each other (on) or joins them again, with
// blackhole routes in both namespaces: each still reaches the other nodes
// and the test's clients. Splitting a node from every peer isolates it
// from the cluster while clients still reach it, as a partitioned switch
// between racks would.
func (l *netLab) split(a, b int, on bool) {
	op := "add"
	if !on {
		op = "del"
	}
	l.run("-n", l.ns(a), "route", op, "blackhole", l.addr(b)+"/32")
	l.run("-n", l.ns(b), "route", op, "blackhole", l.addr(a)+"/32")
}

// cut takes node i off the network (down) or puts it back.
func (l *netLab) cut(i int, off bool) {
	state := "up"
	if off {
		state = "down"
	}
	l.run("link", "set", l.hostLink(i), state)
}

func (l *netLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// remove deletes what the lab made; errors are ignored, as some parts may
// never have been made.
func (l *netLab) remove() {
	for i := 1; i <= l.nodes; i++ {
		exec.Command("ip", "netns", "del", l.ns(i)).Run()
		exec.Command("ip", "link", "del", l.hostLink(i)).Run()
	}
	exec.Command("ip", "link", "del", l.bridge()).Run()
}

func TestNetLab_cutsANodeOffAndBack(t *testing.T) {
	lab, why := newNetLab(t, 3)
	if lab == nil {
		t.Skip("network namespaces: " + why)
	}
	procs := newProcClusterAt(t, 3, lab.place, nil, electionConfig...)
	createTopic(t, procs, "lab", 1, 3)
	waitTopic(t, procs[0], "lab", 1)
	leader, epoch := leaderOf(t, procs[0], "lab")
	lab.cut(int(leader), true)
	other := procs[leader%3]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if l, e := leaderOf(t, other, "lab"); l != 0 && l != leader && e > epoch {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader within 30 s of cutting node %d off", leader)
		}
	}
	lab.cut(int(leader), false)
	procs[leader-1].waitReady(t)
}
