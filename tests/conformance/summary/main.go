// Command summary turns the e2e suite's JUnit report into summary.md: how
// many specs passed, failed and were skipped, each failure with its reason,
// and the specs that cannot pass with no registry in reach, with why.
//
//	summary -junit junit_01.xml -missing missing-images.txt -out summary.md
package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "summary: %v\n", err)
		os.Exit(1)
	}
}

// Run describes the run the report came from, for the summary's head.
type Run struct {
	Focus, Skip, Duration string
	Nodes                 string // what ran the suite, e.g. "kubox v… server and agent on SQLite"
	Date                  string
}

func run(args []string) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	junitPath := fs.String("junit", "", "JUnit report of the run (e2e.test --report-dir writes junit_01.xml)")
	missing := fs.String("missing", "", "images not built, a reference and a reason a line, tab-separated")
	out := fs.String("out", "", "summary to write (Markdown)")
	var r Run
	fs.StringVar(&r.Focus, "focus", "", "the run's ginkgo focus")
	fs.StringVar(&r.Skip, "skip", "", "the run's ginkgo skip")
	fs.StringVar(&r.Duration, "duration", "", "how long the suite ran")
	fs.StringVar(&r.Nodes, "nodes", "", "what the suite ran against (kubox version, nodes, datastore)")
	fs.StringVar(&r.Date, "date", "", "when the run started")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *junitPath == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-junit and -out are required")
	}
	data, err := os.ReadFile(*junitPath)
	if err != nil {
		return err
	}
	cases, err := parseJUnit(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *junitPath, err)
	}
	var offline []MissingImage
	if *missing != "" {
		if offline, err = readMissing(*missing); err != nil {
			return err
		}
	}
	md := render(r, Classify(cases, offline), offline)
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// testCase is one <testcase> of a JUnit report.
type testCase struct {
	Name    string   `xml:"name,attr"`
	Status  string   `xml:"status,attr"` // ginkgo's: passed, failed, skipped, …
	Time    float64  `xml:"time,attr"`
	Failure *message `xml:"failure"`
	Error   *message `xml:"error"`
	Skipped *message `xml:"skipped"`
}

type message struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// parseJUnit reads the test cases of a <testsuites> or <testsuite> report.
func parseJUnit(data []byte) ([]testCase, error) {
	var doc struct {
		Suites []struct {
			Cases []testCase `xml:"testcase"`
		} `xml:"testsuite"`
		Cases []testCase `xml:"testcase"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	cases := doc.Cases
	for _, s := range doc.Suites {
		cases = append(cases, s.Cases...)
	}
	return cases, nil
}

// MissingImage is an image the build could not make offline.
type MissingImage struct {
	Ref, Reason string
}

func readMissing(name string) ([]MissingImage, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var list []MissingImage
	for _, line := range strings.Split(string(data), "\n") {
		ref, reason, ok := strings.Cut(line, "\t")
		if ok {
			list = append(list, MissingImage{Ref: ref, Reason: reason})
		}
	}
	return list, nil
}

// Failure is a spec that failed, with the first line of why and, when the
// cause is a pull with no registry in reach, that reason.
type Failure struct {
	Name, Reason, Offline string
}

// Result is the run sorted out.
type Result struct {
	Passed      []string
	Failed      []Failure
	Skipped     map[string][]string // reason → specs the suite skipped itself
	NotSelected int                 // specs focus and skip left out
}

// pullSigns are what a spec's failure says when its pod could not pull.
var pullSigns = []string{"ErrImagePull", "ImagePullBackOff", "failed to pull", "pull access denied", "failed to resolve reference"}

// Classify sorts the cases. Ginkgo reports the specs left out by focus and
// skip as skipped with a bare "skipped"; a spec that skips itself says why.
// The suite's set-up and reporting nodes ([SynchronizedBeforeSuite], …)
// count only when they fail.
func Classify(cases []testCase, offline []MissingImage) Result {
	r := Result{Skipped: map[string][]string{}}
	for _, c := range cases {
		switch {
		case c.Failure != nil || c.Error != nil:
			m := c.Failure
			if m == nil {
				m = c.Error
			}
			f := Failure{Name: c.Name, Reason: reason(m)}
			f.Offline = offlineCause(m.Message+"\n"+m.Text, offline)
			r.Failed = append(r.Failed, f)
		case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
			why := ""
			if c.Skipped != nil {
				why = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Skipped.Message), "skipped"))
				why = strings.TrimSpace(strings.TrimPrefix(why, "-"))
			}
			if why == "" {
				r.NotSelected++
				continue
			}
			r.Skipped[why] = append(r.Skipped[why], c.Name)
		case strings.HasPrefix(c.Name, "[It]"):
			r.Passed = append(r.Passed, c.Name)
		}
	}
	sort.Strings(r.Passed)
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Name < r.Failed[j].Name })
	return r
}

// reason is the first line of a failure that says something, without
// ginkgo's "[FAILED]" mark. A gomega message that opens with a bare
// "Expected" goes on over a few lines (what was found, the matcher, what
// was wanted): those are joined into one.
func reason(m *message) string {
	for _, s := range []string{m.Message, m.Text} {
		var lines []string
		for _, line := range strings.Split(s, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "[FAILED]"))
			if line != "" {
				lines = append(lines, line)
			}
		}
		if len(lines) == 0 {
			continue
		}
		line := lines[0]
		if line == "Expected" {
			line = expected(lines)
		}
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		return line
	}
	return "(no message)"
}

// expected joins gomega's "Expected / <found> / to <match> / <wanted>"
// into one line, the found value shortened.
func expected(lines []string) string {
	for k := 1; k+1 < len(lines); k++ {
		if strings.HasPrefix(lines[k], "to ") || strings.HasPrefix(lines[k], "not to ") {
			found := strings.Join(lines[1:k], " ")
			if len(found) > 120 {
				found = found[:120] + "…"
			}
			return strings.Join([]string{lines[0], found, lines[k], lines[k+1]}, " ")
		}
	}
	return strings.Join(lines[:min(len(lines), 4)], " ")
}

// imageGap is a check a spec makes on an upstream image's contents that
// the image made offline cannot pass: sign is what the failure says.
type imageGap struct {
	sign, cause string
}

// imageGaps are the known ones. Such a spec needs the upstream image, so
// the network, as much as one whose image was not made at all.
var imageGaps = []imageGap{{
	sign: "to contain substring <string>: Alpine Linux",
	cause: "registry.k8s.io/e2e-test-images/kitten: the spec checks that the image's /etc/os-release names Alpine Linux, " +
		"which upstream builds it on; the offline kitten is built on the Debian root (no Alpine package is in reach offline): needs the network",
}}

// offlineCause says why a failure needs the network, or "" when nothing in
// it points there.
func offlineCause(text string, offline []MissingImage) string {
	flat := strings.Join(strings.Fields(text), " ")
	for _, g := range imageGaps {
		if strings.Contains(flat, g.sign) {
			return g.cause
		}
	}
	for _, m := range offline {
		if strings.Contains(text, m.Ref) {
			return m.Ref + ": " + m.Reason
		}
	}
	for _, s := range pullSigns {
		if strings.Contains(text, s) {
			return "an image pull (" + s + "): no registry in reach"
		}
	}
	return ""
}

func render(run Run, r Result, offline []MissingImage) string {
	var b strings.Builder
	skipped := 0
	for _, specs := range r.Skipped {
		skipped += len(specs)
	}
	fmt.Fprintf(&b, "# Conformance run\n\n")
	if run.Nodes != "" || run.Date != "" {
		fmt.Fprintf(&b, "%s", run.Nodes)
		if run.Date != "" {
			if run.Nodes != "" {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "started %s", run.Date)
		}
		b.WriteString(".\n\n")
	}
	if run.Focus != "" || run.Skip != "" {
		fmt.Fprintf(&b, "Focus `%s`, skip `%s`", run.Focus, run.Skip)
		if run.Duration != "" {
			fmt.Fprintf(&b, "; the suite ran %s", run.Duration)
		}
		b.WriteString(".\n\n")
	}
	fmt.Fprintf(&b, "| passed | failed | skipped | not selected |\n| ---: | ---: | ---: | ---: |\n| %d | %d | %d | %d |\n\n",
		len(r.Passed), len(r.Failed), skipped, r.NotSelected)
	var needNet, other []Failure
	for _, f := range r.Failed {
		if f.Offline != "" {
			needNet = append(needNet, f)
		} else {
			other = append(other, f)
		}
	}
	if len(other) > 0 {
		b.WriteString("## Failed\n\n")
		for _, f := range other {
			fmt.Fprintf(&b, "- %s\n  - %s\n", f.Name, f.Reason)
		}
		b.WriteString("\n")
	}
	if len(needNet) > 0 {
		b.WriteString("## Failed for want of a network\n\n")
		for _, f := range needNet {
			fmt.Fprintf(&b, "- %s\n  - %s\n  - %s\n", f.Name, f.Offline, f.Reason)
		}
		b.WriteString("\n")
	}
	if skipped > 0 {
		b.WriteString("## Skipped by the suite\n\n")
		reasons := make([]string, 0, len(r.Skipped))
		for why := range r.Skipped {
			reasons = append(reasons, why)
		}
		sort.Strings(reasons)
		for _, why := range reasons {
			fmt.Fprintf(&b, "- %s\n", why)
			for _, s := range r.Skipped[why] {
				fmt.Fprintf(&b, "  - %s\n", s)
			}
		}
		b.WriteString("\n")
	}
	if len(offline) > 0 {
		b.WriteString("## Images not made offline\n\nA spec that runs one of these cannot pass here; the reason is the image's.\n\n")
		for _, m := range offline {
			fmt.Fprintf(&b, "- `%s`: %s\n", m.Ref, m.Reason)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Passed\n\n")
	for _, p := range r.Passed {
		fmt.Fprintf(&b, "- %s\n", p)
	}
	return b.String()
}
