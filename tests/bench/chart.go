package main

import (
	"bytes"
	"cmp"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
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

	// Either of these draws the panel as another kind (Timeline first if
	// both are set); Categories are then unused.
	Timeline *chartTimeline // Series gives the legend and the rows' colours
	Stack    *chartStack    // Series is unused: the legend lists the parts
}

type chartSeries struct {
	Name   string    // legend, e.g. "kubox (SQLite)"
	Values []float64 // one per category (median); NaN = no value, draw nothing
	Low    []float64 // whisker bottom per category (may be nil = no whiskers)
	High   []float64 // whisker top per category (may be nil)
}

// chartTimeline is a start-up's phases on one time axis: one row per
// phase, a bar from the process's start (0) to the phase's time, rows of
// one target in that target's colour.
type chartTimeline struct {
	Rows []chartTimelineRow
}

type chartTimelineRow struct {
	Series int     // index into the panel's Series, for the colour and the legend
	Label  string  // e.g. "api-server", "node Ready"
	Start  float64 // seconds; usually 0
	End    float64 // seconds; NaN = skip the row
}

// chartStack is one horizontal bar per target, split into parts (e.g.
// each process's PSS), the parts in a shared legend.
type chartStack struct {
	Bars []chartStackBar
}

type chartStackBar struct {
	Name  string // the target, e.g. "kubox (SQLite)"
	Parts []chartStackPart
}

type chartStackPart struct {
	Name  string  // e.g. "kubox", "containerd"; the same name has the same colour in every bar
	Value float64 // e.g. MiB
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
	chartPad          = 10
	chartLegendGap    = 18 // between legend entries

	// The horizontal kinds (timeline, stack): rows start a little under
	// the legend and the x axis with its tick labels follows the last row.
	chartRowsTop    = 12
	chartRowsBottom = 4 + 6 + chartLineHeight + chartPad
	chartRowGap     = 6 // between timeline rows of different series
	// Letters with descenders are 11 px tall, so 11 px rows are the
	// tightest where neighbouring labels do not overlap.
	chartTimelineRowMin = 11
	chartTimelineRowMax = 16
	// Stack rows have room for a value inside each segment.
	chartStackRowMin = 20
	chartStackRowMax = 56
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

func chartSeriesColor(i int) color.RGBA {
	n := len(chartPalette)
	return chartPalette[(i%n+n)%n] // a timeline row's Series may be anything
}

// writeChart draws the panels stacked vertically into one PNG file at path.
func writeChart(path string, panels []chartPanel) error {
	heights := make([]int, len(panels))
	h := 0
	for i, p := range panels {
		heights[i] = chartPanelHeightOf(p)
		h += heights[i]
	}
	if h == 0 {
		h = chartPanelHeight // still produce a valid (empty) image
	}
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(chartWhite), image.Point{}, draw.Src)
	top := 0
	for i, p := range panels {
		if i > 0 {
			chartFillRect(img, image.Rect(0, top, chartWidth, top+1), chartDivider)
		}
		drawChartPanel(img, image.Rect(0, top, chartWidth, top+heights[i]), p)
		top += heights[i]
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

// chartFinite reports whether v can be drawn.
func chartFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// chartPanelHeightOf is the height a panel is drawn at: bar panels have a
// fixed height, the horizontal kinds grow when their rows would not fit
// at their minimum height.
func chartPanelHeightOf(p chartPanel) int {
	switch {
	case p.Timeline != nil:
		rows := chartTimelineRows(p.Timeline)
		need := len(rows)*chartTimelineRowMin + chartTimelineGaps(rows)*chartRowGap
		return chartRowsPanelHeight(p.Title, p.Series, need)
	case p.Stack != nil:
		names, bars := chartStackLayout(p.Stack)
		return chartRowsPanelHeight(p.Title, chartLegendNames(names), len(bars)*chartStackRowMin)
	}
	return chartPanelHeight
}

// drawChartPanel draws p into r as the kind its fields select.
func drawChartPanel(img *image.RGBA, r image.Rectangle, p chartPanel) {
	switch {
	case p.Timeline != nil:
		drawChartTimeline(img, r, p)
	case p.Stack != nil:
		drawChartStack(img, r, p)
	default:
		drawChartBars(img, r, p)
	}
}

// chartLegendBase is the legend's baseline: on the title's row when both
// fit, else on the next one.
func chartLegendBase(r image.Rectangle, title string, legend []chartSeries) int {
	base := r.Min.Y + chartPad + basicfont.Face7x13.Ascent
	if chartTextWidth(chartASCII(title))+2*chartPad+chartLegendWidth(legend) > r.Dx()-chartMarginRight {
		base += chartLineHeight + 6
	}
	return base
}

// drawChartHeader draws the title and the legend and returns the bottom y
// of the legend.
func drawChartHeader(img *image.RGBA, r image.Rectangle, title string, legend []chartSeries) int {
	chartDrawText(img, chartASCII(title), r.Min.X+chartPad, r.Min.Y+chartPad+basicfont.Face7x13.Ascent, chartText)
	return drawChartLegend(img, legend, r.Max.X-chartMarginRight, r.Min.X+chartPad, chartLegendBase(r, title, legend))
}

// chartHeaderBottom is what drawChartHeader returns, without drawing, so a
// panel's height can be known before it is drawn.
func chartHeaderBottom(r image.Rectangle, title string, legend []chartSeries) int {
	rows := chartLegendRows(legend, r.Max.X-chartMarginRight-(r.Min.X+chartPad))
	return chartLegendBase(r, title, legend) + max(len(rows)-1, 0)*(chartLineHeight+4) + basicfont.Face7x13.Descent
}

func drawChartBars(img *image.RGBA, r image.Rectangle, p chartPanel) {
	const pad = chartPad
	face := basicfont.Face7x13

	legendBottom := drawChartHeader(img, r, p.Title, p.Series)

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

// chartRowsPanelHeight is the height of a horizontal panel whose rows take
// need pixels at their minimum height, and never less than a bar panel's.
func chartRowsPanelHeight(title string, legend []chartSeries, need int) int {
	top := chartHeaderBottom(image.Rect(0, 0, chartWidth, 0), title, legend) + chartRowsTop
	return max(chartPanelHeight, top+need+chartRowsBottom)
}

// chartRowHeight fits n rows plus gapPx into avail pixels, within lo..hi.
func chartRowHeight(avail, n, gapPx, lo, hi int) int {
	if n == 0 {
		return hi
	}
	return min(max((avail-gapPx)/n, lo), hi)
}

// chartRowLabels fits the row labels into a column at most ~35% of the
// panel wide, truncating longer ones, and returns the column's width.
func chartRowLabels(labels []string, panelW int) ([]string, int) {
	maxChars := panelW * 35 / 100 / chartCharAdvance
	out := make([]string, len(labels))
	w := 0
	for i, l := range labels {
		out[i] = chartTruncate(chartASCII(strings.TrimSpace(l)), maxChars)
		w = max(w, chartTextWidth(out[i]))
	}
	return out, w
}

// chartXOf maps v in 0..top to plot's left..right edge.
func chartXOf(plot image.Rectangle, top, v float64) int {
	if !(v > 0) || !(top > 0) {
		return plot.Min.X
	}
	return plot.Min.X + int(math.Round(min(v, top)/top*float64(plot.Dx())))
}

// drawChartXGrid draws the vertical grid lines of plot and the tick labels
// under it; the axis lines go on after the bars so they stay crisp.
func drawChartXGrid(img *image.RGBA, plot image.Rectangle, ticks []float64, unit string) {
	face := basicfont.Face7x13
	top := ticks[len(ticks)-1]
	for i, t := range ticks {
		x := chartXOf(plot, top, t)
		if i > 0 {
			chartFillRect(img, image.Rect(x, plot.Min.Y, x+1, plot.Max.Y), chartGrid)
		}
		chartFillRect(img, image.Rect(x, plot.Max.Y, x+1, plot.Max.Y+4), chartAxis)
		label := chartNumber(t) + unit
		chartDrawText(img, label, x-chartTextWidth(label)/2, plot.Max.Y+6+face.Ascent, chartText)
	}
}

func drawChartAxes(img *image.RGBA, plot image.Rectangle) {
	chartFillRect(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y+1), chartAxis)
	chartFillRect(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X+1, plot.Max.Y+1), chartAxis)
}

// chartTextMiddle is the baseline that centres a line of text on y.
func chartTextMiddle(y int) int {
	face := basicfont.Face7x13
	return y + (face.Ascent-face.Descent)/2
}

// chartTimelineRows drops the rows without an end: they have nothing to
// draw and take no space.
func chartTimelineRows(t *chartTimeline) []chartTimelineRow {
	var rows []chartTimelineRow
	for _, r := range t.Rows {
		if chartFinite(r.End) {
			rows = append(rows, r)
		}
	}
	return rows
}

// chartTimelineGaps counts the changes of series between rows.
func chartTimelineGaps(rows []chartTimelineRow) int {
	n := 0
	for i := 1; i < len(rows); i++ {
		if rows[i].Series != rows[i-1].Series {
			n++
		}
	}
	return n
}

func drawChartTimeline(img *image.RGBA, r image.Rectangle, p chartPanel) {
	legendBottom := drawChartHeader(img, r, p.Title, p.Series)
	rows := chartTimelineRows(p.Timeline)

	names := make([]string, len(rows))
	values := make([]string, len(rows))
	spans := make([][2]float64, len(rows))
	maxV, valueW := 0.0, 0
	for i, row := range rows {
		names[i] = row.Label
		start := row.Start
		if !chartFinite(start) || start < 0 {
			start = 0
		}
		end := max(row.End, 0)
		spans[i] = [2]float64{min(start, end), max(start, end)}
		maxV = max(maxV, spans[i][1])
		values[i] = chartNumber(row.End) + "s"
		valueW = max(valueW, chartTextWidth(values[i]))
	}
	labels, labelW := chartRowLabels(names, r.Dx())
	ticks := chartNiceTicks(maxV)
	top := ticks[len(ticks)-1]

	plotTop := legendBottom + chartRowsTop
	gaps := chartTimelineGaps(rows)
	rowH := chartRowHeight(r.Max.Y-chartRowsBottom-plotTop, len(rows), gaps*chartRowGap,
		chartTimelineRowMin, chartTimelineRowMax)
	// The end values print right of the bars, so the axis stops short of
	// the margin by the widest of them.
	plot := image.Rect(r.Min.X+chartPad+labelW+8, plotTop,
		r.Max.X-chartMarginRight-valueW-6, plotTop+len(rows)*rowH+gaps*chartRowGap+4)
	drawChartXGrid(img, plot, ticks, "s")

	barH := rowH - max(2, rowH/5)
	y := plotTop
	for i, row := range rows {
		if i > 0 && row.Series != rows[i-1].Series {
			y += chartRowGap
		}
		mid := y + rowH/2
		x0, x1 := chartXOf(plot, top, spans[i][0]), chartXOf(plot, top, spans[i][1])
		if spans[i][1] > spans[i][0] && x1 <= x0 {
			x1 = x0 + 1 // keep tiny phases visible
		}
		by := y + (rowH-barH)/2
		chartFillRect(img, image.Rect(x0, by, x1, by+barH), chartSeriesColor(row.Series))
		chartDrawText(img, labels[i], plot.Min.X-8-chartTextWidth(labels[i]), chartTextMiddle(mid), chartText)
		chartDrawText(img, values[i], x1+4, chartTextMiddle(mid), chartText)
		y += rowH
	}
	drawChartAxes(img, plot)
}

// chartStackOther is the part the smallest parts are merged into.
const chartStackOther = "other"

// chartStackLayout orders the part names by first appearance across the
// bars, which gives each its colour, and returns them with each bar's
// drawable parts (finite and positive). The palette has 8 colours, so
// with more names all but the 7 largest by total are merged into one
// "other" part at the end of each bar rather than repeating a colour.
func chartStackLayout(s *chartStack) (names []string, bars [][]chartStackPart) {
	drawable := func(v float64) bool { return chartFinite(v) && v > 0 }
	total := map[string]float64{}
	for _, b := range s.Bars {
		for _, pt := range b.Parts {
			if !drawable(pt.Value) {
				continue
			}
			if _, ok := total[pt.Name]; !ok {
				names = append(names, pt.Name)
			}
			total[pt.Name] += pt.Value
		}
	}
	keep := func(string) bool { return true }
	if len(names) > len(chartPalette) {
		ranked := slices.Clone(names)
		slices.SortStableFunc(ranked, func(a, b string) int { return cmp.Compare(total[b], total[a]) })
		kept := map[string]bool{}
		for _, n := range ranked[:len(chartPalette)-1] {
			kept[n] = true
		}
		keep = func(n string) bool { return kept[n] }
		names = slices.DeleteFunc(names, func(n string) bool { return !kept[n] })
		if !kept[chartStackOther] {
			names = append(names, chartStackOther)
		}
	}
	bars = make([][]chartStackPart, len(s.Bars))
	for i, b := range s.Bars {
		other := 0.0
		for _, pt := range b.Parts {
			switch {
			case !drawable(pt.Value):
			case keep(pt.Name):
				bars[i] = append(bars[i], pt)
			default:
				other += pt.Value
			}
		}
		if other > 0 {
			bars[i] = append(bars[i], chartStackPart{Name: chartStackOther, Value: other})
		}
	}
	return names, bars
}

// drawChartStack draws one bar per target; the unit is the title's, so the
// ticks and values are plain numbers.
func drawChartStack(img *image.RGBA, r image.Rectangle, p chartPanel) {
	names, bars := chartStackLayout(p.Stack)
	colour := map[string]color.RGBA{}
	for i, n := range names {
		colour[n] = chartSeriesColor(i)
	}
	legendBottom := drawChartHeader(img, r, p.Title, chartLegendNames(names))

	barNames := make([]string, len(bars))
	totals := make([]string, len(bars))
	maxV, totalW := 0.0, 0
	for i, parts := range bars {
		barNames[i] = p.Stack.Bars[i].Name
		sum := 0.0
		for _, pt := range parts {
			sum += pt.Value
		}
		maxV = max(maxV, sum)
		if len(parts) > 0 {
			totals[i] = chartNumber(sum)
			totalW = max(totalW, chartTextWidth(totals[i]))
		}
	}
	labels, labelW := chartRowLabels(barNames, r.Dx())
	ticks := chartNiceTicks(maxV)
	top := ticks[len(ticks)-1]

	plotTop := legendBottom + chartRowsTop
	rowH := chartRowHeight(r.Max.Y-chartRowsBottom-plotTop, len(bars), 0, chartStackRowMin, chartStackRowMax)
	plot := image.Rect(r.Min.X+chartPad+labelW+8, plotTop,
		r.Max.X-chartMarginRight-totalW-6, plotTop+len(bars)*rowH+4)
	drawChartXGrid(img, plot, ticks, "")

	barH := min(max(rowH*3/5, chartStackRowMin-6), 32)
	for i, parts := range bars {
		mid := plotTop + i*rowH + rowH/2
		by := mid - barH/2
		chartDrawText(img, labels[i], plot.Min.X-8-chartTextWidth(labels[i]), chartTextMiddle(mid), chartText)
		sum := 0.0
		for j, pt := range parts {
			x0, x1 := chartXOf(plot, top, sum), chartXOf(plot, top, sum+pt.Value)
			sum += pt.Value
			chartFillRect(img, image.Rect(x0, by, x1, by+barH), colour[pt.Name])
			if j > 0 && x1-x0 >= 3 {
				// A hairline keeps two parts of one colour apart.
				chartFillRect(img, image.Rect(x0, by, x0+1, by+barH), chartWhite)
			}
			text := chartNumber(pt.Value)
			if w := chartTextWidth(text); x1-x0 >= w+6 {
				chartDrawHaloText(img, text, (x0+x1-w)/2, chartTextMiddle(mid))
			}
		}
		if len(parts) > 0 {
			chartDrawText(img, totals[i], chartXOf(plot, top, sum)+4, chartTextMiddle(mid), chartText)
		}
	}
	drawChartAxes(img, plot)
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
	const spacing = chartLegendGap
	w := 0
	for i, s := range series {
		if i > 0 {
			w += spacing
		}
		w += chartLegendEntryWidth(s.Name)
	}
	return w
}

// chartLegendNames makes legend entries for names, coloured by index.
func chartLegendNames(names []string) []chartSeries {
	s := make([]chartSeries, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	return s
}

// chartLegendRows splits the legend entries into rows at most width wide.
func chartLegendRows(series []chartSeries, width int) [][]int {
	const spacing = chartLegendGap
	if len(series) == 0 {
		return nil
	}
	var rows [][]int
	var row []int
	rowW := 0
	for i, s := range series {
		w := chartLegendEntryWidth(s.Name)
		if len(row) > 0 && rowW+spacing+w > width {
			rows, row, rowW = append(rows, row), nil, 0
		}
		if len(row) > 0 {
			rowW += spacing
		}
		row, rowW = append(row, i), rowW+w
	}
	return append(rows, row)
}

// drawChartLegend lays the entries out right-aligned at right, wrapping onto
// further rows when they would pass left, and returns the bottom y of the
// last row.
func drawChartLegend(img *image.RGBA, series []chartSeries, right, left, baseline int) int {
	const spacing = chartLegendGap
	face := basicfont.Face7x13
	// Split into rows first so every row can be right-aligned.
	rows := chartLegendRows(series, right-left)
	if len(rows) == 0 {
		return baseline + face.Descent
	}

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
