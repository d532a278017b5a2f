package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWriteChart(t *testing.T) {
	nan := math.NaN()
	panels := []chartPanel{
		{
			Title:      "Start-up (s, median of 5, whiskers min–max)",
			Categories: []string{"cold /readyz", "cold node Ready", "warm /readyz", "warm node Ready after restart"},
			Series: []chartSeries{
				{Name: "kubox (SQLite)", Values: []float64{1.2, 4.8, 0.9, 3.1}, Low: []float64{1.1, 4.5, 0.8, 2.9}, High: []float64{1.4, 5.2, 1.0, 3.6}},
				{Name: "kubox (etcd)", Values: []float64{2.3, 6.1, 1.7, 4.4}, Low: []float64{2.0, 5.8, 1.5, 4.0}, High: []float64{2.9, 6.6, 2.1, 4.9}},
				{Name: "k3s", Values: []float64{5.5, 12.4, 3.2, 9.9}, Low: []float64{5.1, 11.8, 3.0, 9.1}, High: []float64{6.0, 13.1, 3.6, 10.8}},
			},
		},
		{
			Title:      "Memory (MiB RSS, median)",
			Categories: []string{"idle", "100 pods", "1000 configmaps"},
			Series: []chartSeries{
				{Name: "kubox (SQLite)", Values: []float64{180, 240, 310}},
				{Name: "kubox (etcd)", Values: []float64{260, nan, 420}},
				{Name: "k3s", Values: []float64{520, 610}}, // short slice: last value missing
				{Name: "k0s", Values: []float64{480, 560, 700}},
			},
		},
	}

	img := decodeChart(t, panels)
	b := img.Bounds()
	if b.Dx() < 800 || b.Dx() > 1200 || b.Dy() < 2*300 || b.Dy() > 2*450 {
		t.Fatalf("implausible size %dx%d", b.Dx(), b.Dy())
	}

	// Each series colour must cover far more pixels than its legend
	// swatch alone, which proves the bars were drawn. Check per panel.
	for pi, p := range panels {
		half := image.Rect(b.Min.X, b.Min.Y+pi*b.Dy()/2, b.Max.X, b.Min.Y+(pi+1)*b.Dy()/2)
		counts := countColors(img, half)
		for si, s := range p.Series {
			c := chartSeriesColor(si)
			swatch := chartSwatch * chartSwatch
			if n := counts[c]; n < swatch+200 {
				t.Errorf("panel %d series %q: %d pixels of %v, want bars (> %d)", pi, s.Name, n, c, swatch+200)
			}
		}
	}
}

func countColors(img image.Image, r image.Rectangle) map[color.RGBA]int {
	counts := map[color.RGBA]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			counts[color.RGBA{uint8(cr >> 8), uint8(cg >> 8), uint8(cb >> 8), uint8(ca >> 8)}]++
		}
	}
	return counts
}

func rgbaAt(img image.Image, x, y int) color.RGBA {
	r, g, b, a := img.At(x, y).RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func TestWriteChartDegenerate(t *testing.T) {
	nan := math.NaN()
	dir := t.TempDir()
	cases := map[string][]chartPanel{
		"no panels":   nil,
		"empty panel": {{}},
		"no series":   {{Title: "t", Categories: []string{"a", "b"}}},
		"no categories": {{Title: "t", Series: []chartSeries{
			{Name: "s", Values: []float64{1, 2}},
		}}},
		"all zero": {{Categories: []string{"a"}, Series: []chartSeries{
			{Name: "s", Values: []float64{0}, Low: []float64{0}, High: []float64{0}},
		}}},
		"all NaN and mismatched": {{Categories: []string{"a", "b", "c"}, Series: []chartSeries{
			{Name: "s", Values: []float64{nan, nan, nan, 5}, Low: []float64{1}, High: []float64{nan, 2, 3, 4, 5}},
			{Name: "t"},
		}}},
		"negative and inf": {{Categories: []string{"a", "b"}, Series: []chartSeries{
			{Name: "s", Values: []float64{-3, math.Inf(1)}, Low: []float64{-4, 1}, High: []float64{-2, math.Inf(1)}},
		}}},
		"many series long names": {{Title: "a very long title with non-ASCII µs × – …", Categories: []string{"supercalifragilisticexpialidocious", "x"}, Series: []chartSeries{
			{Name: "one long series name here", Values: []float64{1e-7, 2e9}},
			{Name: "two long series name here", Values: []float64{3, 4}},
			{Name: "three long series name here", Values: []float64{5, 6}},
			{Name: "four long series name here", Values: []float64{7, 8}},
			{Name: "five long series name here", Values: []float64{9, 10}},
			{Name: "six long series name here", Values: []float64{11, 12}},
			{Name: "seven long series name here", Values: []float64{13, 14}},
			{Name: "eight long series name here", Values: []float64{15, 16}},
			{Name: "nine long series name here", Values: []float64{17, 18}},
		}}},
		"empty timeline": {{Timeline: &chartTimeline{}}},
		"timeline oddities": {{Title: "t", Series: []chartSeries{{Name: "s"}}, Timeline: &chartTimeline{Rows: []chartTimelineRow{
			{Series: -3, Label: "negative series", End: 1},
			{Series: 42, Label: "series out of range", End: 2},
			{Label: "NaN start", Start: nan, End: 3},
			{Label: "end before start", Start: 5, End: 4},
			{Label: "negative", Start: -2, End: -1},
			{Label: "inf", End: math.Inf(1)},
			{Label: "huge", End: 1e300},
			{Label: "tiny", End: 1e-9},
			{Label: "a label far too long to fit into a third of the width of the chart, truncated"},
		}}}},
		"timeline all NaN":  {{Series: []chartSeries{{Name: "s"}}, Timeline: &chartTimeline{Rows: []chartTimelineRow{{End: nan}, {End: nan}}}}},
		"timeline 300 rows": {{Timeline: &chartTimeline{Rows: make([]chartTimelineRow, 300)}}},
		"empty stack":       {{Stack: &chartStack{}}},
		"stack oddities": {{Title: "t", Series: []chartSeries{{Name: "ignored"}}, Stack: &chartStack{Bars: []chartStackBar{
			{Name: "no parts"},
			{Name: "bad parts", Parts: []chartStackPart{{"a", nan}, {"b", -1}, {"c", 0}, {"d", math.Inf(1)}}},
			{Name: "huge", Parts: []chartStackPart{{"a", 1e308}, {"b", 1e308}}},
			{Name: "a bar name far too long to fit into a third of the width of the chart", Parts: []chartStackPart{{"", 1}, {"a", 1e-9}}},
		}}}},
		"stack 300 bars": {{Stack: &chartStack{Bars: make([]chartStackBar, 300)}}},
		"both kinds set": {{Timeline: &chartTimeline{}, Stack: &chartStack{}}},
	}
	for name, panels := range cases {
		t.Run(name, func(t *testing.T) {
			if err := writeChart(filepath.Join(dir, "c.png"), panels); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestChartNiceTicks(t *testing.T) {
	tests := []struct {
		max  float64
		want []float64
	}{
		{0, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{math.NaN(), []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0.3, []float64{0, 0.1, 0.2, 0.3}},
		{7, []float64{0, 2, 4, 6, 8}},
		{10, []float64{0, 2, 4, 6, 8, 10}},
		{11, []float64{0, 2.5, 5, 7.5, 10, 12.5}},
		{13.1, []float64{0, 5, 10, 15}},
		{240, []float64{0, 50, 100, 150, 200, 250}},
		{700, []float64{0, 200, 400, 600, 800}},
		{1234, []float64{0, 250, 500, 750, 1000, 1250}},
	}
	for _, tt := range tests {
		got := chartNiceTicks(tt.max)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("chartNiceTicks(%v) = %v, want %v", tt.max, got, tt.want)
		}
		if n := len(got); n < 4 || n > 6 {
			t.Errorf("chartNiceTicks(%v): %d ticks, want 4-6", tt.max, n)
		}
	}
}

func TestChartNumber(t *testing.T) {
	tests := map[float64]string{
		0:        "0",
		250:      "250",
		1.5:      "1.5",
		2.5:      "2.5",
		0.25:     "0.25",
		3.14159:  "3.14",
		12.345:   "12.3",
		1234.5:   "1235",
		0.000123: "0.000123",
		250000:   "250k",
		1.5e6:    "1.5M",
		-4.2:     "-4.2",
	}
	for v, want := range tests {
		if got := chartNumber(v); got != want {
			t.Errorf("chartNumber(%v) = %q, want %q", v, got, want)
		}
	}
}

// decodeChart writes panels and decodes the PNG back; the temporary file
// the write goes through must be gone.
func decodeChart(t *testing.T, panels []chartPanel) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := writeChart(path, panels); err != nil {
		t.Fatalf("writeChart: %v", err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return img
}

func samePixels(a, b image.Image, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func timelinePanel(rows []chartTimelineRow) chartPanel {
	return chartPanel{
		Title:    "Start-up timeline (s, first start)",
		Series:   []chartSeries{{Name: "kubox (SQLite)"}, {Name: "kubox (etcd)"}, {Name: "k3s"}, {Name: "k0s"}},
		Timeline: &chartTimeline{Rows: rows},
	}
}

func TestWriteChartTimeline(t *testing.T) {
	nan := math.NaN()
	phases := []string{"api-server", "scheduler", "controller-manager", "node registered", "node Ready"}
	var rows, withNaN []chartTimelineRow
	for s := 0; s < 3; s++ { // series 3 (k0s) has no rows
		for i, ph := range phases {
			row := chartTimelineRow{Series: s, Label: ph, End: float64(i+1) * float64(s+1)}
			rows = append(rows, row)
			withNaN = append(withNaN, row)
			if i == 2 {
				// A phase one target never reached, in another series' colour.
				withNaN = append(withNaN, chartTimelineRow{Series: 3, Label: "never", End: nan})
			}
		}
	}

	img := decodeChart(t, []chartPanel{timelinePanel(withNaN)})
	b := img.Bounds()
	if b.Dx() != chartWidth || b.Dy() != chartPanelHeight {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), chartWidth, chartPanelHeight)
	}
	counts := countColors(img, b)
	swatch := chartSwatch * chartSwatch
	// The bars grow with the series (ends ×1, ×2, ×3), so must the pixels.
	prev := swatch
	for s := 0; s < 3; s++ {
		n := counts[chartSeriesColor(s)]
		if n < prev+500 {
			t.Errorf("series %d: %d pixels, want more than %d (bars longer than the previous series')", s, n, prev+500)
		}
		prev = n
	}
	if n := counts[chartSeriesColor(3)]; n != swatch {
		t.Errorf("series without drawable rows: %d pixels, want only its legend swatch (%d)", n, swatch)
	}

	// Down a column just right of the y axis, which every bar crosses: the
	// rows in their order, evenly spaced, with a wider gap between series.
	top := chartHeaderBottom(b, "Start-up timeline (s, first start)", timelinePanel(nil).Series) + 1
	axisX := -1
	for x := b.Min.X; x < b.Max.X && axisX < 0; x++ {
		for y := top; y < b.Max.Y; y++ {
			if rgbaAt(img, x, y) == chartSeriesColor(0) {
				axisX = x
				break
			}
		}
	}
	type run struct {
		c          color.RGBA
		start, end int
	}
	var runs []run
	for y := top; y < b.Max.Y; y++ {
		c := rgbaAt(img, axisX, y)
		switch {
		case c != chartSeriesColor(0) && c != chartSeriesColor(1) && c != chartSeriesColor(2):
		case len(runs) > 0 && runs[len(runs)-1].c == c && runs[len(runs)-1].end == y:
			runs[len(runs)-1].end++
		default:
			runs = append(runs, run{c, y, y + 1})
		}
	}
	if len(runs) != len(rows) {
		t.Fatalf("found %d bars at x=%d, want %d", len(runs), axisX, len(rows))
	}
	space := runs[1].start - runs[0].end
	for i, r := range runs {
		if r.c != chartSeriesColor(rows[i].Series) {
			t.Errorf("bar %d: colour %v, want series %d", i, r.c, rows[i].Series)
		}
		if i == 0 {
			continue
		}
		want := space
		if rows[i].Series != rows[i-1].Series {
			want += chartRowGap
		}
		if got := r.start - runs[i-1].end; got != want {
			t.Errorf("space above bar %d: %d px, want %d", i, got, want)
		}
	}

	// A NaN row takes no space and draws nothing.
	without := decodeChart(t, []chartPanel{timelinePanel(rows)})
	if !samePixels(img, without, b) {
		t.Error("a row with a NaN end changed the image")
	}
}

func TestWriteChartTimelineTaller(t *testing.T) {
	bars := chartPanel{
		Title:      "Memory",
		Categories: []string{"idle"},
		Series:     []chartSeries{{Name: "a", Values: []float64{1}}, {Name: "b", Values: []float64{2}}},
	}
	var rows []chartTimelineRow
	for i := 0; i < 60; i++ {
		rows = append(rows, chartTimelineRow{Series: i / 20, Label: "phase", End: 1 + float64(i)/10})
	}
	tall := timelinePanel(rows)
	short := timelinePanel(rows[:10])

	if h := chartPanelHeightOf(short); h != chartPanelHeight {
		t.Errorf("10-row timeline: height %d, want %d", h, chartPanelHeight)
	}
	th := chartPanelHeightOf(tall)
	if th < 60*chartTimelineRowMin {
		t.Fatalf("60-row timeline: height %d, want at least %d", th, 60*chartTimelineRowMin)
	}

	img := decodeChart(t, []chartPanel{bars, tall})
	b := img.Bounds()
	if b.Dy() != chartPanelHeight+th {
		t.Fatalf("height %d, want %d (bar panel + timeline)", b.Dy(), chartPanelHeight+th)
	}
	// The bar panel above is drawn as on its own.
	alone := decodeChart(t, []chartPanel{bars})
	if !samePixels(img, alone, image.Rect(0, 0, chartWidth, chartPanelHeight)) {
		t.Error("the bar panel above a timeline changed")
	}
	// The last series' rows are the bottom third, so they must reach into
	// the part the panel grew by.
	grown := image.Rect(0, b.Max.Y-(th-chartPanelHeight), chartWidth, b.Max.Y)
	if n := countColors(img, grown)[chartSeriesColor(2)]; n < 20*chartTimelineRowMin {
		t.Errorf("last series: %d pixels in the grown part, want rows there", n)
	}
}

func TestWriteChartStack(t *testing.T) {
	p := chartPanel{Title: "Memory by process (MiB PSS)", Stack: &chartStack{Bars: []chartStackBar{
		{Name: "kubox (SQLite)", Parts: []chartStackPart{{"kubox", 100}, {"containerd", 50}}},
		{Name: "kubox (etcd)", Parts: []chartStackPart{{"containerd", 40}, {"kubox", 200}, {"etcd", 80}}},
		{Name: "k3s", Parts: []chartStackPart{{"etcd", 30}, {"kubox", 60}}},
	}}}
	img := decodeChart(t, []chartPanel{p})
	b := img.Bounds()
	if b.Dx() != chartWidth || b.Dy() != chartPanelHeight {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), chartWidth, chartPanelHeight)
	}
	kubox, containerd, etcd := chartSeriesColor(0), chartSeriesColor(1), chartSeriesColor(2)
	palette := map[color.RGBA]bool{}
	for _, c := range chartPalette {
		palette[c] = true
	}

	// Find the bars as bands of rows with palette pixels under the legend,
	// then read each bar's segments along its top row, which values
	// printed inside do not reach.
	type run struct {
		c color.RGBA
		n int
	}
	var bands [][]run
	inBand := false
	for y := chartHeaderBottom(b, p.Title, chartLegendNames([]string{"kubox", "containerd", "etcd"})) + 1; y < b.Max.Y; y++ {
		n := 0
		for x := b.Min.X; x < b.Max.X; x++ {
			if palette[rgbaAt(img, x, y)] {
				n++
			}
		}
		if n < 20 {
			inBand = false
			continue
		}
		if inBand {
			continue
		}
		inBand = true
		var runs []run
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgbaAt(img, x, y)
			switch {
			case !palette[c]:
			case len(runs) > 0 && runs[len(runs)-1].c == c:
				runs[len(runs)-1].n++
			default:
				runs = append(runs, run{c, 1})
			}
		}
		bands = append(bands, runs)
	}

	want := [][]color.RGBA{{kubox, containerd}, {containerd, kubox, etcd}, {etcd, kubox}}
	if len(bands) != len(want) {
		t.Fatalf("found %d bars, want %d: %v", len(bands), len(want), bands)
	}
	for i, runs := range bands {
		var got []color.RGBA
		for _, r := range runs {
			got = append(got, r.c)
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("bar %d: segment colours %v, want %v", i, got, want[i])
		}
	}
	if t.Failed() {
		return
	}
	// Widths follow the values: kubox is 100, 200 and 60.
	k1, k2, k3 := bands[0][0].n, bands[1][1].n, bands[2][1].n
	if math.Abs(float64(k2)-2*float64(k1)) > 3 || math.Abs(float64(k3)-0.6*float64(k1)) > 3 {
		t.Errorf("kubox segments %d, %d, %d px, want in the ratio 100:200:60", k1, k2, k3)
	}
}

func TestChartStackLayout(t *testing.T) {
	nan := math.NaN()
	// Ten names: p7, p8 and p9 (also in bar a, so first seen there) are
	// the smallest by total and go into "other"; the rest keep their order
	// of first appearance.
	var parts []chartStackPart
	for i := 0; i < 10; i++ {
		parts = append(parts, chartStackPart{Name: "p" + string(rune('0'+i)), Value: float64(100 - i)})
	}
	s := &chartStack{Bars: []chartStackBar{
		{Name: "a", Parts: append([]chartStackPart{{"p9", 0.5}, {"bad", nan}, {"neg", -1}}, parts[:5]...)},
		{Name: "b", Parts: parts[5:]},
		{Name: "empty"},
	}}
	names, bars := chartStackLayout(s)
	if want := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "other"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	want := [][]chartStackPart{
		{parts[0], parts[1], parts[2], parts[3], parts[4], {"other", 0.5}},
		{parts[5], parts[6], {"other", 93 + 92 + 91}},
		nil,
	}
	if !reflect.DeepEqual(bars, want) {
		t.Errorf("bars %v, want %v", bars, want)
	}

	// Up to eight names nothing is merged.
	names, _ = chartStackLayout(&chartStack{Bars: []chartStackBar{{Parts: parts[:8]}}})
	if len(names) != 8 || names[7] != "p7" {
		t.Errorf("eight names: got %v", names)
	}
}
