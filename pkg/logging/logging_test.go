package logging

import (
	"bytes"
	"encoding/json"
	"io"
	stdlog "log"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// TestTags: every library's lines reach the one stream, tagged with the
// component they came from, at the chosen verbosity.
func TestTags(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, 1, false)
	l.InstallGlobal()
	l.For("datastore").Infof("hello %d", 1)
	klog.Background().WithName("scheduler").Info("scheduled", "pod", "a b")
	klog.InfoS("plain klog line")
	klog.V(2).InfoS("too verbose")
	logrus.Warn("from kine")
	l.Writer("containerd").Write([]byte("line one\nline two\n"))
	klog.Flush()
	out := buf.String()
	for _, want := range []string{
		"[datastore] hello 1",
		`[scheduler] scheduled pod="a b"`,
		"[kubox] plain klog line",
		`warn  [kine] msg="from kine"`,
		"[containerd] line one",
		"[containerd] line two",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "too verbose") {
		t.Errorf("a -v 2 line passed at verbosity 1:\n%s", out)
	}
}

// TestJSON: with the JSON format every library's lines are one JSON object
// each, with time, level, component and msg; a message of several lines
// stays one object.
func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	l := NewFormat(&buf, 1, false, JSON)
	l.InstallGlobal()
	defer New(io.Discard, 0, false).InstallGlobal()
	l.For("datastore").Warnf("two\nlines <a&b>")
	klog.Background().WithName("scheduler").Info("scheduled", "pod", "a b")
	logrus.Info("from kine")
	stdlog.Print("from the standard library")
	klog.Flush()
	want := []map[string]string{
		{"level": "warn", "component": "datastore", "msg": "two\nlines <a&b>"},
		{"level": "info", "component": "scheduler", "msg": `scheduled pod="a b"`},
		{"level": "info", "component": "kine", "msg": `msg="from kine"`},
		{"level": "info", "component": "stdlog", "msg": "from the standard library"},
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var got map[string]string
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", i+1, err, line)
		}
		if _, err := time.Parse(time.RFC3339, got["time"]); err != nil || len(got) != 4 {
			t.Errorf("line %d: want time, level, component and msg only: %s", i+1, line)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s is %q, want %q", i+1, k, got[k], v)
			}
		}
	}
}

// TestClose: after Close, no component's line reaches the writer.
func TestClose(t *testing.T) {
	var b bytes.Buffer
	l := New(&b, 0, false)
	l.Infof("before")
	l.Close()
	l.For("kine").Infof("after")
	io.WriteString(l.Writer("klog"), "after too\n")
	if got := b.String(); !strings.Contains(got, "before") || strings.Contains(got, "after") {
		t.Errorf("log after Close:\n%s", got)
	}
}
