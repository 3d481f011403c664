//go:build !wasip1

package sdk

import (
	"errors"
	"reflect"
	"testing"
)

func TestLog(t *testing.T) {
	type line struct {
		level Level
		msg   string
	}
	var got []line
	defer func(f func(Level, string)) { nativeLog = f }(nativeLog)
	nativeLog = func(l Level, msg string) { got = append(got, line{l, msg}) }
	Debugf("a %d", 1)
	Infof("b %s", "x")
	Warnf("c")
	Errorf("d %v", errors.New("e"))
	Log(LevelInfo, "plain")
	want := []line{{LevelDebug, "a 1"}, {LevelInfo, "b x"}, {LevelWarn, "c"}, {LevelError, "d e"}, {LevelInfo, "plain"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logged %v, want %v", got, want)
	}
}
