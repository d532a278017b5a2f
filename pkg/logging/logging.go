// Package logging merges the logs of every component that runs inside a
// kubox process into one stream, each line tagged with the component it came
// from, at the verbosity the user chose, as text or as JSON lines.
package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Format is how lines are written.
type Format string

const (
	// Text lines: time, level, [component], message.
	Text Format = "text"
	// JSON lines: {"time", "level", "component", "msg"}, one object a line.
	JSON Format = "json"
)

// timeLayout is UTC with milliseconds, in both formats.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Logger writes tagged lines to one writer. Copies made with For share the
// writer and its lock, so lines never interleave.
type Logger struct {
	out       *output
	component string
}

type output struct {
	mu        sync.Mutex
	w         io.Writer
	verbosity int
	debug     bool
	format    Format
	closed    bool // Close was called: lines are dropped
}

// New returns a text logger for component "kubox". verbosity is klog's -v
// level; debug raises it to at least 2 and turns on debug lines.
func New(w io.Writer, verbosity int, debug bool) *Logger {
	return NewFormat(w, verbosity, debug, Text)
}

// NewFormat is New writing lines in format (Text for anything but JSON).
func NewFormat(w io.Writer, verbosity int, debug bool, format Format) *Logger {
	if debug && verbosity < 2 {
		verbosity = 2
	}
	if format != JSON {
		format = Text
	}
	return &Logger{out: &output{w: w, verbosity: verbosity, debug: debug, format: format}, component: "kubox"}
}

// For returns a logger tagged with another component name.
func (l *Logger) For(component string) *Logger {
	return &Logger{out: l.out, component: component}
}

// Verbosity is the -v level in force.
func (l *Logger) Verbosity() int { return l.out.verbosity }

// Debug tells whether --debug is on.
func (l *Logger) Debug() bool { return l.out.debug }

// Infof logs an informational line.
func (l *Logger) Infof(format string, args ...any) {
	l.line("info", l.component, fmt.Sprintf(format, args...))
}

// Warnf logs a warning.
func (l *Logger) Warnf(format string, args ...any) {
	l.line("warn", l.component, fmt.Sprintf(format, args...))
}

// Errorf logs an error line (the process goes on).
func (l *Logger) Errorf(format string, args ...any) {
	l.line("error", l.component, fmt.Sprintf(format, args...))
}

// Debugf logs only with --debug.
func (l *Logger) Debugf(format string, args ...any) {
	if l.out.debug {
		l.line("debug", l.component, fmt.Sprintf(format, args...))
	}
}

func (l *Logger) line(level, component, msg string) {
	msg = strings.TrimRight(msg, "\n")
	ts := time.Now().UTC().Format(timeLayout)
	var b bytes.Buffer
	if l.out.format == JSON {
		jsonLine(&b, ts, level, component, msg)
	} else {
		// A message of several lines stays readable: each is tagged.
		for _, part := range strings.Split(msg, "\n") {
			fmt.Fprintf(&b, "%s %-5s [%s] %s\n", ts, level, component, part)
		}
	}
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	if !l.out.closed {
		_, _ = l.out.w.Write(b.Bytes())
	}
}

// Close drops every later line of every component sharing l's writer. A
// command that fails prints its one-line reason last, after closing its
// log: goroutines of upstream components may still log while the process
// exits, and their lines must not follow the reason.
func (l *Logger) Close() {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	l.out.closed = true
}

// jsonLine writes one JSON object and a newline; a message of several
// lines stays one object.
func jsonLine(b *bytes.Buffer, ts, level, component, msg string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false) // messages hold <, > and & often; they need no escaping here
	_ = enc.Encode(struct {
		Time      string `json:"time"`
		Level     string `json:"level"`
		Component string `json:"component"`
		Msg       string `json:"msg"`
	}{ts, level, component, msg})
}

// Writer returns an io.Writer whose every line becomes an info line tagged
// with component; for libraries that log to a writer.
func (l *Logger) Writer(component string) io.Writer {
	return &lineWriter{l: l.For(component)}
}

type lineWriter struct {
	mu  sync.Mutex
	l   *Logger
	buf []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		level, msg := splitLevel(line)
		w.l.line(level, w.l.component, msg)
	}
	return len(p), nil
}

// splitLevel lifts a logrus-style `level=x msg="…"` prefix into our level.
func splitLevel(line string) (string, string) {
	if rest, ok := strings.CutPrefix(line, "level="); ok {
		lvl, msg, _ := strings.Cut(rest, " ")
		switch lvl {
		case "warning":
			lvl = "warn"
		case "fatal", "panic":
			lvl = "error"
		}
		return lvl, msg
	}
	return "info", line
}
