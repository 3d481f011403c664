package config

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func FuzzLoadConfig(f *testing.F) {
	sample, err := os.ReadFile("../systemd/reeve.toml")
	if err != nil {
		f.Fatalf("ReadFile(../systemd/reeve.toml) error = %v", err)
	}
	for _, seed := range []string{
		string(sample),
		threeNodes,
		"",
		"\x00\xff\xfe[[=]]\"\"\"",
		"\xef\xbb\xbf[raft]\r\nrt = \"1s\"\r\n",
		strings.Repeat("[", 10000),
		"a = " + strings.Repeat("[", 500) + strings.Repeat("]", 500),
		"a = " + strings.Repeat("{b = ", 200) + "1" + strings.Repeat("}", 200),
		strings.Repeat("[[a.b]]\n", 100),
		"[node]\nid = -1\n[node.labels]\n\"\\u00e9\" = \"x\"\n",
		"[cluster]\ninitial_members = [\"1@[::1]:1\", \"2@[::1]:1\", \"x@\", 3]\njoin = true\n",
		"kafka = { listen = \"0.0.0.0:9092\", advertised_address = \":1\" }\n",
		"s = \"\"\"\n[raft]\nrt = 1\n\"\"\"\n[raft]\nrtt = \"1h\"\n",
		"[kafka]\ndefault_partitions = 2147483648\ndefault_replication_factor = -32769\nfsync = \"interval\"\nfsync_interval = \"1h0m0s\"\nretention = \"0s\"\nretention_bytes = -1\nsegment_age = \"9223372036s\"\n",
		"kafka = { max_request_bytes = 1073741824, auto_create_topics = false, retention = \"-7d\", segment_bytes = 1048576 }\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			checkErrors(t, data, err)
			return
		}
		// A configuration that parses writes out as one that parses the same.
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("Encode(Parse(%q)) error = %v", data, err)
		}
		again, err := Parse("fuzz.toml", buf.Bytes())
		if err != nil {
			t.Fatalf("Parse(Encode(Parse(%q))) error = %v\nencoded:\n%s", data, err, buf.Bytes())
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("Parse(Encode(Parse(%q))) = %+v, want %+v", data, again, c)
		}
	})
}

func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("Parse(%q) error = %#v, want non-empty Errors", data, err)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, e := range es {
		if e.Msg == "" || e.File != "fuzz.toml" {
			t.Errorf("Parse(%q) error %#v, want a message and file fuzz.toml", data, e)
		}
		if e.Line < 0 || e.Line > lines || e.Col < 0 || (e.Line == 0 && e.Col != 0) {
			t.Errorf("Parse(%q) error %#v, want a position within %d lines", data, e, lines)
		}
	}
}

func TestConfig_roundTrip(t *testing.T) {
	for _, src := range []string{
		"",
		threeNodes,
		"[cluster]\njoin = true\n[node]\nid = 9\n[raft]\naddress = \"h:1\"\n",
		"[kafka]\nauto_create_topics = false\ndefault_partitions = 100000\ndefault_replication_factor = 7\nfsync = \"interval\"\nfsync_interval = \"1ms\"\nretention = \"0s\"\nretention_bytes = 1048576\n",
	} {
		c, err := Parse("t.toml", []byte(src))
		if err != nil {
			t.Fatalf("Parse(%q) error = %v", src, err)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(c); err != nil {
			t.Fatalf("Encode(%+v) error = %v", c, err)
		}
		again, err := Parse("t.toml", buf.Bytes())
		if err != nil {
			t.Fatalf("Parse(Encode(Parse(%q))) error = %v\n%s", src, err, buf.Bytes())
		}
		if !reflect.DeepEqual(again, c) {
			t.Errorf("Parse(Encode(Parse(%q))) = %+v, want %+v", src, again, c)
		}
	}
}
