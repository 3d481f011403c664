package storage

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashDirEnv names the log directory for TestCrashChild; the parent test
// sets it, and without it TestCrashChild does nothing.
const crashDirEnv = "REEVE_STORAGE_CRASH_DIR"

// crashOptions are shared by the child and the parent: small segments so
// that kills land in rolls too.
func crashOptions(dir string) Options {
	return Options{Dir: dir, Fsync: FsyncAlways, SegmentBytes: 48 << 10, IndexIntervalBytes: 1024, RetentionAge: -1}
}

// TestCrashChild is the process TestCrash_kill9 kills: it appends from a few
// goroutines under FsyncAlways and prints "durable N" once WaitDurable says
// offset N is on disk, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrash_kill9")
	}
	l, err := Open(crashOptions(dir))
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		os.Exit(3)
	}
	fmt.Printf("opened %d\n", l.LogEndOffset())
	var mu sync.Mutex // one line at a time on stdout
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ; i++ {
				b := makeBatch(t, batchSpec{records: 1 + rng.IntN(16), valueSize: 1 + rng.IntN(1500), tag: i})
				_, last, err := l.Append(b, 0)
				if err == nil {
					err = l.WaitDurable(context.Background(), last)
				}
				if err != nil {
					fmt.Printf("error: %v\n", err)
					os.Exit(4)
				}
				mu.Lock()
				os.Stdout.WriteString("durable " + strconv.FormatInt(last, 10) + "\n")
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrash_kill9 runs TestCrashChild in a child process, SIGKILLs it at a
// random moment, and checks that the reopened log holds every offset the
// child was told was durable, in batches that all pass CheckBatch. The same
// directory goes through several kill and recover rounds; in every other
// round the kill is made a power loss by also tearing what was not yet
// acknowledged (a kill alone never tears a write(2)).
func TestCrash_kill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var prevEnd int64
	for round := range 5 {
		maxDurable, lines := runAndKill(t, dir, time.Duration(20+rng.IntN(300))*time.Millisecond)
		if round%2 == 1 {
			tearUnsynced(t, dir, maxDurable, rng)
		}
		l, err := Open(crashOptions(dir))
		if err != nil {
			t.Fatalf("round %d: Open after kill -9 = %v", round, err)
		}
		leo := l.LogEndOffset()
		t.Logf("round %d: %d durable acks, last durable offset %d, log end offset %d after recovery", round, lines, maxDurable, leo)
		if leo <= maxDurable {
			t.Fatalf("round %d: log end offset %d after recovery, but %d was acknowledged durable", round, leo, maxDurable)
		}
		if leo < prevEnd {
			t.Fatalf("round %d: log end offset %d, below %d reached by an earlier round", round, leo, prevEnd)
		}
		prevEnd = leo
		// Every batch is whole and valid, and offsets run on without gaps.
		var next int64
		for next < leo {
			b, err := l.Read(next, 256<<10)
			if err != nil {
				t.Fatalf("round %d: Read(%d) = %v", round, next, err)
			}
			for _, h := range headers(t, b) {
				if h.BaseOffset != next {
					t.Fatalf("round %d: batch at %d, want %d", round, h.BaseOffset, next)
				}
				next = h.LastOffset() + 1
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child on dir, kills it after delay counted from its
// first durable ack, and returns the largest acknowledged offset and the
// number of acks.
func runAndKill(t *testing.T, dir string, delay time.Duration) (maxDurable int64, acks int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := make(chan struct{})
	var once sync.Once
	kill := func() {
		once.Do(func() {
			time.AfterFunc(delay, func() {
				// Mark the kill before sending it: the reader below may see
				// the child's stdout close before this function returns.
				close(killed)
				cmd.Process.Signal(syscall.SIGKILL)
			})
		})
	}
	watchdog := time.AfterFunc(20*time.Second, func() { cmd.Process.Kill() })
	defer watchdog.Stop()
	maxDurable = -1
	sc := bufio.NewScanner(out)
	var other []string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "durable "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue // a line cut by the kill
			}
			maxDurable = max(maxDurable, n)
			acks++
			kill()
			continue
		}
		other = append(other, line)
	}
	cmd.Wait()
	select {
	case <-killed:
	default:
		t.Fatalf("child exited before it was killed; its output:\n%s", strings.Join(other, "\n"))
	}
	if acks == 0 {
		t.Fatalf("child acknowledged nothing; its output:\n%s", strings.Join(other, "\n"))
	}
	return maxDurable, acks
}

// tearUnsynced does to the active segment what a power loss may do to bytes
// that were never fsynced: cuts it at a random byte past the last
// acknowledged batch, and sometimes leaves garbage or zeros after the cut.
func tearUnsynced(t *testing.T, dir string, maxDurable int64, rng *rand.Rand) {
	t.Helper()
	segs := segmentFiles(t, dir)
	path := segs[len(segs)-1]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	size := fi.Size()
	var keep int64 // end of the last acknowledged batch in this segment
	walkHeaders(f, 0, size, func(h BatchHeader, pos int64) bool {
		if h.BaseOffset > maxDurable {
			return false
		}
		keep = pos + int64(h.Length)
		return true
	})
	if keep >= size {
		return
	}
	cut := keep + rng.Int64N(size-keep+1)
	if err := f.Truncate(cut); err != nil {
		t.Fatal(err)
	}
	var tail []byte
	switch rng.IntN(3) {
	case 1:
		tail = make([]byte, rng.IntN(5000))
		for i := range tail {
			tail[i] = byte(rng.Uint32())
		}
	case 2:
		tail = make([]byte, rng.IntN(5000))
	}
	if _, err := f.WriteAt(tail, cut); err != nil {
		t.Fatal(err)
	}
	t.Logf("tore %s: cut %d of %d bytes past the last acknowledged batch, then %d bytes of junk", path[len(dir)+1:], size-cut, size-keep, len(tail))
}
