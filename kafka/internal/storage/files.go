package storage

// FilesPerLog is the files an open Log keeps open whatever its size: its
// lock file and the active segment's .log, .index and .timeindex. Each older
// segment keeps its .log open as well, and a segment just rolled keeps its
// two indexes until their background fsync; checkpoint files are open only
// while they are replaced. Callers that budget file descriptors per
// partition (kafka.max_partitions) start from this.
const FilesPerLog = 4
