// Package datadriven reads and rewrites the data-driven test files of
// raft and policy (in the style of etcd-io/raft's testdata): each case is
// a directive line, its input lines, a "----" line and the expected output
// up to a blank line; comment and blank lines between cases are kept.
//
//	cases, trailer := datadriven.Parse(t, path)
//	for i, c := range cases {
//		got[i] = run(c)
//		datadriven.Check(t, path, c, got[i])
//	}
//	datadriven.RewriteIfAsked(t, path, cases, got, trailer)
//
// Run a test with -rewrite to write what the code produces as the
// expected output.
package datadriven

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of data-driven testdata files with what the code produces")

// Case is one case of a data-driven file.
type Case struct {
	Line  int      // of the directive
	Pre   []string // comments and blank lines before it, kept by a rewrite
	Cmd   string   // the directive
	Input []string
	Want  []string
}

// Parse reads path's cases, and the comment lines after the last one.
func Parse(t testing.TB, path string) (cases []Case, trailer []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var (
		c     *Case
		state = "between" // or "input", "output"
		pre   []string
		n     int
	)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch state {
		case "between":
			if line == "" || strings.HasPrefix(line, "#") {
				pre = append(pre, line)
				continue
			}
			c = &Case{Line: n, Pre: pre, Cmd: line}
			pre, state = nil, "input"
		case "input":
			if line == "----" {
				state = "output"
				continue
			}
			c.Input = append(c.Input, line)
		case "output":
			if line == "" {
				cases, state = append(cases, *c), "between"
				continue
			}
			c.Want = append(c.Want, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	switch state {
	case "input":
		t.Fatalf("%s:%d: %q has no ----", path, c.Line, c.Cmd)
	case "output":
		cases = append(cases, *c)
	}
	return cases, pre
}

// Check reports a case whose output is not the expected one, unless the
// test runs with -rewrite.
func Check(t testing.TB, path string, c Case, got []string) {
	t.Helper()
	if !*rewrite && !slices.Equal(got, c.Want) {
		t.Errorf("%s:%d: %s =\n%s\nwant\n%s", path, c.Line, c.Cmd, strings.Join(got, "\n"), strings.Join(c.Want, "\n"))
	}
}

// RewriteIfAsked writes the file again with got as each case's expected
// output, when the test runs with -rewrite.
func RewriteIfAsked(t testing.TB, path string, cases []Case, got [][]string, trailer []string) {
	t.Helper()
	if !*rewrite {
		return
	}
	var out bytes.Buffer
	for i, c := range cases {
		for _, l := range c.Pre {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out, c.Cmd)
		for _, l := range c.Input {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out, "----")
		for _, l := range got[i] {
			fmt.Fprintln(&out, l)
		}
		fmt.Fprintln(&out)
	}
	for _, l := range trailer {
		fmt.Fprintln(&out, l)
	}
	if err := os.WriteFile(path, append(bytes.TrimRight(out.Bytes(), "\n"), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
