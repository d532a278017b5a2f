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
