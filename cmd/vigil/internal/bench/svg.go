package bench

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart geometry.
const (
	chartWidth   = 30 * vg.Centimeter
	chartHeight  = 14 * vg.Centimeter
	legendWidth  = 5.5 * vg.Centimeter
	groupWidth   = 0.84 // of one workload's slot on the x axis
	swatchLength = 0.35 * vg.Centimeter
)

// mechanismColors keeps each mechanism's colour the same across charts, so
// two runs' charts can be read side by side.
var mechanismColors = map[string]color.RGBA{
	"bare":                                 {0x7f, 0x7f, 0x7f, 0xff},
	"filter-only":                          {0xbc, 0xbd, 0x22, 0xff},
	"vigil-deny":                           {0xd6, 0x27, 0x28, 0xff},
	"vigil-allow-unverified":               {0xff, 0x7f, 0x0e, 0xff},
	"vigil-passthrough":                    {0x2c, 0xa0, 0x2c, 0xff},
	"vigil-allow-bound":                    {0x94, 0x67, 0xbd, 0xff},
	"vigil-allow-bound-settled":            {0xc5, 0xb0, 0xd5, 0xff},
	"vigil-observe":                        {0xe3, 0x77, 0xc2, 0xff},
	"refsup":                               {0x1f, 0x77, 0xb4, 0xff},
	"refsup-resolve":                       {0xae, 0xc7, 0xe8, 0xff},
	"refsup-emulate":                       {0x8c, 0x56, 0x4b, 0xff},
	"refsup-resolve-emulate":               {0xc4, 0x9c, 0x94, 0xff},
	"strace":                               {0x17, 0xbe, 0xcf, 0xff},
	"strace-seccomp-bpf":                   {0x9e, 0xda, 0xe5, 0xff},
	"bare-beside-vigil":                    {0xc7, 0xc7, 0xc7, 0xff},
	"bare-beside-vigil-attached":           {0x52, 0x52, 0x52, 0xff},
	"refsup-resolve-beside-vigil-attached": {0x39, 0x3b, 0x79, 0xff},
}

// WriteSVGFile writes the chart of r to the named file.
func (r *Results) WriteSVGFile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if err := r.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// WriteSVG draws a grouped bar chart: one group per workload, one bar per
// mechanism, ns/op on a log scale (the workloads span five decades, from
// getpid to exec), whiskers from the fastest to the slowest repetition, and
// the legend beside the plot.
func (r *Results) WriteSVG(w io.Writer) error {
	if len(r.Results) == 0 {
		return fmt.Errorf("drawing chart: no results")
	}
	bars := newGroupedBars(r.Results)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("vigil bench · kernel %s · %d CPUs · %s", r.Kernel, r.CPUs, r.Time.Format("2006-01-02"))
	// A longer rotated label would shrink gonum's plot area to its length.
	p.Y.Label.Text = "time per operation"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = decadeTicks{}
	p.Y.Min, p.Y.Max = bars.base, bars.top
	p.NominalX(bars.workloads...)
	p.X.Min, p.X.Max = -0.5, float64(len(bars.workloads))-0.5
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid, bars)

	c := vgsvg.New(chartWidth, chartHeight)
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	reps := r.Results[0].Reps
	drawLegend(draw.Crop(dc, chartWidth-legendWidth, 0, 0, 0), p.Legend.TextStyle, bars.series,
		fmt.Sprintf("bars: median of %d reps", reps), "whiskers: min–max", "hollow: call denied")
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	return nil
}

// series is one mechanism's bars, one value per workload.
type series struct {
	name        string
	color       color.Color
	val, lo, hi []float64
	ok, denied  []bool
}

// groupedBars is a plot.Plotter drawing every series side by side within
// each workload's slot, from the bottom of the axis up.
type groupedBars struct {
	workloads []string
	series    []series
	base, top float64
}

func newGroupedBars(results []Result) *groupedBars {
	g := &groupedBars{}
	wIdx, mIdx := map[string]int{}, map[string]int{}
	for _, x := range results {
		if _, ok := wIdx[x.Workload]; !ok {
			wIdx[x.Workload] = len(g.workloads)
			g.workloads = append(g.workloads, x.Workload)
		}
		if _, ok := mIdx[x.Mechanism]; !ok {
			mIdx[x.Mechanism] = len(g.series)
			clr, known := mechanismColors[x.Mechanism]
			if !known {
				clr = color.RGBA{0x30, 0x30, 0x30, 0xff}
			}
			g.series = append(g.series, series{name: x.Mechanism, color: clr})
		}
	}
	lo, hi := math.Inf(1), 0.0
	for i := range g.series {
		s := &g.series[i]
		n := len(g.workloads)
		s.val, s.lo, s.hi = make([]float64, n), make([]float64, n), make([]float64, n)
		s.ok, s.denied = make([]bool, n), make([]bool, n)
	}
	for _, x := range results {
		if x.NsPerOpMedian <= 0 {
			continue // cannot be drawn on a log scale
		}
		s, j := &g.series[mIdx[x.Mechanism]], wIdx[x.Workload]
		s.val[j], s.lo[j], s.hi[j], s.ok[j] = x.NsPerOpMedian, x.NsMin, x.NsMax, true
		s.denied[j] = x.Outcome == "denied"
		lo = math.Min(lo, math.Min(x.NsPerOpMedian, positiveOr(x.NsMin, x.NsPerOpMedian)))
		hi = math.Max(hi, math.Max(x.NsPerOpMedian, x.NsMax))
	}
	if math.IsInf(lo, 1) {
		lo, hi = 1, 10
	}
	// The axis starts at least a factor 3 below the smallest bar, so even
	// that bar has a visible height.
	g.base = math.Pow(10, math.Floor(math.Log10(lo/3)))
	g.top = math.Pow(10, math.Ceil(math.Log10(hi)))
	if g.top <= g.base {
		g.top = g.base * 10
	}
	return g
}

// faded returns clr at a quarter of its strength over white.
func faded(clr color.Color) color.Color {
	r, g, b, _ := clr.RGBA()
	mix := func(v uint32) uint8 { return uint8(0xff - (0xff-v>>8)/4) }
	return color.RGBA{mix(r), mix(g), mix(b), 0xff}
}

func positiveOr(x, fallback float64) float64 {
	if x > 0 {
		return x
	}
	return fallback
}

// Plot implements plot.Plotter.
func (g *groupedBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	bw := groupWidth / float64(len(g.series))
	whisker := draw.LineStyle{Color: color.Black, Width: vg.Points(0.7)}
	for i, s := range g.series {
		for j := range g.workloads {
			if !s.ok[j] {
				continue
			}
			x0 := float64(j) - groupWidth/2 + float64(i)*bw
			x1 := x0 + bw*0.92
			y0, y1 := trY(g.base), trY(s.val[j])
			box := c.ClipPolygonY([]vg.Point{
				{X: trX(x0), Y: y0}, {X: trX(x1), Y: y0}, {X: trX(x1), Y: y1}, {X: trX(x0), Y: y1},
			})
			if s.denied[j] {
				// Hollow: the operation was refused, so the bar is the
				// cost of a denial, not of the call.
				c.FillPolygon(faded(s.color), box)
				c.StrokeLines(draw.LineStyle{Color: s.color, Width: vg.Points(1.2)}, append(box, box[0]))
			} else {
				c.FillPolygon(s.color, box)
			}
			xm := trX((x0 + x1) / 2)
			lo, hi := math.Max(s.lo[j], g.base), math.Max(s.hi[j], g.base)
			c.StrokeLine2(whisker, xm, trY(lo), xm, trY(hi))
		}
	}
}

// DataRange implements plot.DataRanger.
func (g *groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(len(g.workloads)) - 0.5, g.base, g.top
}

// drawLegend lists the series top-down with a colour swatch each, then the
// notes.
func drawLegend(c draw.Canvas, sty draw.TextStyle, ss []series, notes ...string) {
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	step := sty.FontExtents().Height * 1.6
	x := c.Min.X + vg.Centimeter*0.3
	y := c.Max.Y - vg.Centimeter*1.5
	for _, s := range ss {
		c.FillPolygon(s.color, []vg.Point{
			{X: x, Y: y - swatchLength/2}, {X: x + swatchLength, Y: y - swatchLength/2},
			{X: x + swatchLength, Y: y + swatchLength/2}, {X: x, Y: y + swatchLength/2},
		})
		c.FillText(sty, vg.Point{X: x + swatchLength*1.6, Y: y}, s.name)
		y -= step
	}
	y -= step / 2
	for _, n := range notes {
		c.FillText(sty, vg.Point{X: x, Y: y}, n)
		y -= step
	}
}

// decadeTicks labels powers of ten with a time unit (10 ns, 1 µs, 1 ms) and
// marks the values between them without labels.
type decadeTicks struct{}

// Ticks implements plot.Ticker.
func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		d := math.Pow(10, e)
		if d >= lo && d <= hi {
			ts = append(ts, plot.Tick{Value: d, Label: decadeLabel(d)})
		}
		for k := 2.0; k <= 9; k++ {
			if v := k * d; v > lo && v < hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

func decadeLabel(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%g s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%g µs", ns/1e3)
	}
	return fmt.Sprintf("%g ns", ns)
}
