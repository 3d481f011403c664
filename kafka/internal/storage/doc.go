// Package storage is the on-disk log of one partition replica: Kafka v2
// record batches, stored byte for byte as the producer sent them except for
// the two header fields the broker owns (baseOffset and
// partitionLeaderEpoch, neither covered by the batch CRC), in segment files
// with sparse offset and time indexes, a leader epoch history, a log start
// offset, and crash recovery that never serves a torn batch.
//
// Usage:
//
//	l, err := storage.Open(storage.Options{Dir: "/var/lib/reeve/data/orders-0"})
//	if err != nil { ... }
//	defer l.Close()
//	if _, err := storage.CheckBatch(batch); err != nil { ... } // INVALID_RECORD / CORRUPT_MESSAGE
//	base, last, err := l.Append(batch, leaderEpoch)            // assigns offsets, no fsync
//	if err := l.WaitDurable(ctx, last); err != nil { ... }      // group-commit fsync (FsyncAlways)
//	data, err := l.Read(fetchOffset, maxBytes)                  // whole batches, caller's copy
//
// # Files
//
// A partition directory holds, for each segment, <base>.log (batches back to
// back), <base>.index (relative offset uint32, position uint32, one entry
// per IndexIntervalBytes of log) and <base>.timeindex (running maximum
// timestamp int64, relative offset uint32), where <base> is the segment's
// first offset in 20 digits; and three checkpoint files replaced atomically:
// leader-epoch-checkpoint (Kafka's format: version, count, "epoch offset"
// lines), log-start-offset and recovery-point. index.go explains what the
// index entries promise.
//
// # Durability
//
// Append writes with one write(2) and returns; WaitDurable waits for the
// fsync that the FsyncMode calls for. Under FsyncAlways a background
// goroutine fsyncs on demand and each fsync serves every waiter that arrived
// before it started. A rolled segment and its indexes are fsynced before the
// roll completes (in the background under FsyncNever), and only then does
// the recovery point move past it. After an fsync error the log refuses
// writes until it is reopened (and so recovered), and reads stop at the
// offset that was durable before the failure: the kernel may have dropped
// the pages it could not write, so what a read would find in the page cache
// may never reach the disk. Options.OnFail tells the log's owner, and an
// Error log names the device.
//
// # Full disk
//
// A full disk is not a failing one. An append whose write meets ENOSPC is
// taken back (the file truncated to the last whole batch, which needs no
// space) and returns an error wrapping ErrNoSpace; the log stays writable
// and the same append succeeds once space returns. A Space shared by the
// logs of a data directory (Options.Space) refuses appends before that,
// while the file system has less than its minimum free. Open needs no free
// space after a clean Close; after a crash, a recovery point it cannot
// rewrite for want of space is kept as it was (the next Open scans more).
// An fsync error is different, whatever its errno, and still fails the log
// until it is reopened.
//
// # Recovery
//
// Open trusts what the recovery point says is on stable storage: every
// segment below it and the first part of the segment it points into. Each
// trusted segment is still checked cheaply: its index entries must be in
// order and inside the file, and the batches from its last index entry to
// its end are read with CRCs, which also proves the entry right. Everything
// past the recovery point (after a crash, the segment that was active, or
// two if the crash hit a roll) is scanned batch by batch: each batch must
// parse, fit in the file, carry the expected base offset and pass its CRC.
// The file is truncated at the first one that does not (a Warn log with the
// directory, offset and bytes dropped) and its indexes are rebuilt. A
// zero-filled tail (preallocated or sparse) ends the log the same way, as
// does a zero-byte file. An index that is missing, shorter than its
// segment, out of order, or pointing at something other than the batch it
// names is rebuilt from the log. Whatever recovery read is fsynced before
// the recovery point moves past it, because a killed process leaves its
// writes in the page cache where recovery reads them as good. Batches of a
// trusted segment before its last index entry are not read again at Open:
// finding bit rot there would mean reading the whole log at every start.
// Consumers find it by the batch CRC, and AppendVerbatim checks every batch
// a follower copies.
//
// Open takes an advisory lock (flock) on a .lock file in the directory, so a
// second Log on the same directory, in this process or another, fails
// instead of corrupting the first.
//
// Damage in the middle of the log (a trusted segment that fails its check,
// a segment that does not start where the one before ends) is not accepted
// silently: as Kafka does, the log is truncated at the damage, every later
// segment is deleted, and an Error log names the files and the offset. A
// follower then fetches the lost range from its leader again; a partition
// with a single replica has lost it. Refusing to open would leave the
// partition offline until an operator deleted the same files by hand.
//
// # Concurrency
//
// Appends, truncation, retention and Close are serialized. Reads
// (Read, OffsetForTimestamp and the accessors) run concurrently with them
// and with each other: a writer publishes a batch only once its bytes are in
// the file, so a reader never sees part of one.
package storage
