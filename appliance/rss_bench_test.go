package appliance_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleRSS reports the resident memory of idle reeve processes: a
// 3-node cluster with the default 4 partition groups and one 12-partition
// topic, measured after 10 s without traffic. The target is under 100 MB
// per node.
func BenchmarkIdleRSS(b *testing.B) {
	// One measurement, however large b.N: the figure is a level, not a rate.
	procs := newProcCluster(b, 3)
	if _, errOut, status := run(b, "topic", "create", "idle", "-p", "12", "-r", "3", "--admin", procs[0].admin); status != 0 {
		b.Fatalf("topic create: %s", errOut)
	}
	time.Sleep(10 * time.Second)
	var worst float64
	for _, p := range procs {
		mb, err := rssMB(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("node %d: VmRSS %.1f MB", p.id, mb)
		worst = max(worst, mb)
	}
	b.ReportMetric(worst, "max-rss-MB")
	b.ReportMetric(0, "ns/op")
}

func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
