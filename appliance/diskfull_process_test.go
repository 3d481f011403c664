package appliance_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDiskFull_restartServesReadsRefusesWrites restarts a node whose data
// directory (a small tmpfs) has no byte free, after a clean stop and after a
// SIGKILL (whose restart recovers the Raft log and the partition log): it
// must become ready, serve the records it has, answer produces with
// KAFKA_STORAGE_ERROR, and take them again once space is freed.
func TestDiskFull_restartServesReadsRefusesWrites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs as the data directory: run as root")
	}
	for _, tc := range []struct {
		name string
		stop syscall.Signal
	}{
		{"sigterm", syscall.SIGTERM},
		{"sigkill", syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) { restartOnFullDisk(t, tc.stop) })
	}
}

func restartOnFullDisk(t *testing.T, stop syscall.Signal) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs on %s: %v: %s", data, err, out)
	}
	// Registered before the node starts, so it runs after the node is
	// killed (cleanups run last first).
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", data, err, out)
		}
	})

	p, addr := kafkaNodeAt(t, data, "")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(kgoClient(t, addr))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "full"); err != nil {
		t.Fatalf("CreateTopic = %v", err)
	}
	const n = 100
	prod := kgoClient(t, addr, kgo.DefaultProduceTopic("full"))
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatalf("produce before the disk fills: %v", err)
	}
	p.kill(t, stop)
	reserve := filepath.Join(data, "reserve")
	if _, err := os.Stat(reserve); err != nil {
		t.Fatalf("reserve file after the first start: %v", err)
	}

	filler := filepath.Join(data, "filler")
	fillDisk(t, filler)
	p.start(t)
	p.waitReady(t)
	if _, err := os.Stat(reserve); !os.IsNotExist(err) {
		t.Fatalf("reserve file after a start on a full disk: %v, want it deleted", err)
	}

	cons := kgoClient(t, addr, kgo.ConsumeTopics("full"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("PollFetches on a full disk after %d records: %v", read, err)
		}
		read += len(fs.Records())
	}

	refused := kgoClient(t, addr, kgo.DefaultProduceTopic("full"), kgo.DisableIdempotentWrite(),
		kgo.RecordRetries(0), kgo.ProduceRequestTimeout(2*time.Second))
	err := refused.ProduceSync(ctx, &kgo.Record{Value: []byte("no room")}).FirstErr()
	if !errors.Is(err, kerr.KafkaStorageError) {
		t.Fatalf("ProduceSync on a full disk = %v, want KAFKA_STORAGE_ERROR", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := prod.ProduceSync(pctx, &kgo.Record{Value: []byte("room again")}).FirstErr(); err != nil {
		t.Fatalf("ProduceSync after space returned = %v", err)
	}
	t.Logf("produce succeeded %v after the filler was removed", time.Since(start).Round(time.Millisecond))
}

// fillDisk writes path until its file system has no byte left.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		for {
			if _, err := f.Write(buf[:chunk]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", path, err)
				}
				break
			}
		}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	if st.Bavail != 0 {
		t.Fatalf("after filling %s, %d blocks are still free", path, st.Bavail)
	}
}
