package kafka

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeve-edge/reeve/kafka/internal/storage"
)

// partition is one local partition replica: its log, a way to wake the
// fetches that wait for it to grow, and its idempotent producers.
type partition struct {
	topic  string
	id     [16]byte
	index  int32
	log    *storage.Log
	logger *slog.Logger

	mu   sync.Mutex
	wake chan struct{} // closed and replaced when the log grows

	producers producerState
	repl      replicaState
}

func (p *partition) grew() {
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

func (p *partition) waitCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wake
}

// metaView is a snapshot of the cluster's topics, indexed for the produce
// and fetch paths; it is rebuilt when the metadata changes.
type metaView struct {
	byName map[string]*Topic
	byID   map[[16]byte]*Topic
}

// partitions owns the node's partition logs: it opens them on first use,
// deletes those of deleted topics, and applies retention.
type partitions struct {
	dir     string
	opts    storage.Options
	cluster Cluster
	log     *slog.Logger

	// mu guards open and opening, and is never held across disk I/O: one
	// slow disk or one long recovery must not stall other partitions.
	mu      sync.Mutex
	open    map[partitionKey]*partition
	opening map[partitionKey]*openCall // logs being opened, outside mu
	view    atomic.Pointer[metaView]
	dirty   chan struct{}

	// onChange runs after every refresh of the view by maintain, so the
	// replica fetchers follow leadership changes.
	onChange func()
	// onFail is told, on its own goroutine, that a partition's log failed.
	onFail func(p *partition, err error)
	// beforeOpen, a test hook, runs before a partition's log is opened,
	// with no lock held; it may block, as a slow disk does.
	beforeOpen func(dir string)
}

type partitionKey struct {
	id    [16]byte
	index int32
}

// openCall is one partition log being opened; callers that want the same
// log wait for it instead of opening it twice.
type openCall struct {
	done chan struct{} // closed once p and err are set
	p    *partition
	err  error
}

// minFreeBytes is the free space below which the partition logs take no
// more appends (produce answers KAFKA_STORAGE_ERROR, followers stop
// copying): twice the Raft store's 64 MiB reserve file, so that the
// metadata store and the operating system keep room when the records fill
// the disk, and a reserve released at start leaves the node refusing
// writes rather than filling the disk again. See "Disk full" in
// docs/kafka.md.
const minFreeBytes = 128 << 20

func newPartitions(dir string, opts storage.Options, cluster Cluster, log *slog.Logger) (*partitions, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("kafka: create data dir: %w", err)
	}
	if opts.Space == nil {
		opts.Space = storage.NewSpace(dir, minFreeBytes, log)
	}
	p := &partitions{dir: dir, opts: opts, cluster: cluster, log: log,
		open: make(map[partitionKey]*partition), opening: make(map[partitionKey]*openCall), dirty: make(chan struct{}, 1)}
	p.refresh()
	return p, nil
}

// refresh rebuilds the metadata view from the cluster.
func (ps *partitions) refresh() *metaView {
	v := &metaView{byName: make(map[string]*Topic), byID: make(map[[16]byte]*Topic)}
	for _, t := range ps.cluster.Topics() {
		t := t
		v.byName[t.Name] = &t
		v.byID[t.ID] = &t
	}
	ps.view.Store(v)
	return v
}

// topic finds a topic, re-reading the cluster once if the view lacks it (a
// topic created a moment ago).
func (ps *partitions) topic(name string) (*Topic, bool) {
	if t, ok := ps.view.Load().byName[name]; ok {
		return t, true
	}
	t, ok := ps.refresh().byName[name]
	return t, ok
}

func (ps *partitions) topicByID(id [16]byte) (*Topic, bool) {
	if t, ok := ps.view.Load().byID[id]; ok {
		return t, true
	}
	t, ok := ps.refresh().byID[id]
	return t, ok
}

func (ps *partitions) changed() {
	select {
	case ps.dirty <- struct{}{}:
	default:
	}
}

// dirName is "<topic>-<partition>.<topic id>": base64url ids have no '.',
// and the partition follows the last '-', so the name parses back.
func dirName(topic string, index int32, id [16]byte) string {
	return fmt.Sprintf("%s-%d.%s", topic, index, base64.RawURLEncoding.EncodeToString(id[:]))
}

func parseDirName(name string) (topic string, index int32, id [16]byte, ok bool) {
	dot := strings.LastIndexByte(name, '.')
	dash := strings.LastIndexByte(name[:max(dot, 0)], '-')
	if dot < 0 || dash < 0 {
		return "", 0, id, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(name[dot+1:])
	n, err2 := strconv.ParseInt(name[dash+1:dot], 10, 32)
	if err != nil || err2 != nil || len(raw) != 16 {
		return "", 0, id, false
	}
	copy(id[:], raw)
	return name[:dash], int32(n), id, true
}

// lookup returns a partition's local log if it is open.
func (ps *partitions) lookup(id [16]byte, index int32) *partition {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.open[partitionKey{id, index}]
}

// get returns the local log of a partition, opening it on first use. The
// open (and its recovery scan) runs outside ps.mu, so it delays only the
// callers that want this partition.
func (ps *partitions) get(t *Topic, index int32) (*partition, error) {
	key := partitionKey{t.ID, index}
	ps.mu.Lock()
	if p, ok := ps.open[key]; ok {
		ps.mu.Unlock()
		return p, nil
	}
	if ps.open == nil {
		ps.mu.Unlock()
		return nil, storage.ErrClosed
	}
	if c, ok := ps.opening[key]; ok {
		ps.mu.Unlock()
		<-c.done
		return c.p, c.err
	}
	c := &openCall{done: make(chan struct{})}
	ps.opening[key] = c
	ps.mu.Unlock()

	p, err := ps.openLog(t, index)
	ps.mu.Lock()
	delete(ps.opening, key)
	if err == nil && ps.open == nil { // closed while it opened
		err = errors.Join(storage.ErrClosed, p.log.Close())
		p = nil
	}
	if err == nil {
		ps.open[key] = p
	}
	c.p, c.err = p, err
	ps.mu.Unlock()
	close(c.done)
	return p, err
}

// openLog opens a partition's log; the caller holds no lock.
func (ps *partitions) openLog(t *Topic, index int32) (*partition, error) {
	p := &partition{topic: t.Name, id: t.ID, index: index, logger: ps.log, wake: make(chan struct{})}
	opts := topicLogOptions(ps.opts, t.Config)
	opts.Dir = filepath.Join(ps.dir, dirName(t.Name, index, t.ID))
	opts.Logger = ps.log.With("topic", t.Name, "partition", index)
	opts.OnDurable = p.recomputeHW
	p.snapshotHooks(&opts) // producer-state snapshots at roll and Close
	outer := opts.OnFail
	opts.OnFail = func(err error) {
		if outer != nil {
			outer(err)
		}
		if ps.onFail != nil {
			ps.onFail(p, err)
		}
	}
	if ps.beforeOpen != nil {
		ps.beforeOpen(opts.Dir)
	}
	l, err := storage.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open log of %s-%d: %w", t.Name, index, err)
	}
	p.mu.Lock()
	p.log = l
	p.mu.Unlock()
	p.initReplication()
	p.dropStaleSnapshots()
	return p, nil
}

// topicLogOptions applies a topic's Kafka-named settings to the defaults.
// Unparseable values were refused when the topic was created.
func topicLogOptions(o storage.Options, cfg map[string]string) storage.Options {
	num := func(k string) (int64, bool) {
		v, ok := cfg[k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	// Kafka's -1 is "unlimited" and 0 "keep nothing"; storage reads a
	// negative value as unlimited and 0 as its default, so 0 becomes the
	// smallest limit instead.
	if n, ok := num("retention.ms"); ok {
		o.RetentionAge = time.Duration(max(n, -1)) * time.Millisecond
		if n == 0 {
			o.RetentionAge = time.Millisecond
		}
	}
	if n, ok := num("retention.bytes"); ok {
		o.RetentionBytes = max(n, -1)
		if n == 0 {
			o.RetentionBytes = 1
		}
	}
	if n, ok := num("segment.bytes"); ok && n > 0 {
		o.SegmentBytes = n
	}
	if n, ok := num("segment.ms"); ok && n > 0 {
		o.SegmentAge = time.Duration(n) * time.Millisecond
	}
	return o
}

// maintenanceInterval is how often retention runs and orphaned logs are
// looked for, besides every metadata change.
const maintenanceInterval = 30 * time.Second

// maintain refreshes the view and deletes the logs of deleted topics on
// every metadata change, and applies retention and producer expiry
// periodically.
func (ps *partitions) maintain(ctx context.Context) {
	t := time.NewTicker(maintenanceInterval)
	defer t.Stop()
	changed := func() {
		ps.refresh()
		ps.sweep()
		if ps.onChange != nil {
			ps.onChange()
		}
	}
	changed()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ps.dirty:
			changed()
		case <-t.C:
			changed()
			ps.retain()
		}
	}
}

// sweep deletes local logs whose topic id the cluster no longer has. It
// runs only on a current view: right after a restart the view is still
// being replayed and lacks topics that exist.
func (ps *partitions) sweep() {
	if !ps.cluster.Current() {
		return
	}
	v := ps.refresh()
	var gone []*partition
	ps.mu.Lock()
	for key, p := range ps.open {
		if _, ok := v.byID[key.id]; !ok {
			delete(ps.open, key)
			gone = append(gone, p)
		}
	}
	ps.mu.Unlock()
	for _, p := range gone { // outside ps.mu: a delete may be slow
		if err := p.log.Delete(); err != nil {
			ps.log.Warn("kafka: delete log of deleted topic", "topic", p.topic, "partition", p.index, "err", err)
		} else {
			ps.log.Info("kafka: deleted log of deleted topic", "topic", p.topic, "partition", p.index)
		}
	}
	entries, err := os.ReadDir(ps.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		topic, index, id, ok := parseDirName(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if _, known := v.byID[id]; known {
			continue
		}
		ps.mu.Lock()
		_, inUse := ps.open[partitionKey{id, index}]
		_, beingOpened := ps.opening[partitionKey{id, index}]
		ps.mu.Unlock()
		inUse = inUse || beingOpened
		if !inUse {
			if err := os.RemoveAll(filepath.Join(ps.dir, e.Name())); err == nil {
				ps.log.Info("kafka: deleted log of deleted topic", "topic", topic, "partition", index)
			}
		}
	}
}

func (ps *partitions) retain() {
	ps.mu.Lock()
	open := make([]*partition, 0, len(ps.open))
	for _, p := range ps.open {
		open = append(open, p)
	}
	ps.mu.Unlock()
	for _, p := range open {
		if n, err := p.log.EnforceRetention(); err != nil && !errors.Is(err, storage.ErrClosed) {
			ps.log.Warn("kafka: retention", "topic", p.topic, "partition", p.index, "err", err)
		} else if n > 0 {
			ps.log.Info("kafka: retention deleted segments", "topic", p.topic, "partition", p.index, "segments", n)
		}
		if n := p.producers.expire(time.Now().Add(-producerExpiry)); n > 0 {
			ps.log.Debug("kafka: forgot idle idempotent producers", "topic", p.topic, "partition", p.index, "producers", n)
		}
	}
}

func (ps *partitions) close() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var errs []error
	for _, p := range ps.open {
		errs = append(errs, p.log.Close())
	}
	ps.open = nil
	return errors.Join(errs...)
}
