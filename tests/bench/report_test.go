package main

import (
	"strings"
	"testing"
)

// TestSpliceReadme: the block between the markers is replaced (headings one
// level down, the chart after it) and the text around it stays as it was.
func TestSpliceReadme(t *testing.T) {
	readme := "# kubox\n\nintro\n" + readmeStart + "\nold table\n" + readmeEnd + "\n\nafter\n"
	got, err := spliceReadme(readme, "## Benchmark\n\n| a | b |\n|---|---|\n### Memory\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# kubox\n\nintro\n" + readmeStart + "\n### Benchmark\n\n| a | b |\n|---|---|\n#### Memory\n" +
		"\n![kubox vs upstream: start-up and memory](results/chart.png)\n" + readmeEnd + "\n\nafter\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	again, err := spliceReadme(got, "## Benchmark\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again, "old table") || strings.Count(again, readmeStart) != 1 || !strings.HasSuffix(again, readmeEnd+"\n\nafter\n") {
		t.Fatalf("second splice:\n%s", again)
	}
	if _, err := spliceReadme("# no markers\n", "## x\n"); err == nil {
		t.Fatal("a README without markers was accepted")
	}
}
