package compat

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"kazasu/daemon/quirks"
)

// Matrix is the phone × reader view of the latest runs.
type Matrix struct {
	Rows  []string        // "model / OS build (token)"
	Cols  []string        // reader path (+ board, RF profile when not default)
	Cells map[[2]int]*Run // (row, col) → run
	Runs  []*Run
}

func rowName(r *Run) string {
	s := r.Key.Model
	if r.Key.OSBuild != "" {
		s += " / " + r.Key.OSBuild
	}
	if r.Key.Token != "" {
		s += " (" + strings.TrimPrefix(r.Key.Token, "JPKIAP") + ")"
	}
	return s
}

func colName(r *Run) string {
	s := r.Key.Reader
	var extra []string
	if r.Key.Board != "" {
		extra = append(extra, r.Key.Board)
	}
	if r.Key.RFProfile != "" && r.Key.RFProfile != "default" {
		extra = append(extra, r.Key.RFProfile)
	}
	if len(extra) > 0 {
		s += " [" + strings.Join(extra, ", ") + "]"
	}
	return s
}

// BuildMatrix arranges runs (one per key, see DB.Latest) as a matrix.
func BuildMatrix(runs []*Run) *Matrix {
	m := &Matrix{Cells: map[[2]int]*Run{}, Runs: runs}
	rowIdx, colIdx := map[string]int{}, map[string]int{}
	for _, r := range runs {
		rn, cn := rowName(r), colName(r)
		if _, ok := rowIdx[rn]; !ok {
			rowIdx[rn] = 0
			m.Rows = append(m.Rows, rn)
		}
		if _, ok := colIdx[cn]; !ok {
			colIdx[cn] = 0
			m.Cols = append(m.Cols, cn)
		}
	}
	sort.Strings(m.Rows)
	sort.Strings(m.Cols)
	for i, r := range m.Rows {
		rowIdx[r] = i
	}
	for i, c := range m.Cols {
		colIdx[c] = i
	}
	for _, r := range runs {
		m.Cells[[2]int{rowIdx[rowName(r)], colIdx[colName(r)]}] = r
	}
	return m
}

// cellText is the short text of a matrix cell.
func cellText(r *Run) string {
	if r == nil {
		return "—"
	}
	if r.ActivationRate() == 0 {
		return "no activation"
	}
	if r.TransactionRate() == 0 {
		if k := topError(r); k != "" {
			return "0% · " + k
		}
	}
	return fmt.Sprintf("%.0f%% · %s", 100*r.TransactionRate(), ms(totalP50(r)))
}

// topError is the most frequent error kind of the steps (sweep errors
// left out), ties by name.
func topError(r *Run) string {
	best, n := "", 0
	for k, v := range r.Errors {
		if strings.HasPrefix(k, "sweep_") {
			continue
		}
		if v > n || (v == n && k < best) {
			best, n = k, v
		}
	}
	return best
}

// totalP50 sums the p50 latencies of the JPKI steps (tap→result path).
func totalP50(r *Run) time.Duration {
	var t int64
	for _, s := range r.Steps {
		if jpkiStep[s.Name] {
			t += s.P50us
		}
	}
	return time.Duration(t) * time.Microsecond
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// color maps a success rate to a red→amber→green fill.
func color(rate float64) string {
	switch {
	case rate >= 0.99:
		return "#2e7d32"
	case rate >= 0.9:
		return "#7cb342"
	case rate >= 0.5:
		return "#f9a825"
	case rate > 0:
		return "#ef6c00"
	}
	return "#c62828"
}

// WriteMarkdown writes the matrix as a Markdown table.
func (m *Matrix) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| phone / card | " + strings.Join(m.Cols, " | ") + " |\n")
	b.WriteString("|---|" + strings.Repeat("---|", len(m.Cols)) + "\n")
	for i, row := range m.Rows {
		b.WriteString("| " + mdEscape(row) + " |")
		for j := range m.Cols {
			b.WriteString(" " + cellText(m.Cells[[2]int{i, j}]) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nCells: share of trials where every JPKI step succeeded · sum of the steps' median latencies.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// WriteReport writes index.html, matrix.md and quirks.json into dir.
func WriteReport(dir string, runs []*Run, generated time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("compat: report: %w", err)
	}
	m := BuildMatrix(runs)
	write := func(name string, f func(io.Writer) error) error {
		tmp, err := os.CreateTemp(dir, "."+name+"*")
		if err != nil {
			return fmt.Errorf("compat: report: %w", err)
		}
		defer os.Remove(tmp.Name())
		if err := f(tmp); err != nil {
			tmp.Close()
			return fmt.Errorf("compat: report %s: %w", name, err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err := write("matrix.md", m.WriteMarkdown); err != nil {
		return err
	}
	if err := write("quirks.json", Derive(runs).Write); err != nil {
		return err
	}
	return write("index.html", func(w io.Writer) error { return m.WriteHTML(w, generated) })
}

// profileRow is one derived quirk profile in the report.
type profileRow struct {
	Name, Match, Extended, Limits, Timeouts, Mode, Poll, Evidence string
}

func profileRows(set *quirks.Set) []profileRow {
	var out []profileRow
	for _, p := range set.Profiles {
		ext := "?"
		if p.ExtendedAPDU != nil {
			ext = fmt.Sprint(*p.ExtendedAPDU)
		}
		lim := fmt.Sprintf("cmd %d, resp %d", p.MaxCommandAPDU, p.MaxResponseAPDU)
		if p.ReadChunk > 0 {
			lim += fmt.Sprintf(", read %d", p.ReadChunk)
		}
		out = append(out, profileRow{
			Name:     p.Name,
			Match:    strings.TrimSpace(fmt.Sprintf("%s %s %s", p.Match.Tech, p.Match.Features, p.Match.Token)),
			Extended: ext,
			Limits:   lim,
			Timeouts: fmt.Sprintf("%v / %v", time.Duration(p.APDUTimeout).Round(time.Millisecond), time.Duration(p.SignTimeout).Round(time.Millisecond)),
			Mode:     p.ISODepMode,
			Poll:     strings.Join(p.PollOrder, ""),
			Evidence: p.Evidence,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type svgCell struct {
	X, Y, W, H int
	Fill, Text string
	Title      string
}

type svgBar struct {
	X, Y, W, H int
	Fill       string
	Title      string
}

type barRow struct {
	Label string
	Y     int
	Bars  []svgBar
	Total string
}

// WriteHTML renders the report page: a success-rate heat map, a step-latency
// chart and a details table. Self-contained (inline SVG and CSS, no
// scripts), so it renders anywhere, headless browsers included.
func (m *Matrix) WriteHTML(w io.Writer, generated time.Time) error {
	const cw, ch, lw, top = 172, 34, 300, 60
	var cells []svgCell
	for i := range m.Rows {
		for j := range m.Cols {
			r := m.Cells[[2]int{i, j}]
			c := svgCell{X: lw + j*cw, Y: top + i*ch, W: cw - 4, H: ch - 4, Fill: "#eeeeee", Text: cellText(r)}
			if r != nil {
				c.Fill = color(r.TransactionRate())
				c.Title = fmt.Sprintf("%s on %s: activation %.0f%%, JPKI %.0f%%, %d trials", rowName(r), colName(r), 100*r.ActivationRate(), 100*r.TransactionRate(), r.Trials)
			}
			cells = append(cells, c)
		}
	}
	stepColor := map[string]string{StepSelect: "#1565c0", StepToken: "#6a1b9a", StepCert: "#00838f", StepPINStatus: "#558b2f", StepVerify: "#ef6c00", StepSign: "#ad1457"}
	var maxT time.Duration
	for _, r := range m.Runs {
		maxT = max(maxT, totalP50(r))
	}
	if maxT == 0 {
		maxT = time.Millisecond
	}
	const bw, bh = 620, 18
	var bars []barRow
	for i, r := range m.Runs {
		row := barRow{Label: rowName(r) + " · " + colName(r), Y: 40 + i*(bh+6), Total: ms(totalP50(r))}
		x := 0
		for _, name := range StepOrder {
			s := r.Step(name)
			if !jpkiStep[name] || s.Trials == 0 {
				continue
			}
			wpx := int(float64(bw) * float64(time.Duration(s.P50us)*time.Microsecond) / float64(maxT))
			row.Bars = append(row.Bars, svgBar{X: 420 + x, Y: row.Y, W: max(wpx, 1), H: bh, Fill: stepColor[name],
				Title: fmt.Sprintf("%s: p50 %s, p95 %s, %d/%d ok", name, ms(time.Duration(s.P50us)*time.Microsecond), ms(time.Duration(s.P95us)*time.Microsecond), s.OK, s.Trials)})
			x += wpx
		}
		bars = append(bars, row)
	}
	var legend []svgBar
	for i, name := range []string{StepSelect, StepToken, StepCert, StepPINStatus, StepVerify, StepSign} {
		legend = append(legend, svgBar{X: 420 + i*100, Y: 10, W: 14, H: 14, Fill: stepColor[name], Title: name})
	}
	data := map[string]any{
		"Generated": generated.UTC().Format(time.RFC3339),
		"Matrix":    m,
		"Cells":     cells,
		"Cols":      m.Cols,
		"Rows":      m.Rows,
		"HeatW":     lw + len(m.Cols)*cw + 10,
		"HeatH":     top + len(m.Rows)*ch + 10,
		"ColX":      func(j int) int { return lw + j*cw + cw/2 },
		"RowY":      func(i int) int { return top + i*ch + ch/2 + 4 },
		"Bars":      bars,
		"Legend":    legend,
		"BarsH":     60 + len(bars)*(bh+6),
		"Runs":      m.Runs,
		"Profiles":  profileRows(Derive(m.Runs)),
		"Pct":       func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
		"Row":       rowName,
		"Col":       colName,
		"FWT":       func(us int64) string { return fmt.Sprintf("%.1f ms", float64(us)/1000) },
		"Errs": func(e map[string]int) string {
			var s []string
			for k, v := range e {
				s = append(s, fmt.Sprintf("%s×%d", k, v))
			}
			sort.Strings(s)
			return strings.Join(s, ", ")
		},
	}
	return reportTmpl.Execute(w, data)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kazasu compatibility report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f3f3f3; }
svg text { font: 11px system-ui, sans-serif; }
.cell { fill: #fff; font-weight: 600; font-size: 10.5px; }
</style></head><body>
<h1>kazasu phone × reader compatibility</h1>
<p>Generated {{.Generated}} from {{len .Runs}} runs. Cells show the share of trials in which every JPKI step succeeded and the sum of the steps' median latencies (or, where nothing succeeded, the most frequent error). Latencies are wall-clock time on real readers and the simulators' modelled time (air, host link, card processing) on simulated ones: see the "time" column.</p>
<h2>Success rate (phone × reader)</h2>
<svg id="heatmap" width="{{.HeatW}}" height="{{.HeatH}}" role="img" aria-label="success-rate matrix">
{{range $j, $c := .Cols}}<text x="{{call $.ColX $j}}" y="40" text-anchor="middle">{{$c}}</text>
{{end}}{{range $i, $r := .Rows}}<text x="4" y="{{call $.RowY $i}}">{{$r}}</text>
{{end}}{{range .Cells}}<g><title>{{.Title}}</title><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" rx="3" fill="{{.Fill}}"/><text class="cell" x="{{.X}}" dx="6" y="{{.Y}}" dy="20">{{.Text}}</text></g>
{{end}}</svg>
<h2>Step latency (median per step)</h2>
<svg id="latency" width="1100" height="{{.BarsH}}" role="img" aria-label="step latency chart">
{{range .Legend}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}"/><text x="{{.X}}" dx="18" y="22">{{.Title}}</text>
{{end}}{{range .Bars}}<text x="4" y="{{.Y}}" dy="13">{{.Label}}</text>{{range .Bars}}<g><title>{{.Title}}</title><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}" fill="{{.Fill}}"/></g>{{end}}
{{end}}</svg>
<h2>Derived quirk profiles</h2>
<table id="profiles">
<tr><th>profile</th><th>match (tech, features, token)</th><th>extended</th><th>APDU limits</th><th>timeouts (APDU / sign)</th><th>ISO-DEP</th><th>poll</th><th>evidence</th></tr>
{{range .Profiles}}<tr><td>{{.Name}}</td><td><code>{{.Match}}</code></td><td>{{.Extended}}</td><td>{{.Limits}}</td><td>{{.Timeouts}}</td><td>{{.Mode}}</td><td>{{.Poll}}</td><td>{{.Evidence}}</td></tr>
{{end}}</table>
<h2>Runs</h2>
<table id="runs">
<tr><th>phone / card</th><th>reader</th><th>reader model</th><th>software</th><th>trials</th><th>time</th><th>activation</th><th>JPKI</th><th>tech</th><th>features</th><th>bit rates</th><th>FSC</th><th>FWT</th><th>CID</th><th>random ID</th><th>ISO-DEP</th><th>max short</th><th>max ext.</th><th>max cmd</th><th>61xx</th><th>EF end</th><th>S(WTX)</th><th>re-tap</th><th>errors / tap</th><th>errors</th></tr>
{{range .Runs}}<tr><td>{{call $.Row .}}</td><td>{{call $.Col .}}</td><td>{{.ReaderModel}} {{.ReaderFirmware}}{{if .RFSettings}}<br><small>{{.RFSettings}}</small>{{end}}</td><td>{{.Software}}</td><td>{{.Trials}}</td><td>{{.TimeBase}}</td><td>{{call $.Pct .ActivationRate}}</td><td>{{call $.Pct .TransactionRate}}</td><td>{{.Tech}}</td><td><code>{{.Features}}</code></td><td>{{.BitRates}}</td><td>{{.FSC}}</td><td>{{call $.FWT .FWTus}}</td><td>{{.CIDSupported}}</td><td>{{.RandomID}}</td><td>{{.ISODepMode}}</td><td>{{.MaxShortResponse}}</td><td>{{.MaxExtendedResponse}}</td><td>{{.MaxCommand}}</td><td>{{if .ResponseChunk}}{{.ResponseChunk}}{{end}}</td><td>{{.EOFStatus}}</td><td>{{if .WTXObserved}}{{.WTXSeen}} (sign ≤ {{.SignWTX}}){{else}}not visible{{end}}</td><td>{{.RetapOK}}</td><td>{{printf "%.2f" .ErrorRate}}</td><td>{{call $.Errs .Errors}}</td></tr>
{{end}}</table>
</body></html>
`))
