// Command chart draws the results of the peer benchmarks (BenchmarkPeers in
// the bench module) as SVG charts, one file per question:
//
//	overhead.svg  per-item cost of trivial work, by contestant (log scale)
//	latency.svg   1ms sleeps: wall time over the ideal ceil(n/c) sleeps
//	stream.svg    1,000,000 streamed items: peak heap and peak goroutines
//	cpu.svg       about 1µs of arithmetic per item: speed-up over the loop
//	bimodal.svg   4,000 inputs of which 42 sleep 5ms (BenchmarkBimodal):
//	              wall time over the ideal, and the p99 hand-over
//
// Usage:
//
//	go run ./cmd/chart [-out dir] [-png] results.txt...
//
// The input is `go test -bench` output, any number of runs of each
// benchmark (-count): a point is the median of the runs, its whiskers span
// the fastest and slowest run. With -png the charts are also written as PNG
// next to the SVGs, to look at them without a browser.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/perf/benchfmt"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

func main() {
	out := flag.String("out", "../docs/img", "directory to write the charts to")
	png := flag.Bool("png", false, "also write every chart as PNG")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: chart [-out dir] [-png] results.txt...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("chart: ")

	rs, err := readFiles(flag.Args())
	if err != nil {
		log.Fatal(err)
	}
	if len(rs.impls) == 0 {
		log.Fatal("no BenchmarkPeers or BenchmarkBimodal results in the input")
	}
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	charts := []struct {
		name string
		make func(*results) (figure, error)
	}{
		{"overhead", overheadChart},
		{"latency", latencyChart},
		{"stream", streamChart},
		{"cpu", cpuChart},
		{"bimodal", bimodalChart},
	}
	for _, ch := range charts {
		fig, err := ch.make(rs)
		if err != nil {
			log.Printf("%s: %v: skipped", ch.name, err)
			continue
		}
		formats := []string{"svg"}
		if *png {
			formats = append(formats, "png")
		}
		for _, format := range formats {
			file := filepath.Join(*out, ch.name+"."+format)
			if err := fig.save(file, format); err != nil {
				log.Fatal(err)
			}
			fmt.Println(file)
		}
	}
}

// key names one sub-benchmark: BenchmarkPeers/work=<work>/c=<c>/impl=<impl>,
// or BenchmarkBimodal/work=bimodal/c=<c>/impl=<impl>.
type key struct {
	work string
	c    int
	impl string
}

type results struct {
	samples map[key]map[string][]float64 // unit → one value per run
	impls   []string                     // in order of first appearance
}

// readFiles reads go test -bench output and keeps the BenchmarkPeers and
// BenchmarkBimodal results, in their original units (ns/item, not benchfmt's sec/item).
func readFiles(files []string) (*results, error) {
	rs := &results{samples: make(map[key]map[string][]float64)}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		r := benchfmt.NewReader(f, file)
		for r.Scan() {
			res, ok := r.Result().(*benchfmt.Result)
			if !ok {
				continue // a syntax error or unit metadata
			}
			k, ok := parseName(string(res.Name.Full()))
			if !ok {
				continue
			}
			if !slices.Contains(rs.impls, k.impl) {
				rs.impls = append(rs.impls, k.impl)
			}
			m := rs.samples[k]
			if m == nil {
				m = make(map[string][]float64)
				rs.samples[k] = m
			}
			for _, v := range res.Values {
				unit, value := v.Unit, v.Value
				if v.OrigUnit != "" { // benchfmt tidied it, to sec/item for instance
					unit, value = v.OrigUnit, v.OrigValue
				}
				m[unit] = append(m[unit], value)
			}
		}
		err = r.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// parseName parses "Peers/work=trivial/c=8/impl=fofi.Run-2" or
// "Bimodal/work=bimodal/c=8/impl=fofi.Run-2" (benchfmt drops the
// "Benchmark" prefix).
func parseName(name string) (key, bool) {
	name = strings.TrimPrefix(name, "Benchmark")
	rest, ok := strings.CutPrefix(name, "Peers/")
	if !ok {
		rest, ok = strings.CutPrefix(name, "Bimodal/")
	}
	if !ok {
		return key{}, false
	}
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		if _, err := strconv.Atoi(rest[i+1:]); err == nil {
			rest = rest[:i] // the -GOMAXPROCS suffix
		}
	}
	var k key
	for part := range strings.SplitSeq(rest, "/") {
		name, value, _ := strings.Cut(part, "=")
		switch name {
		case "work":
			k.work = value
		case "c":
			k.c, _ = strconv.Atoi(value)
		case "impl":
			k.impl = value
		}
	}
	return k, k.work != "" && k.c > 0 && k.impl != ""
}

// stat is the median of a sub-benchmark's runs and their range.
type stat struct{ med, min, max float64 }

func (rs *results) stat(k key, unit string) (stat, bool) {
	v := slices.Clone(rs.samples[k][unit])
	if len(v) == 0 {
		return stat{}, false
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med, v[0], v[len(v)-1]}, true
}

// Chart building.

// labels annotates contestants whose result needs a word of explanation
// right where it is drawn.
var labels = map[string]string{
	"lo.parallel.Map": "lo.parallel.Map (no limit)",
}

func label(impl string) string {
	if l, ok := labels[impl]; ok {
		return l
	}
	return impl
}

// series is one set of points of a dot plot: a value per contestant.
type series struct {
	name   string
	points map[string]stat // by contestant
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, // blue
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, // red
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, // green
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, // purple
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{},
}

// dotPlot makes a horizontal dot plot: one row per contestant, top to
// bottom in the order of impls, one glyph per series, whiskers from the
// fastest to the slowest run. Rows with no point in any series are left
// out.
func dotPlot(title, xlabel string, impls []string, ss []series, logX bool) (*plot.Plot, []string) {
	return dotPlotNamed(title, xlabel, impls, ss, logX, true)
}

// dotPlotNamed is dotPlot, with the rows left unnamed unless named is true
// (for the second and later panels of a figure).
func dotPlotNamed(title, xlabel string, impls []string, ss []series, logX, named bool) (*plot.Plot, []string) {
	var rows []string
	for _, impl := range impls {
		for _, s := range ss {
			if _, ok := s.points[impl]; ok {
				rows = append(rows, impl)
				break
			}
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.Title.Padding = vg.Points(8)
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = decadeTicks{}
		// gonum centres an axis label at the arithmetic middle of the
		// range, which on a log scale is near its right end, and then
		// shrinks the plot to make room for it: say it in the title.
		p.Title.Text += "\n" + xlabel
	} else {
		p.X.Label.Text = xlabel
	}
	names := make([]string, len(rows))
	for i, impl := range rows {
		if named {
			names[len(rows)-1-i] = label(impl) // row 0 is at the bottom
		}
	}
	if len(names) > 0 {
		p.NominalY(names...)
	}
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{0xdd}
	grid.Horizontal.Color = color.Gray{0xee}
	p.Add(grid)

	for j, s := range ss {
		var pts plotter.XYs
		var errs plotter.XErrors
		for i, impl := range rows {
			st, ok := s.points[impl]
			if !ok {
				continue
			}
			// Series are spread over the row so that equal values do
			// not hide each other.
			y := float64(len(rows)-1-i) + (float64(j)-float64(len(ss)-1)/2)*0.2
			pts = append(pts, plotter.XY{X: st.med, Y: y})
			errs = append(errs, struct{ Low, High float64 }{st.med - st.min, st.max - st.med})
		}
		if len(pts) == 0 {
			continue
		}
		// Whiskers first, so that the glyph is drawn over them; none
		// for a single run.
		if slices.ContainsFunc(errs, func(e struct{ Low, High float64 }) bool { return e.Low > 0 || e.High > 0 }) {
			eb, err := plotter.NewXErrorBars(struct {
				plotter.XYs
				plotter.XErrors
			}{pts, errs})
			if err != nil {
				log.Fatal(err)
			}
			eb.LineStyle.Color = palette[j%len(palette)]
			eb.CapWidth = vg.Points(5)
			p.Add(eb)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			log.Fatal(err)
		}
		sc.GlyphStyle.Color = palette[j%len(palette)]
		sc.GlyphStyle.Shape = shapes[j%len(shapes)]
		sc.GlyphStyle.Radius = vg.Points(3.5)
		p.Add(sc)
		if s.name != "" {
			p.Legend.Add(s.name, sc)
		}
	}
	if logX && p.X.Min > 0 {
		// Whole decades, so that both ends of the axis are labelled and
		// no glyph sits on the edge.
		p.X.Min = math.Pow(10, math.Floor(math.Log10(p.X.Min)))
		p.X.Max = math.Pow(10, math.Ceil(math.Log10(p.X.Max*1.2)))
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(11)
	return p, rows
}

// refLine adds a dashed vertical line at x with a label at its top.
func refLine(p *plot.Plot, x float64, rows int, text string) {
	l, err := plotter.NewLine(plotter.XYs{{X: x, Y: -0.5}, {X: x, Y: float64(rows) - 0.5}})
	if err != nil {
		log.Fatal(err)
	}
	l.LineStyle.Color = color.Gray{0x66}
	l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	if text != "" {
		lb, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    plotter.XYs{{X: x, Y: float64(rows) - 0.5}},
			Labels: []string{text},
		})
		if err != nil {
			log.Fatal(err)
		}
		for i := range lb.TextStyle {
			lb.TextStyle[i].Font.Size = vg.Points(9)
			lb.TextStyle[i].Color = color.Gray{0x44}
			lb.TextStyle[i].XAlign = draw.XCenter
		}
		lb.Offset = vg.Point{Y: vg.Points(2)}
		p.Add(lb)
	}
}

// collect gathers one unit of one workload at concurrency c, transformed
// by f (nil: as is).
func (rs *results) collect(work string, c int, unit string, f func(impl string, s stat) (stat, bool)) map[string]stat {
	m := make(map[string]stat)
	for _, impl := range rs.impls {
		s, ok := rs.stat(key{work, c, impl}, unit)
		if !ok {
			continue
		}
		if f != nil {
			if s, ok = f(impl, s); !ok {
				continue
			}
		}
		m[impl] = s
	}
	return m
}

// concurrencies returns the values of c that a workload was run at.
func (rs *results) concurrencies(work string) []int {
	var cs []int
	for k := range rs.samples {
		if k.work == work && !slices.Contains(cs, k.c) {
			cs = append(cs, k.c)
		}
	}
	slices.Sort(cs)
	return cs
}

func overheadChart(rs *results) (figure, error) {
	var ss []series
	for _, c := range rs.concurrencies("trivial") {
		ss = append(ss, series{fmt.Sprintf("c=%d", c), rs.collect("trivial", c, "ns/item", nil)})
	}
	for _, c := range rs.concurrencies("trivial-ordered") {
		ss = append(ss, series{fmt.Sprintf("c=%d, ordered workload", c), rs.collect("trivial-ordered", c, "ns/item", nil)})
	}
	if len(ss) == 0 {
		return figure{}, errors.New("no work=trivial results")
	}
	p, rows := dotPlot("Cost per item of fanning x*2 out and in, 10,000 items",
		"wall time per item in ns, log scale: lower is better", rs.impls, ss, true)
	return figure{plots: [][]*plot.Plot{{p}}, w: 8 * vg.Inch, h: rowsHeight(rows)}, nil
}

func latencyChart(rs *results) (figure, error) {
	var ss []series
	for _, c := range rs.concurrencies("sleep1ms") {
		ss = append(ss, series{fmt.Sprintf("c=%d", c), rs.collect("sleep1ms", c, "wall/ideal", boundedOnly)})
	}
	if len(ss) == 0 {
		return figure{}, errors.New("no work=sleep1ms results")
	}
	p, rows := dotPlot("Latency-bound work: 200 sleeps of 1ms\n(lo.parallel.Map, which has no limit and sleeps 200 at once, is left out)",
		"wall time / ideal ceil(n/c) sleeps (1 is perfect; lower is better)", rs.impls, ss, false)
	p.X.Min = 0
	refLine(p, 1, len(rows), "ideal")
	p.X.Max = max(p.X.Max*1.05, 1.2)
	return figure{plots: [][]*plot.Plot{{p}}, w: 8 * vg.Inch, h: rowsHeight(rows)}, nil
}

// boundedOnly leaves out the contestants that ignore c: under a
// concurrency limit they have no ideal to be measured against.
func boundedOnly(impl string, s stat) (stat, bool) {
	return s, impl != "lo.parallel.Map"
}

func cpuChart(rs *results) (figure, error) {
	var ss []series
	for _, c := range rs.concurrencies("cpu1us") {
		loop, ok := rs.stat(key{"cpu1us", c, "loop"}, "ns/item")
		if !ok {
			continue
		}
		speedup := func(impl string, s stat) (stat, bool) {
			if impl == "loop" {
				return stat{}, false
			}
			return stat{loop.med / s.med, loop.med / s.max, loop.med / s.min}, true
		}
		ss = append(ss, series{fmt.Sprintf("c=%d", c), rs.collect("cpu1us", c, "ns/item", speedup)})
	}
	if len(ss) == 0 {
		return figure{}, errors.New("no work=cpu1us results with a loop baseline")
	}
	p, rows := dotPlot("CPU-bound work: about 1µs of arithmetic per item, 10,000 items",
		"speed-up over the sequential loop (higher is better)", rs.impls, ss, false)
	p.X.Min = 0
	refLine(p, 1, len(rows), "loop")
	refLine(p, 2, len(rows), "2 cores")
	p.X.Max = max(p.X.Max, 2) * 1.05
	return figure{plots: [][]*plot.Plot{{p}}, w: 8 * vg.Inch, h: rowsHeight(rows)}, nil
}

// bimodalChart draws BenchmarkBimodal: wall time over the ideal, and the
// p99 hand-over, both on log scales, for the wall time ranges from the
// ideal to twenty times it and the hand-over from microseconds to the
// whole run.
func bimodalChart(rs *results) (figure, error) {
	// A log scale cannot show 0: a hand-over under 1µs is drawn at 1µs.
	floor := func(impl string, s stat) (stat, bool) {
		const min = 1e-3
		return stat{max(s.med, min), max(s.min, min), max(s.max, min)}, impl != "lo.parallel.Map"
	}
	var walls, handovers []series
	for _, c := range rs.concurrencies("bimodal") {
		walls = append(walls, series{fmt.Sprintf("c=%d", c), rs.collect("bimodal", c, "wall/ideal", boundedOnly)})
		// The same colours as the first panel, whose legend names them.
		handovers = append(handovers, series{"", rs.collect("bimodal", c, "p99-handover-ms", floor)})
	}
	if len(walls) == 0 {
		return figure{}, errors.New("no work=bimodal results")
	}
	wp, rows := dotPlot("Wall time", "over the ideal ceil(42/c) sleeps, log scale (1 is perfect)",
		rs.impls, walls, true)
	wp.X.Min = min(wp.X.Min, 0.9)
	refLine(wp, 1, len(rows), "ideal")
	hp, _ := dotPlotNamed("p99 hand-over", "from work's return to consume, ms, log scale (<1µs at 1µs)",
		rs.impls, handovers, true, false)
	hp.X.Tick.Marker = decadeTicks{maxLabels: 5}
	fig := figure{plots: [][]*plot.Plot{{wp, hp}}, w: 11 * vg.Inch, h: rowsHeight(rows) + 0.3*vg.Inch}
	fig.title = "Bimodal work: 4,000 inputs, 42 of them sleep 5ms, the rest x*2 (lo.parallel.Map, which has no limit, is left out)"
	return fig, nil
}

func streamChart(rs *results) (figure, error) {
	cs := rs.concurrencies("stream")
	if len(cs) == 0 {
		return figure{}, errors.New("no work=stream results")
	}
	c := cs[0]
	// Log scales cannot show 0: a peak of 0 is drawn at the axis floor.
	floor := func(min float64) func(string, stat) (stat, bool) {
		return func(_ string, s stat) (stat, bool) {
			return stat{max(s.med, min), max(s.min, min), max(s.max, min)}, true
		}
	}
	heap := rs.collect("stream", c, "peak-heap-B", floor(1e3))
	gs := rs.collect("stream", c, "peak-goroutines", floor(1))
	if len(heap) == 0 || len(gs) == 0 {
		return figure{}, errors.New("no peak-heap-B or peak-goroutines metric")
	}
	nsPerItem := rs.collect("stream", c, "ns/item", nil)
	hp, _ := dotPlot("Peak heap", "above the start, log scale",
		rs.impls, []series{{"", heap}}, true)
	hp.X.Tick.Marker = decadeTicks{format: bytes10, maxLabels: 4}
	gp, _ := dotPlotNamed("Peak goroutines", "above the start, log scale (0 at 1)",
		rs.impls, []series{{"", gs}}, true, false)
	tp, rows := dotPlotNamed("Wall time per item", "ns, log scale",
		rs.impls, []series{{"", nsPerItem}}, true, false)
	gp.X.Tick.Marker = decadeTicks{maxLabels: 5}
	tp.X.Tick.Marker = decadeTicks{maxLabels: 5}
	fig := figure{plots: [][]*plot.Plot{{hp, gp, tp}}, w: 11 * vg.Inch, h: rowsHeight(rows) + 0.3*vg.Inch}
	fig.title = fmt.Sprintf("Streaming x*2 over %s items from an iterator, c=%d", itemsOf(rs, c), c)
	return fig, nil
}

// itemsOf reads the number of items of the stream workload from its ns/op
// and ns/item.
func itemsOf(rs *results, c int) string {
	for _, impl := range rs.impls {
		op, ok1 := rs.stat(key{"stream", c, impl}, "ns/op")
		item, ok2 := rs.stat(key{"stream", c, impl}, "ns/item")
		if ok1 && ok2 && item.med > 0 {
			// The timer stops around each run's set-up, so the ratio
			// is close to n, not exact: two significant digits.
			n := op.med / item.med
			p := math.Pow(10, math.Floor(math.Log10(n))-1)
			n = math.Round(n/p) * p
			if n >= 1e6 {
				return fmt.Sprintf("%g million", n/1e6)
			}
			return fmt.Sprintf("%.0f", n)
		}
	}
	return "n"
}

// decadeTicks marks a log axis at every power of ten, with minor ticks in
// between, and labels every power, or every other one if there are more
// than maxLabels, so that labels do not run into each other on a narrow
// panel.
type decadeTicks struct {
	format    func(float64) string // nil: %g
	maxLabels int                  // 0: 8
}

func (d decadeTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
	maxLabels := d.maxLabels
	if maxLabels == 0 {
		maxLabels = 8
	}
	every := math.Ceil((hi - lo + 1) / float64(maxLabels))
	var ts []plot.Tick
	for e := lo; e <= hi; e++ {
		v := math.Pow(10, e)
		if v >= min && v <= max {
			var l string
			if math.Mod(e-lo, every) == 0 {
				if d.format != nil {
					l = d.format(v)
				} else {
					l = fmt.Sprintf("%g", v)
				}
			}
			ts = append(ts, plot.Tick{Value: v, Label: l})
		}
		for m := 2.0; m < 10; m++ {
			if mv := m * v; mv >= min && mv <= max {
				ts = append(ts, plot.Tick{Value: mv})
			}
		}
	}
	return ts
}

// bytes10 formats a power of ten of bytes: 1 kB, 10 MB, ...
func bytes10(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%g GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%g MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%g kB", v/1e3)
	}
	return fmt.Sprintf("%g B", v)
}

func rowsHeight(rows []string) vg.Length {
	return vg.Length(len(rows))*0.32*vg.Inch + 1.4*vg.Inch
}

// figure is one chart file: plots laid out in a grid, with an optional
// title over all of them.
type figure struct {
	plots [][]*plot.Plot
	w, h  vg.Length
	title string
}

func (f figure) save(file, format string) error {
	var c vg.CanvasWriterTo
	switch format {
	case "svg":
		c = vgsvg.New(f.w, f.h)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.w, f.h), vgimg.UseDPI(120))}
	default:
		return fmt.Errorf("unknown format %q", format)
	}
	dc := draw.New(c)
	if f.title != "" {
		sty := draw.TextStyle{
			Color:   color.Black,
			Font:    font.From(plot.DefaultFont, 14),
			XAlign:  draw.XCenter,
			YAlign:  draw.YTop,
			Handler: plot.DefaultTextHandler,
		}
		dc.FillText(sty, vg.Point{X: f.w / 2, Y: f.h - vg.Points(6)}, f.title)
		dc.Max.Y -= vg.Points(26)
	}
	// The legend of a single plot goes in a column of its own on the
	// right, where it cannot hide a point.
	if len(f.plots) == 1 && len(f.plots[0]) == 1 {
		p := f.plots[0][0]
		leg := p.Legend
		p.Legend = plot.NewLegend()
		defer func() { p.Legend = leg }() // save may be called again
		if r := leg.Rectangle(dc); r.Max.X > r.Min.X {
			w := r.Max.X - r.Min.X + vg.Points(16)
			lc := dc
			lc.Min.X = dc.Max.X - w
			lc.Max.Y -= vg.Points(30) // level with the top of the data
			l := leg
			l.Top, l.Left = true, true
			l.Draw(lc)
			dc.Max.X -= w
		}
	}
	rows, cols := len(f.plots), len(f.plots[0])
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(16), PadY: vg.Points(8),
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(12)}
	canvases := plot.Align(f.plots, tiles, dc)
	for i := range f.plots {
		for j, p := range f.plots[i] {
			p.Draw(canvases[i][j])
		}
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return err
	}
	b := buf.Bytes()
	if format == "svg" {
		// The layout was measured with Liberation Sans, which has Arial's
		// metrics: let a viewer without it fall back to Arial or
		// Helvetica, not to its default serif.
		b = bytes.ReplaceAll(b, []byte("font-family:Liberation Sans;"),
			[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
	}
	return os.WriteFile(file, b, 0o644)
}
