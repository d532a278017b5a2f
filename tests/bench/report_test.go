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

// TestHATable: kubox-ha's creates are a table of their own beside kubox on
// SQLite, with the ratio of each pair of runs, and kubox-ha is no column of
// the node tables.
func TestHATable(t *testing.T) {
	r := &results{Settings: map[string]string{"runs": "2", "objects": "5000", "idle": "1m0s"}}
	ops := func(perS ...float64) []apiOp {
		var out []apiOp
		for _, v := range perS {
			out = append(out, apiOp{PerSecond: v, P50ms: 1000 / v, P99ms: 4000 / v})
		}
		return out
	}
	r.Targets = []*targetResult{
		{Name: "kubox", Label: "kubox (SQLite)", API: map[string][]apiOp{"create c=16": ops(600, 700)}},
		{Name: "baseline", Label: "upstream", API: map[string][]apiOp{"create c=16": ops(1000, 1000)}},
		{Name: "kubox-ha", Label: "kubox (3 servers, embedded etcd)", API: map[string][]apiOp{"create c=16": ops(300, 420)}},
	}
	md := r.markdown()
	i := strings.Index(md, "### Creates on 3 servers")
	if i < 0 {
		t.Fatalf("no table of the three servers:\n%s", md)
	}
	if strings.Contains(md[:i], "3 servers") {
		t.Errorf("kubox-ha is in a node table:\n%s", md[:i])
	}
	// Ratios 0.5 and 0.6: the median 0.55.
	row := "| create c=16, objects/s | 650 (600–700) | 360 (300–420) | 0.55 |"
	if !strings.Contains(md[i:], row) || !strings.Contains(md[i:], "kubox (3 servers, embedded etcd) ÷ kubox (SQLite)") {
		t.Errorf("want the row %q and the ratio's header in:\n%s", row, md[i:])
	}
}

// The datastore alone is set beside the creates through the API server
// when both kubox targets measured it.
func TestDatastoreLine(t *testing.T) {
	op := func(perS, p99 float64) []apiOp { return []apiOp{{PerSecond: perS, P50ms: 1, P99ms: p99}} }
	r := &results{Settings: map[string]string{"runs": "1", "objects": "5000", "idle": "1m0s"}}
	r.Targets = []*targetResult{
		{Name: "kubox", Label: "kubox (SQLite)", API: map[string][]apiOp{"create c=16": op(600, 80)}, Datastore: &apiOp{PerSecond: 2500, P99ms: 15}},
		{Name: "kubox-etcd", Label: "kubox (etcd)", API: map[string][]apiOp{"create c=16": op(750, 50)}},
	}
	if line := r.datastoreLine(); !strings.Contains(line, "÷ kubox (etcd)") || strings.Contains(line, "datastore alone") {
		t.Errorf("with one datastore measured alone: %q", line)
	}
	r.Targets[1].Datastore = &apiOp{PerSecond: 2000, P99ms: 20}
	want := "kubox (SQLite) 2500/s, p99 15.0 ms; kubox (etcd) 2000/s, p99 20.0 ms; ratios 1.25 and 0.75."
	if line := r.datastoreLine(); !strings.Contains(line, want) {
		t.Errorf("want %q in %q", want, line)
	}
}

// TestAgentTable: the agent has a table of its own, beside the baseline
// node's kubelet, kube-proxy and containerd summed run by run, and is no
// column of the node tables.
func TestAgentTable(t *testing.T) {
	r := &results{Settings: map[string]string{"runs": "2", "objects": "5000", "idle": "1m0s"}}
	r.Targets = []*targetResult{
		{Name: "kubox", Label: "kubox (SQLite)", Memory: []memSample{{RSSMB: 400, PSSMB: 380}}},
		{Name: "baseline", Label: "upstream", Memory: []memSample{
			{RSSMB: 900, PSSMB: 800, RSSByProcess: map[string]float64{"kubelet": 100, "kube-proxy": 50, "containerd": 50, "etcd": 300},
				ByProcess: map[string]float64{"kubelet": 90, "kube-proxy": 40, "containerd": 40, "etcd": 280}},
			{RSSMB: 900, PSSMB: 800, RSSByProcess: map[string]float64{"kubelet": 150, "kube-proxy": 50, "containerd": 50, "etcd": 300},
				ByProcess: map[string]float64{"kubelet": 120, "kube-proxy": 40, "containerd": 40, "etcd": 280}},
		}},
		{Name: "kubox-agent", Label: "kubox agent", Cold: []startTimes{{NodeReady: 4}, {NodeReady: 5}},
			Memory: []memSample{{RSSMB: 100, PSSMB: 85}, {RSSMB: 125, PSSMB: 100}}},
	}
	md := r.markdown()
	i := strings.Index(md, "### Agent:")
	if i < 0 {
		t.Fatalf("no agent table:\n%s", md)
	}
	if strings.Contains(md[:i], "kubox agent") {
		t.Errorf("the agent is in a node table:\n%s", md[:i])
	}
	// Worker RSS 200 and 250; ratios 0.5 and 0.5.
	for _, row := range []string{
		"| join: agent start → node Ready, s | 4.50 (4.00–5.00) | – | – |",
		"| RSS, all processes, MiB | 112 (100–125) | 225 (200–250) | 0.50 |",
	} {
		if !strings.Contains(md[i:], row) {
			t.Errorf("want the row %q in:\n%s", row, md[i:])
		}
	}
}
