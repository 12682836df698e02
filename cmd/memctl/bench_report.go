package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/libmemcached-go/libmemcached"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// machineInfo describes where a run happened.
type machineInfo struct {
	CPUModel            string   `json:"cpu_model"`
	Cores               int      `json:"cores"`
	Kernel              string   `json:"kernel"`
	OSArch              string   `json:"os_arch"`
	GoVersion           string   `json:"go_version"`
	Libmemcached        string   `json:"libmemcached_headers"`
	LibmemcachedRuntime string   `json:"libmemcached_runtime"`
	MemcachedVersions   []string `json:"memcached_versions"`
	Date                string   `json:"date"`
}

func collectMachineInfo(servers []string) machineInfo {
	m := machineInfo{
		CPUModel:            cpuModel(),
		Cores:               runtime.NumCPU(),
		Kernel:              kernelRelease(),
		OSArch:              runtime.GOOS + "/" + runtime.GOARCH,
		GoVersion:           runtime.Version(),
		Libmemcached:        libmemcached.LibraryVersion,
		LibmemcachedRuntime: cfloorLibVersion(),
		Date:                time.Now().Format(time.RFC3339),
	}
	if mc, err := libmemcached.New(servers); err == nil {
		v, _ := mc.Version()
		seen := map[string]bool{}
		for _, s := range servers {
			for srv, ver := range v {
				if (srv == s || strings.HasSuffix(s, srv) || strings.HasPrefix(srv, s)) && !seen[srv] {
					seen[srv] = true
					m.MemcachedVersions = append(m.MemcachedVersions, ver)
				}
			}
		}
		for srv, ver := range v {
			if !seen[srv] {
				m.MemcachedVersions = append(m.MemcachedVersions, ver)
			}
		}
		mc.Close()
	}
	if len(m.MemcachedVersions) == 0 {
		m.MemcachedVersions = []string{"unknown"}
	}
	return m
}

// distinct returns vs without repeats, in order: the servers' versions,
// once each.
func distinct(vs []string) []string {
	var out []string
	for _, v := range vs {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// writeJSON writes the run's results.
func writeJSON(path string, res *benchResult) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ---------------------------------------------------------------------------
// The chart

// chartColors are the clients' colors (colorblind-safe, Okabe-Ito).
var chartColors = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{0, 158, 115, 255},   // green
	color.RGBA{120, 210, 170, 255}, // light green
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{204, 121, 167, 255}, // purple
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{90, 90, 90, 255},    // grey
}

// ratioBars draws one client's ratios as bars that start at 1 (the
// baseline), so that on a log scale a faster client's bar goes up and a
// slower one's goes down by the same length for the same factor.
type ratioBars struct {
	values       []float64 // by scenario index; 0: no value
	offset, wide vg.Length
	fill         color.Color
}

func (b *ratioBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	base := trY(1)
	for i, v := range b.values {
		if v <= 0 {
			continue
		}
		x := trX(float64(i)) + b.offset
		y := trY(v)
		lo, hi := min(base, y), max(base, y)
		if hi-lo < 1 {
			hi = lo + 1
		}
		pts := []vg.Point{{X: x - b.wide/2, Y: lo}, {X: x - b.wide/2, Y: hi}, {X: x + b.wide/2, Y: hi}, {X: x + b.wide/2, Y: lo}}
		c.FillPolygon(b.fill, c.ClipPolygonXY(pts))
		outline := draw.LineStyle{Color: color.Black, Width: vg.Points(0.4)}
		c.StrokeLines(outline, c.ClipLinesXY(append(pts, pts[0]))...)
	}
}

func (b *ratioBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = 0, float64(len(b.values)-1)
	ymin, ymax = 1, 1
	for _, v := range b.values {
		if v > 0 {
			ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
		}
	}
	return
}

func (b *ratioBars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y}}
	c.FillPolygon(b.fill, c.ClipPolygonY(pts))
}

// ratioTicks marks 1/16x ... 64x: powers of two, labelled as factors.
type ratioTicks struct{}

func (ratioTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := -6; e <= 8; e++ {
		v := math.Pow(2, float64(e))
		if v < lo/1.01 || v > hi*1.01 {
			continue
		}
		label := fmt.Sprintf("%gx", v)
		ts = append(ts, plot.Tick{Value: v, Label: label})
		if e < 8 {
			// Unlabelled minor ticks at 1.5 times the power of two.
			if m := v * 1.5; m >= lo && m <= hi {
				ts = append(ts, plot.Tick{Value: m})
			}
		}
	}
	return ts
}

// writeChart draws the ratios to gomemcache as a grouped bar chart.
func writeChart(path string, res *benchResult) error {
	var scenarios, clients []string
	for _, r := range res.Rows {
		if !contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
		if r.Client != baselineClient && !contains(clients, r.Client) {
			clients = append(clients, r.Client)
		}
	}
	ratio := map[[2]string]float64{}
	for _, r := range res.Rows {
		if r.Ratio > 0 {
			ratio[[2]string{r.Scenario, r.Client}] = r.Ratio
		}
	}
	var shown []string // scenarios with at least one ratio
	for _, s := range scenarios {
		for _, c := range clients {
			if ratio[[2]string{s, c}] > 0 {
				shown = append(shown, s)
				break
			}
		}
	}
	if len(shown) == 0 {
		return fmt.Errorf("no ratios to draw: the run has no %s rows to compare with", baselineClient)
	}

	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	p := plot.New()
	m := res.Machine
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = ratioTicks{}
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(12)
	p.NominalX(shown...)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // separators between the groups instead (below)
	p.Add(grid)
	for i := 1; i < len(shown); i++ {
		sep, err := plotter.NewLine(plotter.XYs{{X: float64(i) - 0.5, Y: 1e-9}, {X: float64(i) - 0.5, Y: 1e9}})
		if err != nil {
			return err
		}
		sep.LineStyle = draw.LineStyle{Color: color.Gray{Y: 215}, Width: vg.Points(0.6)}
		p.Add(sep)
	}

	group := vg.Points(60)
	wide := group / vg.Length(max(len(clients), 1))
	lo, hi := 1.0, 1.0
	var legend []legendItem
	for ci, c := range clients {
		b := &ratioBars{wide: wide * 0.88, fill: chartColors[ci%len(chartColors)]}
		b.offset = -group/2 + wide*vg.Length(ci) + wide/2
		for _, s := range shown {
			v := ratio[[2]string{s, c}]
			b.values = append(b.values, v)
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		p.Add(b)
		legend = append(legend, legendItem{c, b})
	}
	// The baseline.
	one, err := plotter.NewLine(plotter.XYs{{X: -0.6, Y: 1}, {X: float64(len(shown)) - 0.4, Y: 1}})
	if err != nil {
		return err
	}
	one.LineStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
	p.Add(one)
	legend = append(legend, legendItem{baselineClient + " = 1x", one})
	p.Y.Min = math.Pow(2, math.Floor(math.Log2(lo)+0.001))
	p.Y.Max = math.Pow(2, math.Ceil(math.Log2(hi)-0.001))
	if p.Y.Min == 1 {
		p.Y.Min = 0.5
	}
	if p.Y.Max == 1 {
		p.Y.Max = 2
	}
	p.X.Min, p.X.Max = -0.6, float64(len(shown))-0.4

	width := vg.Length(max(len(shown), 6))*vg.Points(72) + vg.Points(110)
	height := vg.Points(470)
	c := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(144))
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	// Title, then the legend in rows, then the plot below them.
	title := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 14), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter, YAlign: draw.YTop}
	sub := title
	sub.Font = font.From(plot.DefaultFont, 10.5)
	y := dc.Max.Y - vg.Points(8)
	dc.FillText(title, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: y}, "memctl bench: throughput relative to gomemcache (higher is faster)")
	y -= title.Height("M") + vg.Points(4)
	for _, line := range []string{
		fmt.Sprintf("%s, %d cores, Linux %s, Go %s, libmemcached %s, memcached %s",
			m.CPUModel, m.Cores, m.Kernel, strings.TrimPrefix(m.GoVersion, "go"), m.LibmemcachedRuntime, strings.Join(distinct(m.MemcachedVersions), ",")),
		fmt.Sprintf("%s: median of %s of %s per client and scenario; pool size %d; keys/s for multi-gets%s",
			m.Date[:10], plural(res.Config.Rounds, "round"), res.Config.Window, res.Config.PoolSize, chartServersNote(res.Config)),
	} {
		dc.FillText(sub, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: y}, line)
		y -= sub.Height("M") + vg.Points(3)
	}
	y -= vg.Points(6)
	y = drawLegend(dc, legend, y)
	// The y axis's label, drawn here: gonum/plot pads the plot for it as
	// if it stood above the axis.
	ylab := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 12), Handler: plot.DefaultTextHandler,
		XAlign: draw.XCenter, YAlign: draw.YTop, Rotation: math.Pi / 2}
	plotTop := y - vg.Points(6)
	left := vg.Points(6) + ylab.Height("M") + vg.Points(4)
	dc.FillText(ylab, vg.Point{X: dc.Min.X + vg.Points(6), Y: (dc.Min.Y + plotTop) / 2}, "rate / gomemcache's rate (log scale)")
	p.Draw(draw.Crop(dc, left, -vg.Points(14), vg.Points(2), plotTop-dc.Max.Y))

	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// chartServersNote says what the @Nsrv names of the chart mean.
func chartServersNote(c configInfo) string {
	var parts []string
	for _, set := range c.ServerSets {
		if set.Suffix != "" {
			parts = append(parts, fmt.Sprintf("%s: over %d servers", set.Suffix, set.Count))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, ", ")
}

// legendItem is one entry of the chart's legend.
type legendItem struct {
	label string
	thumb plot.Thumbnailer
}

// drawLegend draws the legend in centred rows from y down and returns the
// y below it.
func drawLegend(dc draw.Canvas, items []legendItem, y vg.Length) vg.Length {
	sty := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 11), Handler: plot.DefaultTextHandler, YAlign: draw.YCenter}
	thumbW, gap, pad := vg.Points(16), vg.Points(5), vg.Points(16)
	rowH := sty.Height("M") + vg.Points(6)
	maxW := dc.Max.X - dc.Min.X - vg.Points(40)
	var rows [][]legendItem
	var widths []vg.Length
	var cur []legendItem
	var w vg.Length
	for _, it := range items {
		iw := thumbW + gap + sty.Width(it.label)
		if len(cur) > 0 && w+pad+iw > maxW {
			rows, widths = append(rows, cur), append(widths, w)
			cur, w = nil, 0
		}
		if len(cur) > 0 {
			w += pad
		}
		cur = append(cur, it)
		w += iw
	}
	if len(cur) > 0 {
		rows, widths = append(rows, cur), append(widths, w)
	}
	for i, row := range rows {
		x := (dc.Min.X+dc.Max.X)/2 - widths[i]/2
		cy := y - rowH/2
		for _, it := range row {
			th := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: x, Y: cy - rowH/2 + vg.Points(3)},
				Max: vg.Point{X: x + thumbW, Y: cy + rowH/2 - vg.Points(3)},
			}}
			it.thumb.Thumbnail(&th)
			x += thumbW + gap
			dc.FillText(sty, vg.Point{X: x, Y: cy}, it.label)
			x += sty.Width(it.label) + pad
		}
		y -= rowH
	}
	return y
}

// plural returns "1 round", "3 rounds".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
