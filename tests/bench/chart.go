package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// chartPanel is one grouped bar chart: one group of bars per category,
// one bar per series, each with a min–max whisker.
type chartPanel struct {
	Title      string   // e.g. "Start-up (s, median of 5, whiskers min–max)"
	Categories []string // e.g. "cold /readyz", "cold node Ready", ...
	Series     []chartSeries
}

type chartSeries struct {
	Name   string    // legend, e.g. "kubox (SQLite)"
	Values []float64 // one per category (median); NaN = no value, draw nothing
	Low    []float64 // whisker bottom per category (may be nil = no whiskers)
	High   []float64 // whisker top per category (may be nil)
}

// Layout constants in pixels. The font is a 7x13 bitmap, so sizes are
// chosen around a 13 px line.
const (
	chartWidth        = 1000
	chartPanelHeight  = 380
	chartLineHeight   = 13
	chartCharAdvance  = 7
	chartMarginRight  = 20
	chartMarginBottom = 2*chartLineHeight + 12 // two lines of category labels
	chartSwatch       = 12
)

var (
	chartWhite   = color.RGBA{0xff, 0xff, 0xff, 0xff}
	chartText    = color.RGBA{0x22, 0x22, 0x22, 0xff}
	chartAxis    = color.RGBA{0x55, 0x55, 0x55, 0xff}
	chartGrid    = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	chartWhisker = color.RGBA{0x22, 0x22, 0x22, 0xff}
	chartDivider = color.RGBA{0xbb, 0xbb, 0xbb, 0xff}

	// chartPalette is the Okabe–Ito palette, which stays distinguishable
	// for the common forms of colour blindness.
	chartPalette = []color.RGBA{
		{0x00, 0x72, 0xb2, 0xff}, // blue
		{0xe6, 0x9f, 0x00, 0xff}, // orange
		{0x00, 0x9e, 0x73, 0xff}, // bluish green
		{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
		{0x56, 0xb4, 0xe9, 0xff}, // sky blue
		{0xd5, 0x5e, 0x00, 0xff}, // vermillion
		{0xf0, 0xe4, 0x42, 0xff}, // yellow
		{0x00, 0x00, 0x00, 0xff}, // black
	}
)

func chartSeriesColor(i int) color.RGBA { return chartPalette[i%len(chartPalette)] }

// writeChart draws the panels stacked vertically into one PNG file at path.
func writeChart(path string, panels []chartPanel) error {
	h := chartPanelHeight * len(panels)
	if h == 0 {
		h = chartPanelHeight // still produce a valid (empty) image
	}
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(chartWhite), image.Point{}, draw.Src)
	for i, p := range panels {
		top := i * chartPanelHeight
		if i > 0 {
			chartFillRect(img, image.Rect(0, top, chartWidth, top+1), chartDivider)
		}
		drawChartPanel(img, image.Rect(0, top, chartWidth, top+chartPanelHeight), p)
	}

	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode chart: %w", err)
	}
	// Write beside the target and rename so readers never see a
	// half-written PNG.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write chart: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write chart: %w", err)
	}
	return nil
}

// chartAt returns s[i], or NaN when i is out of range or the value is not
// finite, so callers can pass slices of any length.
func chartAt(s []float64, i int) float64 {
	if i < 0 || i >= len(s) {
		return math.NaN()
	}
	v := s[i]
	if math.IsInf(v, 0) {
		return math.NaN()
	}
	return v
}

func drawChartPanel(img *image.RGBA, r image.Rectangle, p chartPanel) {
	const pad = 10
	face := basicfont.Face7x13

	// Title row, with the legend on the same row when both fit.
	title := chartASCII(p.Title)
	titleBase := r.Min.Y + pad + face.Ascent
	chartDrawText(img, title, r.Min.X+pad, titleBase, chartText)

	legendW := chartLegendWidth(p.Series)
	legendBase := titleBase
	if chartTextWidth(title)+2*pad+legendW > r.Dx()-chartMarginRight {
		legendBase += chartLineHeight + 6
	}
	legendBottom := drawChartLegend(img, p.Series, r.Max.X-chartMarginRight, r.Min.X+pad, legendBase)

	// Value labels sit above the tallest bar and may be lifted clear of
	// their neighbours, so leave two text lines above the plot area.
	plotTop := legendBottom + 2*chartLineHeight + 8
	plotBottom := r.Max.Y - chartMarginBottom
	if plotBottom-plotTop < 40 {
		plotTop = plotBottom - 40
	}

	ticks := chartNiceTicks(chartPanelMax(p))
	top := ticks[len(ticks)-1]
	labels := make([]string, len(ticks))
	labelW := 0
	for i, t := range ticks {
		labels[i] = chartNumber(t)
		labelW = max(labelW, chartTextWidth(labels[i]))
	}
	plotLeft := r.Min.X + pad + labelW + 8
	plotRight := r.Max.X - chartMarginRight
	plotH := plotBottom - plotTop
	yOf := func(v float64) int {
		if v <= 0 {
			return plotBottom
		}
		return plotBottom - int(math.Round(v/top*float64(plotH)))
	}

	// Grid and y axis.
	for i, t := range ticks {
		y := yOf(t)
		if i > 0 {
			chartFillRect(img, image.Rect(plotLeft+1, y, plotRight, y+1), chartGrid)
		}
		chartFillRect(img, image.Rect(plotLeft-4, y, plotLeft, y+1), chartAxis)
		chartDrawText(img, labels[i], plotLeft-6-chartTextWidth(labels[i]), y+(face.Ascent-face.Descent)/2, chartText)
	}
	chartFillRect(img, image.Rect(plotLeft, plotTop, plotLeft+1, plotBottom+1), chartAxis)

	nCat, nSer := len(p.Categories), len(p.Series)
	if nCat > 0 {
		groupW := float64(plotRight-plotLeft) / float64(nCat)
		innerW := groupW * 0.8
		slotW := innerW
		if nSer > 0 {
			slotW = innerW / float64(nSer)
		}
		const gap = 2
		barW := max(1, min(int(slotW)-gap, 90))

		type valueLabel struct {
			text  string
			cx, y int // y is the bottom of the text box
		}
		var vlabels []valueLabel

		for c := 0; c < nCat; c++ {
			gx := float64(plotLeft) + groupW*float64(c)
			innerLeft := gx + (groupW-innerW)/2
			// Centre the bars if they were capped narrower than the slot.
			used := float64(nSer) * slotW
			if float64(barW+gap) < slotW {
				used = float64(nSer * (barW + gap))
			}
			x0 := innerLeft + (innerW-used)/2
			step := used / float64(max(nSer, 1))
			for s, ser := range p.Series {
				v := chartAt(ser.Values, c)
				if math.IsNaN(v) {
					continue
				}
				bx := int(math.Round(x0+step*float64(s))) + gap/2
				yTop := yOf(v)
				if v > 0 && yTop >= plotBottom {
					yTop = plotBottom - 1 // keep tiny non-zero values visible
				}
				chartFillRect(img, image.Rect(bx, yTop, bx+barW, plotBottom), chartSeriesColor(s))

				labelY := yTop
				lo, hi := chartAt(ser.Low, c), chartAt(ser.High, c)
				if !math.IsNaN(lo) && !math.IsNaN(hi) {
					ylo, yhi := yOf(lo), yOf(hi)
					if ylo < yhi {
						ylo, yhi = yhi, ylo
					}
					cx := bx + barW/2
					capW := max(2, min(barW/3, 8))
					chartFillRect(img, image.Rect(cx, yhi, cx+1, ylo+1), chartWhisker)
					chartFillRect(img, image.Rect(cx-capW, yhi, cx+capW+1, yhi+1), chartWhisker)
					chartFillRect(img, image.Rect(cx-capW, ylo, cx+capW+1, ylo+1), chartWhisker)
					labelY = min(labelY, yhi)
				}

				vlabels = append(vlabels, valueLabel{chartNumber(v), bx + barW/2, labelY - 3})
			}

			lines := chartWrapLabel(chartASCII(p.Categories[c]), int(groupW)/chartCharAdvance-1)
			cx := int(math.Round(gx + groupW/2))
			for i, ln := range lines {
				chartDrawText(img, ln, cx-chartTextWidth(ln)/2, plotBottom+6+face.Ascent+i*chartLineHeight, chartText)
			}
		}
		// Labels go last so bars never paint over them. When bars are
		// narrower than their labels, neighbours would print on top of
		// each other, so a label that collides is lifted a line at a time,
		// but never into the legend.
		var placed []image.Rectangle
		for _, l := range vlabels {
			w := chartTextWidth(l.text)
			x := l.cx - w/2
			box := func(y int) image.Rectangle {
				return image.Rect(x-2, y-chartLineHeight, x+w+2, y)
			}
			y := l.y
			for lift := 0; lift < 3 && chartOverlapsAny(box(y), placed) &&
				y-2*chartLineHeight > legendBottom; lift++ {
				y -= chartLineHeight
			}
			placed = append(placed, box(y))
			chartDrawHaloText(img, l.text, x, y-face.Descent)
		}
	}
	// x axis last so it stays crisp on top of the bars' bases.
	chartFillRect(img, image.Rect(plotLeft, plotBottom, plotRight, plotBottom+1), chartAxis)
}

// chartPanelMax is the largest finite value the y axis has to show.
func chartPanelMax(p chartPanel) float64 {
	m := 0.0
	for _, s := range p.Series {
		for _, vs := range [][]float64{s.Values, s.Low, s.High} {
			for i := range vs {
				if v := chartAt(vs, i); v > m {
					m = v
				}
			}
		}
	}
	return m
}

// chartNiceTicks returns evenly spaced ticks from 0 up to at least maxV, using
// a step of 1, 2, 2.5 or 5 × 10^k and 4–6 ticks in total.
func chartNiceTicks(maxV float64) []float64 {
	if math.IsNaN(maxV) || math.IsInf(maxV, 0) || maxV <= 0 {
		maxV = 1
	}
	// Keep the steps representable; benchmark numbers never get near this.
	maxV = min(max(maxV, 1e-12), 1e300)
	mantissas := []float64{1, 2, 2.5, 5}
	// Start a decade below so the smallest fitting step is found; the
	// steps grow by at most 2.5×, so the first step giving <=5 intervals
	// gives at least 3 of them.
	k := int(math.Floor(math.Log10(maxV))) - 1
	for ; ; k++ {
		for _, m := range mantissas {
			step := chartScale10(m, k)
			n := int(math.Ceil(maxV/step - 1e-9))
			if n > 5 {
				continue
			}
			n = max(n, 1)
			ticks := make([]float64, n+1)
			for i := range ticks {
				// Multiply the small mantissa first and scale once, so
				// ticks like 0.3 are the closest float, not 0.30000000000000004.
				ticks[i] = chartScale10(float64(i)*m, k)
			}
			return ticks
		}
	}
}

// chartScale10 returns v × 10^k, dividing for negative k so decimal results
// round to the nearest float.
func chartScale10(v float64, k int) float64 {
	if k >= 0 {
		return v * math.Pow(10, float64(k))
	}
	return v / math.Pow(10, float64(-k))
}

// chartNumber formats v with about three significant digits and no
// trailing zeros, using k/M/G suffixes only for very large numbers so
// labels stay short.
func chartNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return chartNumber(v/1e9) + "G"
	case a >= 1e6:
		return chartNumber(v/1e6) + "M"
	case a >= 1e5:
		return chartNumber(v/1e3) + "k"
	case a >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	}
	dec := min(2-int(math.Floor(math.Log10(a))), 6)
	s := strconv.FormatFloat(v, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" || s == "" {
		s = "0"
	}
	return s
}

// chartWrapLabel splits s on spaces into at most two lines of maxChars runes,
// truncating what does not fit.
func chartWrapLabel(s string, maxChars int) []string {
	maxChars = max(maxChars, 3)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= maxChars {
		return []string{s}
	}
	words := strings.Fields(s)
	var first string
	rest := words
	for len(rest) > 0 {
		cand := rest[0]
		if first != "" {
			cand = first + " " + rest[0]
		}
		if utf8.RuneCountInString(cand) > maxChars {
			break
		}
		first, rest = cand, rest[1:]
	}
	if first == "" {
		// A single word longer than the line: break it mid-word.
		r := []rune(s)
		first, rest = string(r[:maxChars]), []string{strings.TrimSpace(string(r[maxChars:]))}
	}
	second := strings.Join(rest, " ")
	if second == "" {
		return []string{first}
	}
	return []string{first, chartTruncate(second, maxChars)}
}

func chartTruncate(s string, maxChars int) string {
	r := []rune(s)
	if len(r) <= maxChars {
		return s
	}
	if maxChars <= 2 {
		return string(r[:maxChars])
	}
	return string(r[:maxChars-2]) + ".."
}

// chartASCII maps common typographic characters to ASCII because the
// bitmap font only has glyphs for printable ASCII.
func chartASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		case r == '–' || r == '—' || r == '−' || r == '‐':
			b.WriteByte('-')
		case r == '…':
			b.WriteString("...")
		case r == '‘' || r == '’':
			b.WriteByte('\'')
		case r == '“' || r == '”':
			b.WriteByte('"')
		case r == '×':
			b.WriteByte('x')
		case r == 'µ' || r == 'μ':
			b.WriteByte('u')
		case r == '≈':
			b.WriteByte('~')
		case r == '\t' || r == '\n' || r == '\u00a0':
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func chartLegendEntryWidth(name string) int {
	return chartSwatch + 5 + chartTextWidth(chartASCII(name))
}

func chartLegendWidth(series []chartSeries) int {
	const spacing = 18
	w := 0
	for i, s := range series {
		if i > 0 {
			w += spacing
		}
		w += chartLegendEntryWidth(s.Name)
	}
	return w
}

// drawChartLegend lays the entries out right-aligned at right, wrapping onto
// further rows when they would pass left, and returns the bottom y of the
// last row.
func drawChartLegend(img *image.RGBA, series []chartSeries, right, left, baseline int) int {
	const spacing = 18
	face := basicfont.Face7x13
	if len(series) == 0 {
		return baseline + face.Descent
	}
	// Split into rows first so every row can be right-aligned.
	var rows [][]int
	var row []int
	rowW := 0
	for i, s := range series {
		w := chartLegendEntryWidth(s.Name)
		if len(row) > 0 && rowW+spacing+w > right-left {
			rows, row, rowW = append(rows, row), nil, 0
		}
		if len(row) > 0 {
			rowW += spacing
		}
		row, rowW = append(row, i), rowW+w
	}
	rows = append(rows, row)

	y := baseline
	for ri, row := range rows {
		if ri > 0 {
			y += chartLineHeight + 4
		}
		w := 0
		for j, i := range row {
			if j > 0 {
				w += spacing
			}
			w += chartLegendEntryWidth(series[i].Name)
		}
		x := max(right-w, left)
		for _, i := range row {
			sy := y - face.Ascent + (face.Ascent+face.Descent-chartSwatch)/2
			chartFillRect(img, image.Rect(x, sy, x+chartSwatch, sy+chartSwatch), chartSeriesColor(i))
			name := chartASCII(series[i].Name)
			chartDrawText(img, name, x+chartSwatch+5, y, chartText)
			x += chartLegendEntryWidth(series[i].Name) + spacing
		}
	}
	return y + face.Descent
}

func chartFillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	draw.Draw(img, r.Intersect(img.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
}

func chartOverlapsAny(r image.Rectangle, rs []image.Rectangle) bool {
	for _, o := range rs {
		if r.Overlaps(o) {
			return true
		}
	}
	return false
}

// chartDrawHaloText draws s with a white outline so it stays readable
// where it crosses grid lines, whiskers or a neighbouring bar.
func chartDrawHaloText(img *image.RGBA, s string, x, y int) {
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			if dx != 0 || dy != 0 {
				chartDrawText(img, s, x+dx, y+dy, chartWhite)
			}
		}
	}
	chartDrawText(img, s, x, y, chartText)
}

func chartTextWidth(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Ceil()
}

// chartDrawText draws s with its baseline at y, starting at x.
func chartDrawText(img *image.RGBA, s string, x, y int, c color.RGBA) {
	d := font.Drawer{
		Dst:  img,
		Src:  image.NewUniform(c),
		Face: basicfont.Face7x13,
		Dot:  fixed.P(x, y),
	}
	d.DrawString(s)
}
