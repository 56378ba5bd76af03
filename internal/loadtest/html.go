package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: the
// figures, the invariant table and charts drawn as inline SVG (the
// create-order latency histogram and CDF, throughput over time with the
// kills marked, WeChat call latency by API). No script, font or style
// sheet is loaded from anywhere.
func (r *Result) WriteHTML(w io.Writer) error {
	var text strings.Builder
	r.WriteText(&text)
	data := struct {
		R                           *Result
		Verdict                     string
		OK                          bool
		Histogram, Timeline, WeChat template.HTML
		Text                        string
		Targets                     []targetRow
		Chaos                       string
		API                         string
	}{
		R: r, OK: r.OK(), Text: text.String(), Verdict: r.Verdict(), API: r.Settings.apiName(),
		Histogram: template.HTML(svgHistogram(r.CreateBuckets, r.Latency.CreateOrder)),
		Timeline:  template.HTML(svgTimeline(r.driveTicks(), r.Kills)),
		WeChat:    template.HTML(svgAPIBars(r.WeChat)),
		Targets:   r.targetRows(),
	}
	return reportTmpl.Execute(w, data)
}

type targetRow struct {
	Name, Target, Measured string
	Met                    bool
}

// targetRows compares the run with the service issue's targets (those
// that apply to it).
func (r *Result) targetRows() []targetRow {
	var rows []targetRow
	pg := strings.HasPrefix(r.Settings.DB, "postgres")
	tp := Targets.PaidPerSecondSQLite
	name := "paid orders/s (SQLite)"
	if pg {
		tp, name = Targets.PaidPerSecondPostgres, "paid orders/s (PostgreSQL)"
	}
	rows = append(rows, targetRow{name, fmt.Sprintf("≥ %.0f", tp), fmt.Sprintf("%.1f", r.PaidPerSecond), r.PaidPerSecond >= tp})
	if r.Settings.Rate > 0 {
		rows = append(rows, targetRow{fmt.Sprintf("create-order p99 at %g/s", r.Settings.Rate), fmt.Sprintf("≤ %.0f ms", Targets.CreateP99MS),
			fmt.Sprintf("%.2f ms", r.Latency.CreateOrder.P99), r.Latency.CreateOrder.P99 <= Targets.CreateP99MS})
	}
	if b := r.NotifyBurst; b != nil {
		rows = append(rows, targetRow{"notifies handled/s (burst)", fmt.Sprintf("≥ %.0f", Targets.NotifiesPerSecond),
			fmt.Sprintf("%.1f", b.PerSecond), b.PerSecond >= Targets.NotifiesPerSecond})
	}
	for _, in := range r.Instances {
		rows = append(rows, targetRow{fmt.Sprintf("instance %d peak RSS", in.Index), fmt.Sprintf("≤ %.0f MB", Targets.RSSMB),
			fmt.Sprintf("%.1f MB", in.PeakMB), in.PeakMB <= Targets.RSSMB})
	}
	return rows
}

// ---- SVG ----

const (
	chartW = 760
	chartH = 280
	padL   = 56
	padR   = 56
	padT   = 20
	padB   = 40
)

func esc(s string) string { return template.HTMLEscapeString(s) }

// fmtMS prints a millisecond value compactly.
func fmtMS(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gs", round(v/1000, 2))
	case v >= 1:
		return fmt.Sprintf("%gms", round(v, 1))
	default:
		return fmt.Sprintf("%gms", round(v, 3))
	}
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// svgHistogram draws the latency histogram on a log time axis, with the
// CDF over it and the p50/p95/p99 marks.
func svgHistogram(buckets []Bucket, s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="create-order latency histogram">`, chartW, chartH, chartW, chartH)
	if len(buckets) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no samples</text></svg>`, chartW/2-30, chartH/2)
		return b.String()
	}
	lo := math.Max(buckets[0].Low, 0.001)
	hi := buckets[len(buckets)-1].High
	lmin := math.Floor(math.Log10(lo))
	lmax := math.Ceil(math.Log10(hi))
	if lmax <= lmin {
		lmax = lmin + 1
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, lmin))
		return padL + (math.Log10(v)-lmin)/(lmax-lmin)*pw
	}
	// Display bins: 20 per decade.
	nbins := int((lmax - lmin) * 20)
	counts := make([]float64, nbins)
	var total float64
	for _, bk := range buckets {
		mid := math.Sqrt(math.Max(bk.Low, 0.001) * bk.High)
		i := int((math.Log10(mid) - lmin) / (lmax - lmin) * float64(nbins))
		i = min(max(i, 0), nbins-1)
		counts[i] += float64(bk.Count)
		total += float64(bk.Count)
	}
	var cmax float64
	for _, c := range counts {
		cmax = math.Max(cmax, c)
	}
	ymax := niceMax(cmax)
	y := func(c float64) float64 { return padT + ph - c/ymax*ph }
	// Grid and axes.
	for d := lmin; d <= lmax; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > lmax+1e-9 {
				continue
			}
			xv := x(v)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, xv, padT, xv, chartH-padB)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, xv, chartH-padB+14, esc(fmtMS(v)))
		}
	}
	for i := 0; i <= 4; i++ {
		c := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end">%g</text>`, padL-4, y(c)+3, c)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10">%d%%</text>`, chartW-padR+4, y(c)+3, i*25)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">create-order latency (log scale)</text>`, chartW/2, chartH-6)
	// Bars.
	bw := pw / float64(nbins)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7bd0"><title>%d requests</title></rect>`,
			padL+float64(i)*bw+0.5, y(c), math.Max(bw-1, 0.5), padT+ph-y(c), int64(c))
	}
	// CDF.
	var cum float64
	pts := []string{fmt.Sprintf("%d,%.1f", padL, padT+ph)}
	for i, c := range counts {
		cum += c
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", padL+float64(i+1)*bw, padT+ph-cum/total*ph))
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#d0604a" stroke-width="2"/>`, strings.Join(pts, " "))
	// Percentile marks.
	for i, m := range []struct {
		name string
		v    float64
	}{{"p50", s.P50}, {"p95", s.P95}, {"p99", s.P99}} {
		if m.v <= 0 {
			continue
		}
		xv := x(m.v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#222" stroke-dasharray="4 3"/>`, xv, padT, xv, chartH-padB)
		anchor, tx := "start", xv+3
		if xv > chartW-padR-90 {
			anchor, tx = "end", xv-3
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="%s">%s %s</text>`, tx, padT+10+12*i, anchor, m.name, esc(fmtMS(m.v)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#4a7bd0">■ requests</text><text x="%d" y="%d" font-size="10" fill="#d0604a">— cumulative %%</text>`,
		padL+4, padT+24, padL+4, padT+36)
	b.WriteString(`</svg>`)
	return b.String()
}

// driveTicks are the ticks of the users' phase (the notify burst after
// it has its own figure).
func (r *Result) driveTicks() []Tick {
	var out []Tick
	for _, t := range r.Timeline {
		if t.T <= r.DriveSeconds+1 {
			out = append(out, t)
		}
	}
	return out
}

// svgTimeline draws per-second throughput over the users' phase.
func svgTimeline(ticks []Tick, kills []KillEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="throughput over time">`, chartW, chartH, chartW, chartH)
	if len(ticks) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no samples</text></svg>`, chartW/2-30, chartH/2)
		return b.String()
	}
	tmax := ticks[len(ticks)-1].T
	var vmax int64
	for _, t := range ticks {
		vmax = max(vmax, t.Created, t.Paid, t.Notifies, t.Errors)
	}
	ymax := niceMax(float64(vmax))
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(t float64) float64 { return padL + t/math.Max(tmax, 1)*pw }
	y := func(v float64) float64 { return padT + ph - v/ymax*ph }
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y(v), chartW-padR, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="10" text-anchor="end">%g</text>`, padL-4, y(v)+3, v)
	}
	step := niceMax(math.Max(tmax, 1) / 8)
	for t := 0.0; t <= tmax+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%gs</text>`, x(t), chartH-padB+14, round(t, 1))
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">per second, over the users' phase</text>`, chartW/2, chartH-6)
	for _, k := range kills {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#900" stroke-dasharray="2 2"><title>instance %d killed, down %.0f ms</title></line>`,
			x(k.T), padT, x(k.T), chartH-padB, k.Instance, k.DownForMS)
	}
	series := []struct {
		name, color string
		v           func(Tick) int64
	}{
		{"created", "#4a7bd0", func(t Tick) int64 { return t.Created }},
		{"paid", "#2e9d4a", func(t Tick) int64 { return t.Paid }},
		{"notifies acked", "#e08a1e", func(t Tick) int64 { return t.Notifies }},
		{"errors", "#c0392b", func(t Tick) int64 { return t.Errors }},
	}
	for i, s := range series {
		pts := make([]string, 0, len(ticks))
		for _, t := range ticks {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(t.T), y(float64(s.v(t)))))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"/>`, strings.Join(pts, " "), s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="%s">— %s</text>`, padL+8+i*110, padT+12, s.color, esc(s.name))
	}
	if len(kills) > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#900">┆ kill</text>`, padL+8+len(series)*110, padT+12)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// svgAPIBars draws p50 and p99 of each WeChat API, on a log axis.
func svgAPIBars(m map[string]Summary) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	rowH := 22
	h := padT + padB + rowH*max(len(names), 1)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="WeChat call latency by API">`, chartW, h, chartW, h)
	if len(names) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no calls</text></svg>`, chartW/2-30, h/2)
		return b.String()
	}
	var vmax, vmin float64 = 0, math.Inf(1)
	for _, n := range names {
		vmax = math.Max(vmax, m[n].Max)
		vmin = math.Min(vmin, math.Max(m[n].P50, 0.001))
	}
	lmin, lmax := math.Floor(math.Log10(vmin)), math.Ceil(math.Log10(math.Max(vmax, 0.01)))
	if lmax <= lmin {
		lmax = lmin + 1
	}
	left := 130
	pw := float64(chartW - left - padR)
	x := func(v float64) float64 {
		v = math.Max(v, math.Pow(10, lmin))
		return float64(left) + (math.Log10(v)-lmin)/(lmax-lmin)*pw
	}
	for d := lmin; d <= lmax; d++ {
		xv := x(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`, xv, padT, xv, h-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, xv, h-padB+14, esc(fmtMS(math.Pow(10, d))))
	}
	for i, n := range names {
		s := m[n]
		yv := padT + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>`, left-6, yv+14, esc(n))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="8" fill="#9db8e8"><title>p99 %s</title></rect>`, left, yv+4, x(s.P99)-float64(left), esc(fmtMS(s.P99)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="8" fill="#4a7bd0"><title>p50 %s</title></rect>`, left, yv+12, x(s.P50)-float64(left), esc(fmtMS(s.P50)))
		anchor, tx := "start", x(s.P99)+4
		if tx > chartW-170 {
			anchor, tx = "end", float64(chartW-4)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9" text-anchor="%s">p50 %s, p99 %s (%d calls)</text>`, tx, yv+12, anchor,
			esc(fmtMS(s.P50)), esc(fmtMS(s.P99)), s.Count)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">simulator time per call: p50 (dark) and p99 (light), log scale</text>`, chartW/2, h-6)
	b.WriteString(`</svg>`)
	return b.String()
}

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms": func(v float64) string { return fmt.Sprintf("%.2f", v) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>wxpay load report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.pass { color: #1d7a36; font-weight: bold; } .fail { color: #b02a1a; font-weight: bold; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; }
svg { display: block; margin: .5em 0; font-family: system-ui, sans-serif; }
</style>
</head>
<body>
<h1>wxpay load report</h1>
<p class="{{if .OK}}pass{{else}}fail{{end}}">{{.Verdict}}</p>
<p>WeChat Pay {{.API}}: {{.R.Settings.Orders}} orders, {{.R.Settings.Instances}} instance(s) on {{.R.Settings.DB}}, concurrency {{.R.Settings.Concurrency}},
rate {{if gt .R.Settings.Rate 0.0}}{{.R.Settings.Rate}}/s{{else}}unpaced{{end}}, seed {{.R.Settings.Seed}};
started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}, {{printf "%.1f" .R.DriveSeconds}} s of users.</p>

<h2>Targets</h2>
<table><tr><th class="l">target</th><th>goal</th><th>measured</th><th></th></tr>
{{range .Targets}}<tr><td class="l">{{.Name}}</td><td>{{.Target}}</td><td>{{.Measured}}</td><td class="{{if .Met}}pass{{else}}fail{{end}}">{{if .Met}}met{{else}}missed{{end}}</td></tr>
{{end}}</table>

<h2>Invariants</h2>
<table><tr><th class="l">id</th><th class="l">invariant</th><th>checked</th><th>violations</th><th class="l">examples</th></tr>
{{range .R.Invariants}}<tr><td class="l">{{.ID}}</td><td class="l">{{.Name}}</td><td>{{.Checked}}</td><td class="{{if .Violations}}fail{{else}}pass{{end}}">{{.Violations}}</td><td class="l">{{range .Examples}}{{.}}<br>{{end}}</td></tr>
{{end}}</table>

<h2>Throughput</h2>
<p>{{.R.PaidPerSecond}} paid orders/s end to end (peak {{.R.PeakPaidPerSecond}}/s); {{.R.CreatedPerSecond}} orders created/s;
notifies acknowledged {{.R.Notify.PerSecond}}/s (peak {{.R.Notify.PeakPerSec}}/s){{with .R.NotifyBurst}}; notify burst {{.PerSecond}}/s ({{.Acked}} in {{.Seconds}} s){{end}}.</p>
<p>CPU in the users' phase: the service {{.R.CPU.ServiceSeconds}} s ({{.R.CPU.ServiceCores}} cores, {{.R.CPU.ServiceMSPerPaid}} ms per paid order),
the load process (simulator and users) {{.R.CPU.LoadSeconds}} s ({{.R.CPU.LoadCores}} cores); the machine: {{.R.Machine.CPUs}} CPUs,
{{.R.CPU.MachineCores}} busy on average, load average {{.R.Machine.LoadAvgStart}} at the start, {{.R.Machine.LoadAvgEnd}} at the end ({{.R.Machine.GoVersion}}).</p>
{{.Timeline}}

<h2>Create-order latency</h2>
{{.Histogram}}
<table><tr><th class="l">latency (ms)</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{with .R.Latency}}
<tr><td class="l">login</td><td>{{.Login.Count}}</td><td>{{ms .Login.P50}}</td><td>{{ms .Login.P95}}</td><td>{{ms .Login.P99}}</td><td>{{ms .Login.P999}}</td><td>{{ms .Login.Max}}</td></tr>
<tr><td class="l">create order</td><td>{{.CreateOrder.Count}}</td><td>{{ms .CreateOrder.P50}}</td><td>{{ms .CreateOrder.P95}}</td><td>{{ms .CreateOrder.P99}}</td><td>{{ms .CreateOrder.P999}}</td><td>{{ms .CreateOrder.Max}}</td></tr>
<tr><td class="l">wx.requestPayment</td><td>{{.Pay.Count}}</td><td>{{ms .Pay.P50}}</td><td>{{ms .Pay.P95}}</td><td>{{ms .Pay.P99}}</td><td>{{ms .Pay.P999}}</td><td>{{ms .Pay.Max}}</td></tr>
<tr><td class="l">pay → PAID</td><td>{{.PayToPaid.Count}}</td><td>{{ms .PayToPaid.P50}}</td><td>{{ms .PayToPaid.P95}}</td><td>{{ms .PayToPaid.P99}}</td><td>{{ms .PayToPaid.P999}}</td><td>{{ms .PayToPaid.Max}}</td></tr>
<tr><td class="l">create → PAID</td><td>{{.EndToEnd.Count}}</td><td>{{ms .EndToEnd.P50}}</td><td>{{ms .EndToEnd.P95}}</td><td>{{ms .EndToEnd.P99}}</td><td>{{ms .EndToEnd.P999}}</td><td>{{ms .EndToEnd.Max}}</td></tr>
<tr><td class="l">refund</td><td>{{.Refund.Count}}</td><td>{{ms .Refund.P50}}</td><td>{{ms .Refund.P95}}</td><td>{{ms .Refund.P99}}</td><td>{{ms .Refund.P999}}</td><td>{{ms .Refund.Max}}</td></tr>
<tr><td class="l">close</td><td>{{.Close.Count}}</td><td>{{ms .Close.P50}}</td><td>{{ms .Close.P95}}</td><td>{{ms .Close.P99}}</td><td>{{ms .Close.P999}}</td><td>{{ms .Close.Max}}</td></tr>
{{end}}</table>

<h2>WeChat call latency by API</h2>
{{.WeChat}}

<h2>Errors by kind</h2>
{{if .R.Errors}}<table><tr><th>count</th><th class="l">kind</th><th class="l">example</th></tr>
{{range .R.Errors}}<tr><td>{{.Count}}</td><td class="l">{{.Kind}}</td><td class="l">{{.Example}}</td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}

<h2>Instances</h2>
<table><tr><th>instance</th><th class="l">address</th><th>starts</th><th>kills</th><th>crashes</th><th>peak RSS (MB)</th></tr>
{{range .R.Instances}}<tr><td>{{.Index}}</td><td class="l">{{.Addr}}</td><td>{{.Starts}}</td><td>{{.Kills}}</td><td>{{.Crashes}}</td><td>{{.PeakMB}}</td></tr>
{{end}}</table>
<p>The load process (simulator and users): peak RSS {{.R.LoadPeakMB}} MB.</p>

<h2>Full text report</h2>
<pre>{{.Text}}</pre>
</body>
</html>
`))
