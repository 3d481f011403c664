// Package history checks what a fault test's clients saw against what a
// Kafka-compatible broker promises: an acknowledged record is read back
// exactly once at one offset, offsets are dense and never reused, a
// partition has one leader per leader epoch, a consumer group's committed
// offsets never go backwards, and every committed leader change is
// published as exactly one event. It also measures, per fault, the longest
// time producers went without an acknowledgement.
//
// A test records operations as it runs them (History) and calls Check
// after the last read; the Report lists every anomaly with enough detail
// to find it in the logs. The package uses the standard library only, so
// any test tier can use it.
package history

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Outcome is how a client operation ended.
type Outcome int

const (
	// OK: the broker acknowledged it.
	OK Outcome = iota
	// Failed: the broker refused it; a refused write must never be read
	// twice, but may be read once (a retry the client gave up on may still
	// have reached the log).
	Failed
	// Unknown: the client gave up without an answer (a timeout): the write
	// may or may not be in the log.
	Unknown
)

// Produce is one record a producer sent. Value identifies the record
// across the whole history and must be unique.
type Produce struct {
	Value     string
	Partition int32
	Invoked   time.Time
	Completed time.Time
	Outcome   Outcome
	// Offset is the offset the acknowledgement gave (OK only; -1 when the
	// client does not say).
	Offset int64
}

// Read is one record a consumer read.
type Read struct {
	Partition int32
	Offset    int64
	Value     string
}

// Commit is one consumer group offset commit the broker acknowledged, in
// the order the acknowledgements were observed.
type Commit struct {
	Group     string
	Partition int32
	Offset    int64
	At        time.Time
}

// Leadership is one leader a partition had at a leader epoch, as some
// source reports it: an election a controller committed, a leader_changed
// event, or a metadata answer. Source names it, for the report.
type Leadership struct {
	Partition int32
	Epoch     int32
	Leader    uint64
	Source    string
}

// Event is one leader_changed event a subscriber received.
type Event struct {
	ID        string
	Partition int32
	Epoch     int32
}

// Fault is one fault the schedule applied, from its start to its end (the
// node restarted, resumed or reconnected).
type Fault struct {
	Kind       string
	Start, End time.Time
}

// History is what one test run saw.
type History struct {
	Produces    []Produce
	Reads       []Read
	Commits     []Commit
	Leaderships []Leadership
	// Elections are the leader changes controllers committed; each must
	// have exactly one Event.
	Elections []Leadership
	Events    []Event
	Faults    []Fault
}

// Report is Check's account of a history.
type Report struct {
	Acked, Failed, Unknown int // produces by outcome
	Lost                   int // acknowledged records never read
	Duplicates             int // records read at more than one offset
	Gaps                   int // offsets never read between the first and last read of a partition
	// Anomalies describes every violation found, one line each.
	Anomalies []string
	// LongestStall is, per fault kind, the longest time between two
	// acknowledgements that overlaps a fault of that kind.
	LongestStall map[string]time.Duration
}

// OK reports whether the history kept every promise.
func (r Report) OK() bool { return len(r.Anomalies) == 0 }

// String summarizes the report in a few lines, for a test log or a
// closing note.
func (r Report) String() string {
	s := fmt.Sprintf("produces: %d acknowledged, %d failed, %d unknown; lost %d, duplicates %d, offset gaps %d, anomalies %d",
		r.Acked, r.Failed, r.Unknown, r.Lost, r.Duplicates, r.Gaps, len(r.Anomalies))
	for _, k := range slices.Sorted(maps.Keys(r.LongestStall)) {
		s += fmt.Sprintf("\nlongest stall during %s: %v", k, r.LongestStall[k].Round(time.Millisecond))
	}
	for _, a := range r.Anomalies {
		s += "\n  " + a
	}
	return s
}

// maxAnomalies bounds the lines of one kind a report lists; the counts
// stay exact.
const maxAnomalies = 20

// Check checks a history.
func Check(h History) Report {
	r := Report{LongestStall: map[string]time.Duration{}}
	listed := map[string]int{}
	note := func(kind, format string, args ...any) {
		if listed[kind]++; listed[kind] <= maxAnomalies {
			r.Anomalies = append(r.Anomalies, kind+": "+fmt.Sprintf(format, args...))
		}
	}
	checkRecords(h, &r, note)
	checkOffsets(h, &r, note)
	checkLeaders(h, note)
	checkCommits(h, note)
	checkEvents(h, note)
	r.LongestStall = stalls(h)
	return r
}

type place struct {
	partition int32
	offset    int64
}

// checkRecords: every acknowledged record is read, at one offset, the one
// its acknowledgement gave; no record is read at two offsets.
func checkRecords(h History, r *Report, note func(kind, format string, args ...any)) {
	at := map[string][]place{}
	for _, rd := range h.Reads {
		p := place{rd.Partition, rd.Offset}
		if !slices.Contains(at[rd.Value], p) {
			at[rd.Value] = append(at[rd.Value], p)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(at)) {
		if ps := at[v]; len(ps) > 1 {
			r.Duplicates++
			note("duplicate", "record %q read at %v", v, ps)
		}
	}
	for _, p := range h.Produces {
		switch p.Outcome {
		case OK:
			r.Acked++
			ps := at[p.Value]
			switch {
			case len(ps) == 0:
				r.Lost++
				note("lost", "record %q acknowledged at offset %d of partition %d (%s) was never read",
					p.Value, p.Offset, p.Partition, p.Completed.Format(time.RFC3339Nano))
			case p.Offset >= 0 && !slices.Contains(ps, place{p.Partition, p.Offset}):
				note("moved", "record %q acknowledged at %d-%d was read at %v", p.Value, p.Partition, p.Offset, ps)
			}
		case Failed:
			r.Failed++
		default:
			r.Unknown++
		}
	}
}

// checkOffsets: per partition, one value per offset, and no offset skipped
// between the first and the last one read.
func checkOffsets(h History, r *Report, note func(kind, format string, args ...any)) {
	values := map[place]string{}
	offsets := map[int32][]int64{}
	for _, rd := range h.Reads {
		p := place{rd.Partition, rd.Offset}
		old, seen := values[p]
		switch {
		case !seen:
			values[p] = rd.Value
			offsets[rd.Partition] = append(offsets[rd.Partition], rd.Offset)
		case old != rd.Value:
			note("divergent", "partition %d offset %d read as %q and as %q", rd.Partition, rd.Offset, old, rd.Value)
		}
	}
	for _, part := range slices.Sorted(maps.Keys(offsets)) {
		offs := offsets[part]
		slices.Sort(offs)
		for i := 1; i < len(offs); i++ {
			if missing := offs[i] - offs[i-1] - 1; missing > 0 {
				r.Gaps += int(missing)
				note("gap", "partition %d: offsets %d to %d were never read", part, offs[i-1]+1, offs[i]-1)
			}
		}
	}
}

// checkLeaders: one leader per partition and leader epoch, whatever
// reports it.
func checkLeaders(h History, note func(kind, format string, args ...any)) {
	type key struct {
		partition int32
		epoch     int32
	}
	first := map[key]Leadership{}
	for _, l := range slices.Concat(h.Elections, h.Leaderships) {
		k := key{l.Partition, l.Epoch}
		f, seen := first[k]
		if !seen {
			first[k] = l
			continue
		}
		if f.Leader != l.Leader {
			note("two leaders", "partition %d leader epoch %d: node %d (%s) and node %d (%s)",
				l.Partition, l.Epoch, f.Leader, f.Source, l.Leader, l.Source)
		}
	}
}

// checkCommits: a group's committed offset for a partition never goes
// backwards.
func checkCommits(h History, note func(kind, format string, args ...any)) {
	type key struct {
		group     string
		partition int32
	}
	commits := slices.Clone(h.Commits)
	slices.SortStableFunc(commits, func(a, b Commit) int { return a.At.Compare(b.At) })
	last := map[key]Commit{}
	for _, c := range commits {
		k := key{c.Group, c.Partition}
		if prev, ok := last[k]; ok && c.Offset < prev.Offset {
			note("commit backwards", "group %q partition %d: committed %d at %s after %d at %s",
				c.Group, c.Partition, c.Offset, c.At.Format(time.RFC3339Nano), prev.Offset, prev.At.Format(time.RFC3339Nano))
		}
		last[k] = c
	}
}

// checkEvents: each committed election is published as exactly one event
// (by id: a redelivery of one id is one event).
func checkEvents(h History, note func(kind, format string, args ...any)) {
	type key struct {
		partition int32
		epoch     int32
	}
	ids := map[key]map[string]bool{}
	for _, e := range h.Events {
		k := key{e.Partition, e.Epoch}
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][e.ID] = true
	}
	for _, el := range h.Elections {
		switch n := len(ids[key{el.Partition, el.Epoch}]); {
		case n == 0:
			note("event missing", "no leader_changed event for partition %d leader epoch %d (node %d)", el.Partition, el.Epoch, el.Leader)
		case n > 1:
			note("event duplicated", "%d leader_changed event ids for partition %d leader epoch %d", n, el.Partition, el.Epoch)
		}
	}
}

// stalls returns, per fault kind, the longest gap between consecutive
// acknowledgements (or from a fault's start to the first after it) that
// overlaps a fault of that kind. A fault after which nothing was
// acknowledged at all counts until the last operation completed.
func stalls(h History) map[string]time.Duration {
	var acks []time.Time
	var last time.Time
	for _, p := range h.Produces {
		if p.Outcome == OK {
			acks = append(acks, p.Completed)
		}
		if p.Completed.After(last) {
			last = p.Completed
		}
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	out := map[string]time.Duration{}
	for _, f := range h.Faults {
		var worst time.Duration
		prev, acked := f.Start, false
		for _, a := range acks {
			if !a.After(f.Start) {
				continue
			}
			acked = true
			worst = max(worst, a.Sub(prev))
			prev = a
			if a.After(f.End) {
				break
			}
		}
		if !acked {
			end := f.End
			if last.After(end) {
				end = last
			}
			worst = end.Sub(f.Start)
		}
		out[f.Kind] = max(out[f.Kind], worst)
	}
	return out
}
