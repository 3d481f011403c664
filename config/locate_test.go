package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLocate(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		key      string
		line     int
		col      int
		notFound bool
	}{
		{name: "top-level key", src: "a = 1\nb = 2\n", key: "b", line: 2, col: 1},
		{name: "key in table", src: "[t]\n  k = 1\n", key: "t.k", line: 2, col: 3},
		{name: "table header", src: "x = 1\n[ t ]\n", key: "t", line: 2, col: 3},
		{name: "dotted header", src: "[a . b]\nc = 1\n", key: "a.b.c", line: 2, col: 1},
		{name: "dotted key", src: "[t]\nx.y.z = 1\n", key: "t.x.y.z", line: 2, col: 1},
		{name: "dotted key prefix", src: "[t]\nx.y = 1\n", key: "t.x", line: 2, col: 1},
		{name: "quoted key", src: "[t]\n\"rack.row\" = 1\n", key: `t."rack.row"`, line: 2, col: 1},
		{name: "literal key", src: "[t]\n'a b' = 1\n", key: `t."a b"`, line: 2, col: 1},
		{name: "escaped key", src: "\"a\\\"b\" = 1\n", key: `"a\"b"`, line: 1, col: 1},
		{name: "quoted bare key", src: "\"plain\" = 1\n", key: "plain", line: 1, col: 1},
		{name: "array of tables", src: "[[s]]\nn = 1\n[[s]]\n  n = 2\n", key: "s[1].n", line: 4, col: 3},
		{name: "array of tables first element", src: "[[s]]\nn = 1\n[[s]]\n", key: "s[0]", line: 1, col: 3},
		{name: "array of tables itself", src: "x = 1\n[[s]]\n[[s]]\n", key: "s", line: 2, col: 3},
		{name: "sub-table of element", src: "[[s]]\n[s.t]\nk = 1\n[[s]]\n[s.t]\nk = 2\n", key: "s[1].t.k", line: 6, col: 1},
		{name: "nested array of tables", src: "[[s]]\n[[s.u]]\n[[s]]\n[[s.u]]\n[[s.u]]\nk = 1\n", key: "s[1].u[1].k", line: 6, col: 1},
		{name: "inline table", src: "p = { q = 1, r = { s = 2 } }\n", key: "p.r.s", line: 1, col: 20},
		{name: "inline table in table", src: "[kafka]\nx = {listen=\"a\", b.c=1}\n", key: "kafka.x.b.c", line: 2, col: 18},
		{name: "array element", src: "a = [\n  1, # c ]\n  \"x\",\n]\n", key: "a[1]", line: 3, col: 3},
		{name: "nested array element", src: "a = [[1, 2], [3, 4]]\n", key: "a[1][0]", line: 1, col: 15},
		{name: "inline tables in array", src: "a = [ {b = 1}, {b = 2} ]\n", key: "a[1].b", line: 1, col: 17},
		{name: "key after multi-line string", src: "s = \"\"\"\n[fake]\nk = 1\n\"\"\"\nreal = 2\n", key: "real", line: 5, col: 1},
		{name: "no key inside multi-line string", src: "s = \"\"\"\n[fake]\nk = 1\n\"\"\"\n", key: "fake.k", notFound: true},
		{name: "multi-line string ending in quotes", src: "s = \"\"\"a\"\"\"\"\"\nk = 1\n", key: "k", line: 2, col: 1},
		{name: "multi-line literal string", src: "s = '''\n[fake]\n'''\nk = 1\n", key: "k", line: 4, col: 1},
		{name: "escaped quote in string", src: "s = \"a\\\" # [x]\"\nk = 1\n", key: "k", line: 2, col: 1},
		{name: "comment with brackets", src: "# [t]\n[u] # [[v]]\nk = 1\n", key: "u.k", line: 3, col: 1},
		{name: "no key in comment", src: "# [t]\nk = 1\n", key: "t", notFound: true},
		{name: "date-time with a space", src: "d = 1979-05-27 07:32:00Z\nk = 1\n", key: "k", line: 2, col: 1},
		{name: "byte order mark", src: "\ufeffa = 1\nb = 2\n", key: "a", line: 1, col: 1},
		{name: "CRLF", src: "[t]\r\n\r\n  k = 1\r\n", key: "t.k", line: 3, col: 3},
		{name: "multi-line inline table", src: "t = {\n  a = 1, # c\n  b = 2,\n}\n", key: "t.b", line: 3, col: 3},
		{name: "first mention wins", src: "[t.u]\nk = 1\n[t]\nj = 2\n", key: "t", line: 1, col: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The locator is only run on source the parser accepts.
			var m map[string]any
			if _, err := toml.Decode(tt.src, &m); err != nil {
				t.Fatalf("toml.Decode(%q) = %v, want valid TOML", tt.src, err)
			}
			line, col := locate([]byte(tt.src)).find(tt.key)
			if tt.notFound {
				tt.line, tt.col = 0, 0
			}
			if line != tt.line || col != tt.col {
				t.Errorf("locate(%q).find(%q) = %d:%d, want %d:%d", tt.src, tt.key, line, col, tt.line, tt.col)
			}
		})
	}
}

func TestLocate_unicodeEscapeKey(t *testing.T) {
	src := "\"caf\\u00e9\" = 1\n"
	key := path(nil).key("café").String()
	if line, col := locate([]byte(src)).find(key); line != 1 || col != 1 {
		t.Errorf("locate(%q).find(%q) = %d:%d, want 1:1", src, key, line, col)
	}
}

func TestPath(t *testing.T) {
	tests := []struct {
		name string
		p    path
		want string
	}{
		{name: "bare", p: path(nil).key("raft").key("rtt"), want: "raft.rtt"},
		{name: "quoted", p: path{"node", "labels"}.key("rack.row"), want: `node.labels."rack.row"`},
		{name: "empty", p: path(nil).key(""), want: `""`},
		{name: "index", p: path{"cluster", "initial_members"}.index(2), want: "cluster.initial_members[2]"},
		{name: "index of index", p: path{"a"}.index(1).index(0), want: "a[1][0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("path.String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzLocate checks the locator against the TOML parser: every key the
// parser reports, outside arrays, has a position.
func FuzzLocate(f *testing.F) {
	for _, seed := range []string{
		"a = 1\n[t]\nk.j = \"x\" # c\n",
		"[[s]]\nn = 1\n[s.t]\nk = 1\n",
		"p = { q = 1, r = { s = 2 } }\n",
		"s = \"\"\"\n[fake]\n\"\"\"\n'q \"k\"' = 2\n\"\\u00e9\\\\\" = 3\n",
		"t = {\n  a = 1, # c\n  b.c = [1, {d = 2}],\n}\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		var m map[string]any
		md, err := toml.Decode(src, &m)
		if err != nil {
			return
		}
		l := locate([]byte(src))
	keys:
		for _, k := range md.Keys() {
			var p path
			for i, name := range k {
				if typ := md.Type(k[:i]...); i > 0 && (typ == "ArrayHash" || typ == "Array") {
					continue keys // the parser does not say which element
				}
				p = p.key(name)
			}
			if line, _ := l.find(p.String()); line == 0 {
				t.Errorf("locate(%q).find(%q) = 0:0, want a position", src, p)
			}
		}
	})
}
