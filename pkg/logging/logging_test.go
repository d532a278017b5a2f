package logging

import (
	"bytes"
	"strings"
	"testing"

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
