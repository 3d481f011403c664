package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration file.
type Error struct {
	File      string // as given to Parse/Load
	Line, Col int    // 1-based; 0 when unknown (e.g. a missing key)
	Key       string // dotted key, e.g. "raft.rtt"
	Msg       string
}

// Error renders the problem as "file:line:col: key: msg", leaving out the
// parts that are unknown, e.g.
//
//	reeve.toml:12:3: raft.rtt: bad duration "10x": write a number with a unit, e.g. "10s"
//	reeve.toml: node.id: required in cluster mode; set it to this node's id (1 or higher)
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration at once, in file order
// with the problems that have no position last.
type Errors []*Error

// Error joins the problems with "\n".
func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, so errors.As finds an *Error.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// sort orders the problems by position; problems without one go last.
// Problems at the same place keep the order they were found in.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}

// suggest returns the candidate closest to word, or "" when none is close
// enough to be a likely misspelling.
func suggest(word string, candidates []string) string {
	best, bestDist := "", -1
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 && bestDist <= maxTypos(len(word)) {
		return best
	}
	// A shortened or lengthened name: "warning" for "warn", "election" for
	// "election_rtt".
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if min(len(lw), len(lc)) >= 3 && (strings.HasPrefix(lw, lc) || strings.HasPrefix(lc, lw)) {
			return c
		}
	}
	return ""
}

// maxTypos is how many edits still read as a misspelling of a word of n
// bytes rather than a different word.
func maxTypos(n int) int {
	switch {
	case n <= 5:
		return 1
	case n <= 10:
		return 2
	default:
		return 3
	}
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
