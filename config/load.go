package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads the file at path and parses it with Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a configuration from data: the defaults, then the file on top,
// then validation. name is the file name used in errors and as Source.
//
// A non-nil error is an Errors holding every problem found, each with the
// key it concerns and, where the key is written in the file, its position.
func Parse(name string, data []byte) (*Config, error) {
	// Decoding into a map first, not the Config, lets every unknown key and
	// wrong type be reported rather than the first.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, Errors{syntaxError(name, data, err)}
	}
	d := &decoder{
		file: name,
		loc:  locate(data),
		seen: map[string]bool{},
		bad:  map[string]bool{},
	}
	c := base()
	c.Source = name
	d.table(nil, raw, reflect.ValueOf(c).Elem())
	d.defaults(c)
	d.validate(c)
	if len(d.errs) > 0 {
		d.errs.sort()
		return nil, d.errs
	}
	return c, nil
}

func syntaxError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: name, Msg: err.Error()}
	}
	e := &Error{File: name, Line: pe.Position.Line, Col: pe.Position.Col, Msg: pe.Message}
	// The parser miscounts lines after a "\r" in a string, but its byte
	// offset, from which it also derives the column, holds.
	if line, col := offsetPosition(data, pe.Position.Start); line > 0 {
		e.Line, e.Col = line, col
	}
	return e
}

// offsetPosition returns the 1-based line and byte column of offset off in
// data, or 0, 0 when off is outside it.
func offsetPosition(data []byte, off int) (line, col int) {
	s := stripBOM(string(data))
	if off < 0 || off > len(s) {
		return 0, 0
	}
	start := strings.LastIndexByte(s[:off], '\n') + 1
	return strings.Count(s[:off], "\n") + 1, off - start + 1
}

// decoder copies a decoded TOML document into a Config, collecting every
// problem it meets.
type decoder struct {
	file string
	loc  *locator
	errs Errors
	seen map[string]bool // keys the file sets
	bad  map[string]bool // keys that already have an error
}

// errorf reports a problem with key, at the place the file writes it.
func (d *decoder) errorf(key, format string, args ...any) {
	d.errorAt(key, key, format, args...)
}

// errorAt reports a problem with key at the place the file writes at, e.g.
// one element of an array.
func (d *decoder) errorAt(key, at, format string, args ...any) {
	line, col := d.loc.find(at)
	if line == 0 && at != key {
		line, col = d.loc.find(key)
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Col: col, Key: key, Msg: fmt.Sprintf(format, args...)})
	d.bad[key] = true
}

// ok reports whether key is free of reported problems, so rules that read it
// can run without repeating or compounding an error.
func (d *decoder) ok(keys ...string) bool {
	for _, k := range keys {
		if d.bad[k] {
			return false
		}
	}
	return true
}

// fields returns the toml names of struct type t, in declaration order, and
// their field indexes.
func fields(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

// table copies TOML table m into struct v.
func (d *decoder) table(p path, m map[string]any, v reflect.Value) bool {
	names, index := fields(v.Type())
	ok := true
	for _, name := range sortedKeys(m) {
		q := p.key(name)
		i, known := index[name]
		if !known {
			d.unknown(q, name, names, len(p) == 0)
			ok = false
			continue
		}
		ok = d.value(q, m[name], v.Field(i)) && ok
	}
	return ok
}

func (d *decoder) unknown(p path, name string, names []string, top bool) {
	if s := suggest(name, names); s != "" {
		d.errorf(p.String(), "unknown key; did you mean %q?", s)
		return
	}
	if !top {
		d.errorf(p.String(), "unknown key; use one of %s", strings.Join(names, ", "))
		return
	}
	// A key written above every table header, e.g. id = 1 for node.id.
	t := reflect.TypeFor[Config]()
	for _, table := range names {
		_, index := fields(t.Field(mustIndex(t, table)).Type)
		if _, ok := index[name]; ok {
			d.errorf(p.String(), "unknown key; did you mean %q (under [%s])?", table+"."+name, table)
			return
		}
	}
	d.errorf(p.String(), "unknown key; use one of the tables %s", strings.Join(names, ", "))
}

// mustIndex returns the index of the field of struct t with toml name.
func mustIndex(t reflect.Type, name string) int {
	_, index := fields(t)
	i, ok := index[name]
	if !ok {
		panic("config: no field " + name + " in " + t.String())
	}
	return i
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value copies TOML value x into v, reporting whether it could.
func (d *decoder) value(p path, x any, v reflect.Value) bool {
	key := p.String()
	d.seen[key] = true
	t := v.Type()
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := x.(string)
		if !ok {
			return d.wrongType(key, t, x)
		}
		u := reflect.New(t)
		if err := u.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.errorf(key, "%v", err)
			return false
		}
		v.Set(u.Elem())
		return true
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional value: nil when the key is absent
		e := reflect.New(t.Elem())
		if !d.value(p, x, e.Elem()) {
			return false
		}
		v.Set(e)
	case reflect.Struct:
		m, ok := x.(map[string]any)
		if !ok {
			return d.wrongType(key, t, x)
		}
		return d.table(p, m, v)
	case reflect.Map:
		m, ok := x.(map[string]any)
		if !ok {
			return d.wrongType(key, t, x)
		}
		// An entry in error is left out; the others are still validated.
		out := reflect.MakeMapWithSize(t, len(m))
		all := true
		for _, name := range sortedKeys(m) {
			e := reflect.New(t.Elem()).Elem()
			if d.value(p.key(name), m[name], e) {
				out.SetMapIndex(reflect.ValueOf(name), e)
			} else {
				all = false
			}
		}
		v.Set(out)
		return all
	case reflect.Slice:
		a, ok := x.([]any)
		if tables, isTables := x.([]map[string]any); isTables { // [[array.of.tables]]
			a, ok = make([]any, len(tables)), true
			for i, m := range tables {
				a[i] = m
			}
		}
		if !ok {
			return d.wrongType(key, t, x)
		}
		// An element in error stays as a zero value, so that the others
		// keep their index; validation skips it by its key.
		out := reflect.MakeSlice(t, len(a), len(a))
		all := true
		for i, y := range a {
			all = d.value(p.index(i), y, out.Index(i)) && all
		}
		v.Set(out)
		return all
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return d.wrongType(key, t, x)
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return d.wrongType(key, t, x)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := x.(int64)
		if !ok {
			return d.wrongType(key, t, x)
		}
		if v.OverflowInt(n) {
			lo, hi := intRange(key, t)
			d.errorf(key, "%d is out of range; use %d to %d", n, lo, hi)
			return false
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := x.(int64)
		if !ok {
			return d.wrongType(key, t, x)
		}
		if n < 0 || v.OverflowUint(uint64(n)) {
			d.errorf(key, "want a non-negative integer, got %d", n)
			return false
		}
		v.SetUint(uint64(n))
	default:
		panic("config: no decoding for field type " + t.String())
	}
	return true
}

// intRange returns the values key may take: its range in intRanges, or else
// all that signed integer type t holds.
func intRange(key string, t reflect.Type) (lo, hi int64) {
	if r, ok := intRanges[key]; ok {
		return r.min, r.max
	}
	bits := t.Bits()
	return -1 << (bits - 1), 1<<(bits-1) - 1
}

// wrongType reports that x is not a TOML value for Go type t.
func (d *decoder) wrongType(key string, t reflect.Type, x any) bool {
	want := tomlWant(t)
	msg := fmt.Sprintf("want %s, got %s", want, tomlType(x))
	// A quoted number or boolean is the commonest slip; say how to fix it.
	if s, ok := x.(string); ok {
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				msg += "; write " + s + " without quotes"
			}
		case reflect.Bool:
			if s == "true" || s == "false" {
				msg += "; write " + s + " without quotes"
			}
		}
	}
	if t == reflect.TypeFor[Duration]() {
		if n, ok := x.(int64); ok {
			msg += fmt.Sprintf("; write it with a unit, e.g. \"%dms\"", n)
		}
	}
	d.errorf(key, "%s", msg)
	return false
}

func tomlWant(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return `a duration such as "50ms"`
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a table"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(tomlWant(t.Elem()), "a "), "an ") + "s"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	default:
		return "an integer"
	}
}

// tomlType names the TOML type of a value decoded by BurntSushi/toml.
func tomlType(x any) string {
	switch x.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "date-time"
	case []any:
		return "array"
	case []map[string]any:
		return "array of tables"
	case map[string]any:
		return "table"
	default:
		return fmt.Sprintf("%T", x)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
