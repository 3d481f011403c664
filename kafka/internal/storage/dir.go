package storage

// Dir returns the log's directory. Its owner may keep files of its own
// there (kafka keeps producer-state snapshots, <offset>.snapshot): Open
// leaves alone every name that is not a segment file (.log, .index,
// .timeindex), a checkpoint or a temporary file (fsutil.TmpSuffix), which
// it removes as an interrupted write.
func (l *Log) Dir() string { return l.dir }
