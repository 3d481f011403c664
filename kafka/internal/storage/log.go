package storage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeve-edge/reeve/internal/fsutil"
)

// Defaults applied by Open to zero-valued Options fields.
const (
	DefaultSegmentBytes       = 64 << 20
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096
	DefaultFsyncInterval      = time.Second
	DefaultRetentionAge       = 7 * 24 * time.Hour

	// maxSegmentBytes keeps every position in a segment within the uint32 of
	// an index entry, with room for one oversized batch past the limit.
	maxSegmentBytes = math.MaxInt32
)

// Options configures a Log. The zero value of every field but Dir means its
// default.
type Options struct {
	Dir                string        // the partition's directory; created if missing
	SegmentBytes       int64         // roll the active segment past this size; default 64 MiB
	SegmentAge         time.Duration // roll a non-empty active segment older than this (by its first append's wall clock); default 7 days
	IndexIntervalBytes int           // bytes between sparse index entries; default 4096
	Fsync              FsyncMode     // default FsyncAlways
	FsyncInterval      time.Duration // for FsyncInterval; default 1s
	// RetentionBytes: when > 0, EnforceRetention deletes the oldest whole
	// segments while the log is larger than this (never the active segment).
	// 0 (the default) or < 0 is unlimited.
	RetentionBytes int64
	// RetentionAge: EnforceRetention deletes whole segments whose records
	// are older than Now()-RetentionAge (segmentTime), the active segment
	// only once nothing has been written to it for RetentionAge either.
	// 0 means the default, 7 days; < 0 is unlimited.
	RetentionAge time.Duration
	// Space, when set, is asked before every append whether the file
	// system has room; it is shared by the logs of one data directory.
	// nil: appends go ahead until a write fails with ENOSPC.
	Space  *Space
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now; for tests
	// OnDurable, if set, is called (from the syncer, without locks held)
	// after an fsync made more of the log durable.
	OnDurable func()
	// OnFail, if set, is called once, on its own goroutine, when an fsync
	// or another write-path I/O error fails the log (see Failed).
	OnFail func(err error)
	// BeforeFsync is a test hook: when set, it is called before each
	// fsync of one of the log's segment files with the file's path, and an
	// error it returns is taken as that fsync's. It may block, as a
	// stalled disk does.
	BeforeFsync func(path string) error
	// OnRoll, if set, is called after each roll with the new active
	// segment's base offset (the log end offset then), with the log's
	// write lock held: it must return at once and not call the Log's
	// writing methods; it may start work that reads the log.
	OnRoll func(base int64)
	// BeforeClose, if set, is called at the start of Close (and Delete)
	// of an open log, with no lock held, so its owner can finish work
	// that uses the log.
	BeforeClose func()
}

// DurableOffset returns the offset below which every record is on stable
// storage under FsyncAlways; under the other modes, where nothing waits
// for an fsync, it is the log end offset.
func (l *Log) DurableOffset() int64 {
	leo := l.leo.Load()
	if l.opts.Fsync != FsyncAlways {
		return leo
	}
	l.syncer.mu.Lock()
	defer l.syncer.mu.Unlock()
	return min(l.syncer.durable, leo)
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("storage: Options.Dir is empty; give the partition's directory")
	}
	switch {
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	case o.SegmentBytes < 0 || o.SegmentBytes > maxSegmentBytes:
		return o, fmt.Errorf("storage: SegmentBytes %d out of range; use 1 to %d", o.SegmentBytes, int64(maxSegmentBytes))
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = DefaultSegmentAge
	}
	switch {
	case o.IndexIntervalBytes == 0:
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	case o.IndexIntervalBytes < 0:
		return o, fmt.Errorf("storage: IndexIntervalBytes %d is negative; use 0 for the default", o.IndexIntervalBytes)
	}
	if o.Fsync < FsyncAlways || o.Fsync > FsyncNever {
		return o, fmt.Errorf("storage: unknown fsync mode %d", int(o.Fsync))
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.RetentionAge == 0 {
		o.RetentionAge = DefaultRetentionAge
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Log is the on-disk log of one partition replica. All methods are safe for
// concurrent use; reads run concurrently with appends and with each other.
type Log struct {
	opts Options
	dir  string
	log  *slog.Logger
	lock *os.File // flock on the directory's .lock; nil where unsupported

	// wmu serializes everything that changes the log: appends, rolls,
	// truncation, retention, Close. Writer-only state needs no other lock.
	wmu    sync.Mutex
	frames []frame // scratch for splitBatches

	// fileMu is held by the background syncer while it uses a segment's
	// files; whoever closes a segment's files takes it first.
	fileMu sync.Mutex

	// mu guards what readers see: the segment list, each segment's
	// reader-visible fields, the log start offset and the epoch cache.
	// Writers take it exclusively only to publish.
	mu       sync.RWMutex
	segs     []*segment
	logStart int64
	epochs   epochCache
	leo      atomic.Int64 // written under mu and wmu
	closed   atomic.Bool  // set under wmu and mu

	failed atomic.Pointer[error] // a write-path I/O error; the log refuses writes after it
	// trusted is, once the log failed, the offset below which it was
	// durable at the failure; reads stop there (Read).
	trusted atomic.Int64

	rpMu sync.Mutex
	rp   recoveryPoint // last one written

	syncer syncer
}

// Open opens the log in o.Dir, creating the directory if needed, and
// recovers it: see the package documentation for what recovery checks and
// what it drops.
func Open(o Options) (*Log, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	l := &Log{opts: o, dir: o.Dir, log: o.Logger.With("dir", o.Dir), lock: lock}
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.close()
		}
		l.unlock()
		return nil, fmt.Errorf("storage: open %s: %w", o.Dir, err)
	}
	l.startSyncer()
	return l, nil
}

// active returns the segment appends go to. The caller holds wmu or mu.
func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// segmentFor returns the segment that holds offset. The caller holds mu
// (read) and has checked LogStartOffset <= offset < LogEndOffset.
func (l *Log) segmentFor(offset int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return l.segs[max(i-1, 0)]
}

// writable reports why the log refuses writes, if it does.
func (l *Log) writable() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if p := l.failed.Load(); p != nil {
		return fmt.Errorf("storage: %s: %w earlier and refuses writes until reopened (a restart): %w", l.dir, ErrFailed, *p)
	}
	return nil
}

// fail records a write-path I/O error after which the in-memory state and
// the files may disagree; the log refuses writes until it is reopened and
// recovered, and serves reads only below what was durable before the
// failure: after a failed fsync the kernel may have dropped the pages it
// could not write, so what a read would find in the page cache may never
// reach the disk.
func (l *Log) fail(err error) error {
	l.syncer.mu.Lock()
	trusted := l.syncer.durable
	l.syncer.mu.Unlock()
	l.trusted.Store(trusted)
	if l.failed.CompareAndSwap(nil, &err) {
		l.log.Error("storage: partition log failed: it takes no writes and serves reads only below the offset durable before the failure, until the node restarts and recovers it; check the device",
			"device", deviceOf(l.dir), "durable_offset", trusted, "log_end_offset", l.leo.Load(), "err", err)
		if l.opts.OnFail != nil {
			go l.opts.OnFail(err)
		}
	}
	l.syncer.wakeAll()
	return err
}

// Failed returns the error that failed the log, or nil while it is
// healthy.
func (l *Log) Failed() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// readableEnd is the offset reads stop at: the log end, or what was
// durable when the log failed.
func (l *Log) readableEnd() int64 {
	leo := l.leo.Load()
	if l.failed.Load() != nil {
		return min(leo, l.trusted.Load())
	}
	return leo
}

// fsyncSegment fsyncs a segment's files, through the BeforeFsync hook.
func (l *Log) fsyncSegment(s *segment) error {
	if h := l.opts.BeforeFsync; h != nil {
		if err := h(s.log.Name()); err != nil {
			return fmt.Errorf("fsync %s: %w", s.name(), err)
		}
	}
	return s.sync()
}

// noSpace marks an append error caused by a full disk with ErrNoSpace and
// makes the Space look again. It leaves an error after which the log
// failed alone: write undoes a failed write (truncating the file back to
// the last whole batch, which needs no space) and fails the log only when
// that undo fails, and an fsync error is never passed over, because after
// one the kernel may have dropped pages it could not write.
func (l *Log) noSpace(err error) error {
	if l.failed.Load() != nil {
		return err
	}
	err = noSpace(err)
	if errors.Is(err, ErrNoSpace) {
		l.opts.Space.Recheck()
	}
	return err
}

// Append assigns offsets to one or more whole batches (concatenated, each
// already passed CheckBatch), sets each batch's baseOffset and
// partitionLeaderEpoch, writes them in one write, and returns the base
// offset of the first and the last offset of the last. It does not wait for
// fsync: see WaitDurable.
//
// # Notes
//
// The two header fields are set in batches itself: the caller's buffer is
// modified. A leaderEpoch above LatestEpoch starts a new epoch at base (and
// rewrites the leader-epoch-checkpoint before the data is written); one below
// it is refused.
func (l *Log) Append(batches []byte, leaderEpoch int32) (base, last int64, err error) {
	if leaderEpoch < 0 {
		return -1, -1, fmt.Errorf("storage: append: leader epoch %d is negative", leaderEpoch)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return -1, -1, err
	}
	frames, err := splitBatches(batches, l.frames[:0])
	l.frames = frames[:0]
	if err != nil {
		return -1, -1, fmt.Errorf("storage: append: %w", err)
	}
	if latest := l.epochs.latest(); leaderEpoch < latest {
		return -1, -1, fmt.Errorf("storage: append: leader epoch %d is older than the log's latest epoch %d", leaderEpoch, latest)
	}
	if err := l.opts.Space.Check(int64(len(batches))); err != nil {
		return -1, -1, fmt.Errorf("storage: append: %w", err)
	}
	base = l.leo.Load()
	next := base
	for i := range frames {
		f := &frames[i]
		b := batches[f.pos:]
		setBaseOffset(b, next)
		setLeaderEpoch(b, leaderEpoch)
		f.h.BaseOffset, f.h.PartitionLeaderEpoch = next, leaderEpoch
		next += int64(f.h.LastOffsetDelta) + 1
	}
	if err := l.updateEpochs(func(c *epochCache) bool { return c.assign(leaderEpoch, base) }); err != nil {
		return -1, -1, fmt.Errorf("storage: append: %w", l.noSpace(err))
	}
	if err := l.write(batches, frames, next); err != nil {
		return -1, -1, fmt.Errorf("storage: append: %w", l.noSpace(err))
	}
	return base, next - 1, nil
}

// AppendVerbatim appends batches that already carry offsets and leader
// epochs (a follower copying its leader). Each batch must pass CheckBatch
// and its baseOffset must equal the log end offset at that point, else
// nothing is written and the error wraps ErrCorrupt or ErrOffsetOutOfRange.
// It returns the last offset of the last batch.
func (l *Log) AppendVerbatim(batches []byte) (last int64, err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return -1, err
	}
	frames, err := splitBatches(batches, l.frames[:0])
	l.frames = frames[:0]
	if err != nil {
		return -1, fmt.Errorf("storage: append verbatim: %w", err)
	}
	next := l.leo.Load()
	for _, f := range frames {
		if _, err := CheckBatch(batches[f.pos : f.pos+int(f.h.Length)]); err != nil {
			return -1, fmt.Errorf("storage: append verbatim: batch at offset %d: %w", f.h.BaseOffset, err)
		}
		if f.h.BaseOffset != next {
			return -1, fmt.Errorf("storage: append verbatim: batch base offset %d, log end offset is %d: %w",
				f.h.BaseOffset, next, ErrOffsetOutOfRange)
		}
		next = f.h.LastOffset() + 1
	}
	if err := l.opts.Space.Check(int64(len(batches))); err != nil {
		return -1, fmt.Errorf("storage: append verbatim: %w", err)
	}
	err = l.updateEpochs(func(c *epochCache) bool {
		changed := false
		for _, f := range frames {
			changed = c.assign(f.h.PartitionLeaderEpoch, f.h.BaseOffset) || changed
		}
		return changed
	})
	if err != nil {
		return -1, fmt.Errorf("storage: append verbatim: %w", l.noSpace(err))
	}
	if err := l.write(batches, frames, next); err != nil {
		return -1, fmt.Errorf("storage: append verbatim: %w", l.noSpace(err))
	}
	return next - 1, nil
}

// updateEpochs applies fn to a copy of the epoch cache and, if that changed
// it, saves the copy and then publishes it. The caller holds wmu.
func (l *Log) updateEpochs(fn func(c *epochCache) bool) error {
	c := epochCache{entries: slices.Clone(l.epochs.entries)}
	if !fn(&c) {
		return nil
	}
	if err := c.save(l.dir); err != nil {
		return err
	}
	l.mu.Lock()
	l.epochs = c
	l.mu.Unlock()
	return nil
}

// write appends framed batches whose offsets end before next to the active
// segment, rolling first if needed, and publishes them. The caller holds wmu.
func (l *Log) write(b []byte, frames []frame, next int64) error {
	s := l.active()
	now := l.opts.Now()
	if l.shouldRoll(s, int64(len(b)), next, now) {
		if err := l.roll(); err != nil {
			return err
		}
		s = l.active()
	}
	pos := s.size
	if pos+int64(len(b)) > math.MaxUint32 {
		return fmt.Errorf("%d bytes do not fit in a segment", len(b))
	}
	savedIx, savedIdxLen, savedTidxLen := s.ix, s.idxLen, s.tidxLen
	undo := func(err error) error {
		// Take the write back so that the files match what readers see;
		// index entries past idxLen are overwritten by the next append.
		s.ix, s.idxLen, s.tidxLen = savedIx, savedIdxLen, savedTidxLen
		if terr := s.log.Truncate(pos); terr != nil {
			return l.fail(errors.Join(err, fmt.Errorf("undo partial write: %w", terr)))
		}
		return err
	}
	if _, err := s.log.WriteAt(b, pos); err != nil {
		return undo(fmt.Errorf("write %s: %w", s.name(), err))
	}
	var ies []indexEntry
	var tes []timeEntry
	for _, f := range frames {
		ie, te := s.ix.observe(s.base, f.h, pos+int64(f.pos))
		if ie != nil {
			ies = append(ies, *ie)
		}
		if te != nil {
			tes = append(tes, *te)
		}
	}
	if err := s.appendIndexes(ies, tes); err != nil {
		return undo(err)
	}
	if s.created.IsZero() {
		s.created = now
	}
	l.mu.Lock()
	s.size = pos + int64(len(b))
	s.next = next
	s.entries = append(s.entries, ies...)
	s.tentries = append(s.tentries, tes...)
	s.maxTs = s.ix.maxTs
	l.leo.Store(next)
	l.mu.Unlock()
	return nil
}

// shouldRoll reports whether an append of n bytes ending before next must go
// to a new segment.
func (l *Log) shouldRoll(s *segment, n, next int64, now time.Time) bool {
	if s.size == 0 {
		return false
	}
	return s.size+n > l.opts.SegmentBytes ||
		now.Sub(s.created) >= l.opts.SegmentAge ||
		next-1-s.base > math.MaxInt32
}

// roll starts a new active segment at the log end offset. Under FsyncAlways
// and FsyncInterval the old segment and its indexes are fsynced before the
// new one takes appends and the recovery point moves past the old one; under
// FsyncNever the syncer does that in the background. The caller holds wmu.
func (l *Log) roll() error {
	old := l.active()
	base := l.leo.Load()
	durable := l.opts.Fsync != FsyncNever
	if durable {
		if err := l.fsyncSegment(old); err != nil {
			return l.fail(err)
		}
	}
	ns, err := openSegmentFile(l.dir, base, true)
	if err != nil {
		return fmt.Errorf("roll: %w", err)
	}
	ns.ix = newIndexer(int64(l.opts.IndexIntervalBytes))
	if err := ns.openIndexes(); err != nil {
		ns.remove()
		return fmt.Errorf("roll: %w", err)
	}
	if durable {
		if err := fsutil.SyncDir(l.dir); err != nil {
			ns.remove()
			return l.fail(fmt.Errorf("roll: %w", err))
		}
	}
	l.mu.Lock()
	l.segs = append(l.segs, ns)
	l.mu.Unlock()
	l.log.Debug("rolled segment", "segment", ns.name(), "offset", base)
	if l.opts.OnRoll != nil {
		l.opts.OnRoll(base)
	}
	if !durable {
		l.syncer.addRolled(old)
		return nil
	}
	if err := old.closeIndexes(); err != nil {
		l.log.Warn("close index files of rolled segment", "segment", old.name(), "err", err)
	}
	l.syncer.advance(base)
	l.advanceRecoveryPoint(recoveryPoint{base: base, pos: 0, next: base})
	return nil
}

// setRecoveryPoint writes the recovery point if it moves forward, or in
// any direction when force is set (truncation moves it back).
func (l *Log) setRecoveryPoint(rp recoveryPoint, force bool) error {
	l.rpMu.Lock()
	defer l.rpMu.Unlock()
	if rp == l.rp || (rp.next < l.rp.next && !force) {
		return nil
	}
	if err := writeRecoveryPoint(l.dir, rp); err != nil {
		return err
	}
	l.rp = rp
	return nil
}

// advanceRecoveryPoint moves the recovery point forward and logs a failure
// instead of returning it: the recovery point only saves work at the next
// Open, and an old one is safe.
func (l *Log) advanceRecoveryPoint(rp recoveryPoint) {
	if err := l.setRecoveryPoint(rp, false); err != nil {
		l.log.Warn("write recovery point; the next open after a crash scans more of the log", "err", err)
	}
}

// LogStartOffset returns the first offset a reader may ask for.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// LogEndOffset returns the offset the next appended record gets.
func (l *Log) LogEndOffset() int64 { return l.leo.Load() }

// Size returns the bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// LatestEpoch returns the newest leader epoch the log has batches for, -1
// when it has none.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch <= epoch
// that the log knows, and the start offset of the next higher epoch, or
// LogEndOffset when that epoch is the latest. It returns (-1, -1) when the
// log knows no epoch <= epoch.
//
// # Notes
//
// This follows Kafka's LeaderEpochFileCache.endOffsetFor except at the two
// edges: an epoch above every known one answers (latest, LogEndOffset) where
// Kafka answers (-1, -1), and one below every known one answers (-1, -1)
// where Kafka answers (epoch, start of the first epoch). Both make a
// follower truncate no further than it must.
func (l *Log) EndOffsetForEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.leo.Load())
}

// Close fsyncs and closes the log. Waiters in WaitDurable return. Later
// calls of any method return ErrClosed.
func (l *Log) Close() error {
	if l.opts.BeforeClose != nil && !l.closed.Load() {
		l.opts.BeforeClose()
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return ErrClosed
	}
	l.syncer.stop()
	l.fileMu.Lock()
	defer l.fileMu.Unlock()

	var errs []error
	synced := l.failed.Load() == nil
	if synced {
		if err := l.syncer.syncRolled(l); err != nil {
			errs = append(errs, err)
			synced = false
		}
	}
	a := l.active()
	if synced {
		if err := a.sync(); err != nil {
			errs = append(errs, err)
			synced = false
		}
	}
	if synced {
		if err := l.setRecoveryPoint(recoveryPoint{base: a.base, pos: a.size, next: a.next}, true); err != nil {
			errs = append(errs, err)
		}
		l.syncer.advance(a.next)
	}

	l.mu.Lock()
	l.closed.Store(true)
	for _, s := range l.segs {
		if err := s.close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.name(), err))
		}
	}
	l.mu.Unlock()
	l.syncer.wakeAll()
	l.unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: close %s: %w", l.dir, err)
	}
	return nil
}

// unlock releases the directory lock.
func (l *Log) unlock() {
	if l.lock != nil {
		l.lock.Close()
		l.lock = nil
	}
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
		l.log.Warn("close before delete", "err", err)
	}
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("storage: delete %s: %w", l.dir, err)
	}
	return nil
}
