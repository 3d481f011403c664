package config

import (
	"sort"
	"strconv"
	"strings"
)

// path is a key as a list of segments, each a key name quoted as TOML needs
// it, followed by "[n]" for an element of an array or array of tables. Its
// String form, e.g. `node.labels."rack.row"` or `servers[1].name`, is the
// key the locator records and the Key an Error reports.
type path []string

func (p path) String() string { return strings.Join(p, ".") }

// key returns p extended by the key name.
func (p path) key(name string) path {
	return append(p[:len(p):len(p)], quoteKey(name))
}

// index returns p with its last segment narrowed to element i.
func (p path) index(i int) path {
	if len(p) == 0 {
		return p
	}
	q := append(path(nil), p...)
	q[len(q)-1] += "[" + strconv.Itoa(i) + "]"
	return q
}

// quoteKey writes name as a bare key when it can be one.
func quoteKey(name string) string {
	if name == "" {
		return `""`
	}
	for i := 0; i < len(name); i++ {
		if !isBare(name[i]) {
			return strconv.Quote(name)
		}
	}
	return name
}

func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// locator maps keys to where a TOML source first mentions them. It exists
// because BurntSushi/toml keeps key positions to itself.
//
// # Notes
//
// It only runs on source the TOML parser has accepted, so it is lenient: on
// anything it does not follow it skips to the next line rather than fail, and
// the worst outcome is a key reported without a position.
type locator struct {
	src    string
	i      int
	depth  int
	lines  []int          // byte offset at which each line starts
	pos    map[string]int // key -> byte offset of its first mention
	arrays map[string]int // array of tables -> number of elements so far
}

// maxDepth bounds nesting of arrays and inline tables, so that hostile
// input cannot exhaust the stack.
const maxDepth = 1000

// locate scans src and records where each key, table, array element and
// array of tables element is first mentioned.
func locate(src []byte) *locator {
	s := stripBOM(string(src))
	l := &locator{src: s, lines: []int{0}, pos: map[string]int{}, arrays: map[string]int{}}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			l.lines = append(l.lines, i+1)
		}
	}
	l.document()
	return l
}

// find returns the 1-based line and byte column of key, or 0, 0 when the
// source does not mention it.
func (l *locator) find(key string) (line, col int) {
	off, ok := l.pos[key]
	if !ok {
		return 0, 0
	}
	line = sort.Search(len(l.lines), func(i int) bool { return l.lines[i] > off })
	return line, off - l.lines[line-1] + 1
}

// stripBOM drops a byte order mark, as the TOML parser does before it counts
// lines and columns, so that positions agree.
func stripBOM(s string) string {
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if strings.HasPrefix(s, bom) {
			return s[len(bom):]
		}
	}
	return s
}

func (l *locator) mark(p path, off int) {
	k := p.String()
	if _, ok := l.pos[k]; !ok {
		l.pos[k] = off
	}
}

func (l *locator) eof() bool { return l.i >= len(l.src) }

func (l *locator) document() {
	var table path
	for !l.eof() {
		l.skipSpace()
		if l.eof() {
			return
		}
		switch l.src[l.i] {
		case '\n':
			l.i++
			continue
		case '#':
		case '[':
			table = l.header()
		default:
			l.keyval(table)
		}
		// Whatever is left on the line is a comment, or a closing
		// bracket of a header.
		if j := strings.IndexByte(l.src[l.i:], '\n'); j >= 0 {
			l.i += j + 1
		} else {
			l.i = len(l.src)
		}
	}
}

// header reads a [table] or [[array of tables]] header and returns the
// path of the table it opens.
func (l *locator) header() path {
	l.i++
	array := !l.eof() && l.src[l.i] == '['
	if array {
		l.i++
	}
	l.skipSpace()
	start := l.i
	names, ok := l.key()
	if !ok {
		return nil
	}
	var p path
	for n, name := range names {
		p = p.key(name)
		k := p.String()
		if array && n == len(names)-1 {
			l.arrays[k]++
			l.mark(p, start)
			p = p.index(l.arrays[k] - 1)
		} else if c := l.arrays[k]; c > 0 {
			// A sub-table of an array of tables belongs to its latest element.
			p = p.index(c - 1)
		}
		l.mark(p, start)
	}
	return p
}

// keyval reads key = value in table.
func (l *locator) keyval(table path) {
	start := l.i
	names, ok := l.key()
	if !ok {
		return
	}
	p := table
	for _, name := range names {
		p = p.key(name)
		l.mark(p, start)
	}
	l.skipSpace()
	if l.eof() || l.src[l.i] != '=' {
		return
	}
	l.i++
	l.skipSpace()
	l.value(p)
}

// key reads a dotted key and returns its names.
func (l *locator) key() ([]string, bool) {
	var names []string
	for {
		l.skipSpace()
		name, ok := l.keyName()
		if !ok {
			return nil, false
		}
		names = append(names, name)
		l.skipSpace()
		if l.eof() || l.src[l.i] != '.' {
			return names, true
		}
		l.i++
	}
}

func (l *locator) keyName() (string, bool) {
	if l.eof() {
		return "", false
	}
	start := l.i
	switch l.src[l.i] {
	case '"':
		if !l.basicString() {
			return "", false
		}
		return unescape(l.src[start+1 : l.i-1]), true
	case '\'':
		if !l.literalString() {
			return "", false
		}
		return l.src[start+1 : l.i-1], true
	}
	for !l.eof() && isBare(l.src[l.i]) {
		l.i++
	}
	return l.src[start:l.i], l.i > start
}

// value skips over the value at l.i, recording the elements of arrays and
// the keys of inline tables under p.
func (l *locator) value(p path) {
	if l.eof() {
		return
	}
	l.depth++
	defer func() { l.depth-- }()
	if l.depth > maxDepth {
		l.i = len(l.src)
		return
	}
	switch rest := l.src[l.i:]; {
	case strings.HasPrefix(rest, `"""`):
		l.multiline(`"""`, true)
	case strings.HasPrefix(rest, `'''`):
		l.multiline(`'''`, false)
	case rest[0] == '"':
		l.basicString()
	case rest[0] == '\'':
		l.literalString()
	case rest[0] == '[':
		l.array(p)
	case rest[0] == '{':
		l.inlineTable(p)
	default:
		// Numbers, booleans and date-times, which may hold a space.
		for !l.eof() && !strings.ContainsRune(",]}\n#", rune(l.src[l.i])) {
			l.i++
		}
	}
}

func (l *locator) array(p path) {
	l.i++
	for n := 0; ; {
		l.skipBlank()
		if l.eof() {
			return
		}
		switch l.src[l.i] {
		case ']':
			l.i++
			return
		case ',':
			l.i++
			continue
		}
		q := p.index(n)
		l.mark(q, l.i)
		before := l.i
		l.value(q)
		if l.i == before {
			l.i++
		}
		n++
	}
}

func (l *locator) inlineTable(p path) {
	l.i++
	for {
		l.skipBlank()
		if l.eof() {
			return
		}
		switch l.src[l.i] {
		case '}':
			l.i++
			return
		case ',':
			l.i++
			continue
		}
		before := l.i
		l.keyval(p)
		if l.i == before {
			l.i++
		}
	}
}

// basicString skips "..." and reports whether it was closed on its line.
func (l *locator) basicString() bool {
	for j := l.i + 1; j < len(l.src); j++ {
		switch l.src[j] {
		case '\\':
			j++
		case '"':
			l.i = j + 1
			return true
		case '\n':
			l.i = j
			return false
		}
	}
	l.i = len(l.src)
	return false
}

// literalString skips '...' and reports whether it was closed on its line.
func (l *locator) literalString() bool {
	for j := l.i + 1; j < len(l.src); j++ {
		switch l.src[j] {
		case '\'':
			l.i = j + 1
			return true
		case '\n':
			l.i = j
			return false
		}
	}
	l.i = len(l.src)
	return false
}

// multiline skips a string opened by delim, which may end with up to two
// quotes of its own before the closing delimiter.
func (l *locator) multiline(delim string, escapes bool) {
	for j := l.i + len(delim); j < len(l.src); j++ {
		if escapes && l.src[j] == '\\' {
			j++
			continue
		}
		if strings.HasPrefix(l.src[j:], delim) {
			k := j + len(delim)
			for n := 0; n < 2 && k < len(l.src) && l.src[k] == delim[0]; n++ {
				k++
			}
			l.i = k
			return
		}
	}
	l.i = len(l.src)
}

// skipSpace skips blanks within a line.
func (l *locator) skipSpace() {
	for !l.eof() && (l.src[l.i] == ' ' || l.src[l.i] == '\t' || l.src[l.i] == '\r') {
		l.i++
	}
}

// skipBlank skips blanks, newlines and comments, as arrays and TOML 1.1
// inline tables allow between their elements.
func (l *locator) skipBlank() {
	for !l.eof() {
		switch l.src[l.i] {
		case ' ', '\t', '\r', '\n':
			l.i++
		case '#':
			for !l.eof() && l.src[l.i] != '\n' {
				l.i++
			}
		default:
			return
		}
	}
}

// unescape decodes the escapes of a TOML basic string.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		hex := 0
		switch c := s[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x':
			hex = 2
		case 'u':
			hex = 4
		case 'U':
			hex = 8
		default: // '"', '\\'
			b.WriteByte(c)
		}
		if hex == 0 {
			continue
		}
		if i+hex >= len(s) {
			break
		}
		r, err := strconv.ParseUint(s[i+1:i+1+hex], 16, 32)
		if err != nil {
			continue
		}
		b.WriteRune(rune(r))
		i += hex
	}
	return b.String()
}
