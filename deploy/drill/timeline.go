package drill

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/rcapi"
)

// RoleSample is a node's role from one time on ("down" when its status did
// not answer).
type RoleSample struct {
	Node  string    `json:"node"`
	Role  string    `json:"role"`
	Epoch int64     `json:"epoch,omitempty"`
	At    time.Time `json:"at"`
}

// Marker is an injected fault or another moment worth showing.
type Marker struct {
	Label string    `json:"label"`
	At    time.Time `json:"at"`
}

// sampler polls every node's status and keeps the role changes; on a
// terminal it also draws a live progress line.
type sampler struct {
	d       *drill
	mu      sync.Mutex
	last    map[string]string
	changes []RoleSample
	markers []Marker
	bad     map[string]*badInput
}

// badInput is what one node refused or kept aside, over its runs: base
// holds the finished runs' counts, cur the current run's.
type badInput struct {
	run         string // the status URL of the current run
	base, cur   badCounts
	quarantined bool // the node reported its quarantine (/status quarantine.put)
}

type badCounts struct{ malformed, quarantined, badSignature int64 }

func (c badCounts) add(o badCounts) badCounts {
	return badCounts{c.malformed + o.malformed, c.quarantined + o.quarantined, c.badSignature + o.badSignature}
}

// count records a node's counters as its /status at url showed them. A new
// url or a counter that went down is a new run (the node restarted and
// counts from zero): the last counts seen are kept in the base.
func (s *sampler) count(node, url string, doc nodeDoc) {
	c := badCounts{malformed: doc.Malformed, badSignature: doc.BadSignatures, quarantined: doc.Quarantine.Put}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bad[node]
	if b == nil {
		b = &badInput{run: url}
		s.bad[node] = b
	}
	if url != b.run || c.malformed < b.cur.malformed || c.quarantined < b.cur.quarantined || c.badSignature < b.cur.badSignature {
		b.base, b.cur, b.run = b.base.add(b.cur), badCounts{}, url
	}
	b.cur = c
	b.quarantined = true
}

// badTotals returns each node's counts over all its runs, and whether any
// node reported its quarantine.
func (s *sampler) badTotals() (map[string]badCounts, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, q := map[string]badCounts{}, false
	for n, b := range s.bad {
		out[n] = b.base.add(b.cur)
		q = q || b.quarantined
	}
	return out, q
}

func (s *sampler) mark(label string) {
	s.mu.Lock()
	s.markers = append(s.markers, Marker{Label: label, At: time.Now()})
	s.mu.Unlock()
}

// run samples every 100ms until ctx ends.
func (s *sampler) run(ctx context.Context, live io.Writer) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	lastLine := time.Time{}
	for {
		select {
		case <-ctx.Done():
			if live != nil {
				fmt.Fprint(live, "\r\033[K")
			}
			return
		case <-t.C:
		}
		var sent, cmds int64
		roles := []string{}
		for _, n := range s.d.sc.NodeNames() {
			sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			doc, url, err := s.d.statusDoc(sctx, n)
			cancel()
			st := doc.NodeStatus
			role, epoch := "down", int64(0)
			if err == nil {
				s.count(n, url, doc)
				role, epoch = st.Role, st.Epoch
				cmds += st.Commands
				sent = max(sent, st.Received)
			}
			roles = append(roles, n+":"+role)
			s.mu.Lock()
			if s.last[n] != role {
				s.last[n] = role
				s.changes = append(s.changes, RoleSample{Node: n, Role: role, Epoch: epoch, At: time.Now()})
			}
			s.mu.Unlock()
		}
		if live != nil && time.Since(lastLine) >= time.Second {
			lastLine = time.Now()
			fmt.Fprintf(live, "\r\033[K%7.1fs  %s  events≈%d  commands(current runs)=%d  failovers=%d",
				time.Since(s.d.rep.StartedAt).Seconds(), strings.Join(roles, " "), sent, cmds, len(s.d.rep.Failovers))
		}
	}
}

// WriteTimeline writes an HTML page with an SVG timeline: per node its role
// over time, the faults as markers, and each segment as a bar coloured by
// the node that started it (its end cap by the node that stopped it).
func WriteTimeline(path string, r *Report, l rcapi.Ledger) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	defer f.Close()
	return renderTimeline(f, r, l)
}

type tlRect struct {
	X, Y, W, H float64
	Fill       string
	Title      string
}

type tlLine struct {
	X, Y1, Y2 float64
	Label     string
}

type tlText struct {
	X, Y float64
	Text string
}

var nodeColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

var roleColors = map[string]string{
	adapter.RoleLeader: "#2ca02c", adapter.RoleStandby: "#9ecae1", adapter.RolePromoting: "#ff7f0e",
	adapter.RoleStarting: "#dddddd", adapter.RoleStopping: "#bbbbbb", "down": "#f2f2f2",
}

func renderTimeline(w io.Writer, r *Report, l rcapi.Ledger) error {
	start := r.StartedAt
	end := start.Add(time.Duration(r.DurationMS) * time.Millisecond)
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	const left, width, lane = 80.0, 1100.0, 22.0
	x := func(t time.Time) float64 {
		return left + width*float64(t.Sub(start))/float64(end.Sub(start))
	}
	var nodes []string
	byNode := map[string][]RoleSample{}
	for _, c := range r.Roles {
		if _, ok := byNode[c.Node]; !ok {
			nodes = append(nodes, c.Node)
		}
		byNode[c.Node] = append(byNode[c.Node], c)
	}
	sort.Strings(nodes)
	color := map[string]string{}
	var rects []tlRect
	var texts []tlText
	for i, n := range nodes {
		color[n] = nodeColors[i%len(nodeColors)]
		y := 30 + float64(i)*lane
		texts = append(texts, tlText{X: 10, Y: y + 14, Text: "node " + n})
		ch := byNode[n]
		for j, c := range ch {
			until := end
			if j+1 < len(ch) {
				until = ch[j+1].At
			}
			fill := cmp.Or(roleColors[c.Role], "#cccccc")
			rects = append(rects, tlRect{X: x(c.At), Y: y, W: max(x(until)-x(c.At), 0.5), H: lane - 4, Fill: fill,
				Title: fmt.Sprintf("%s %s epoch %d from %.1fs", n, c.Role, c.Epoch, c.At.Sub(start).Seconds())})
		}
	}
	// Segments: start → stop per segment, in order of start.
	type seg struct {
		id                  string
		from, to            time.Time
		startNode, stopNode string
	}
	segs := map[string]*seg{}
	var order []string
	for _, e := range l.Entries {
		if e.Kind != "command" || e.Result != rcapi.ResultApplied || e.Command == nil {
			continue
		}
		c := e.Command
		switch c.Action {
		case rcapi.ActionStart:
			segs[c.SegmentID] = &seg{id: c.SegmentID, from: e.ReceivedAt, to: end, startNode: c.Node}
			order = append(order, c.SegmentID)
		case rcapi.ActionStop:
			if s := segs[c.SegmentID]; s != nil {
				s.to, s.stopNode = e.ReceivedAt, c.Node
			}
		}
	}
	segTop := 30 + float64(len(nodes))*lane + 30
	texts = append(texts, tlText{X: 10, Y: segTop - 8, Text: fmt.Sprintf("%d segments (bar: node that started it; cap: node that stopped it)", len(order))})
	const row = 5.0
	for i, id := range order {
		s := segs[id]
		y := segTop + float64(i)*row
		rects = append(rects, tlRect{X: x(s.from), Y: y, W: max(x(s.to)-x(s.from), 1), H: row - 1, Fill: color[s.startNode],
			Title: fmt.Sprintf("%s started by %s, stopped by %s", id, s.startNode, s.stopNode)})
		if s.stopNode != "" {
			rects = append(rects, tlRect{X: x(s.to) - 2, Y: y, W: 2, H: row - 1, Fill: color[s.stopNode], Title: id + " stop"})
		}
	}
	height := segTop + float64(len(order))*row + 20
	var lines []tlLine
	for _, m := range r.Markers {
		lines = append(lines, tlLine{X: x(m.At), Y1: 20, Y2: height - 10, Label: m.Label})
	}
	var legend []tlText
	for i, n := range nodes {
		legend = append(legend, tlText{X: left + float64(i)*150, Y: 14, Text: "■ node " + n + " (" + color[n] + ")"})
	}
	return timelineTmpl.Execute(w, map[string]any{
		"R": r, "Width": left + width + 20, "Height": height, "Rects": rects, "Lines": lines, "Texts": texts,
		"Legend": legend, "Seconds": end.Sub(start).Seconds(),
	})
}

var timelineTmpl = template.Must(template.New("timeline").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>zccadapter drill {{.R.Scenario}}: {{.R.Verdict}}</title>
<style>body{font-family:sans-serif;margin:16px} svg text{font-size:11px} table{border-collapse:collapse} td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}</style></head>
<body>
<h1>Drill {{.R.Scenario}}: {{.R.Verdict}}</h1>
<p>{{printf "%.1f" .Seconds}} s. Roles: leader (green), standby (light blue), promoting (orange), down (pale). Vertical lines are faults.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" role="img" aria-label="drill timeline">
{{range .Legend}}<text x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{range .Rects}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="{{.Fill}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Texts}}<text x="{{.X}}" y="{{.Y}}">{{.Text}}</text>
{{end}}{{range .Lines}}<line x1="{{printf "%.1f" .X}}" x2="{{printf "%.1f" .X}}" y1="{{.Y1}}" y2="{{.Y2}}" stroke="#000" stroke-dasharray="4 3"/><text x="{{printf "%.1f" .X}}" y="{{.Y1}}" transform="rotate(0)">{{.Label}}</text>
{{end}}</svg>
<h2>Failovers</h2>
<table><tr><th>kind</th><th>from → to</th><th>detect ms</th><th>takeover ms</th><th>budget ms</th><th>result</th></tr>
{{range .R.Failovers}}<tr><td>{{.Kind}}</td><td>{{.From}} → {{.To}}</td><td>{{printf "%.1f" .DetectMS}}</td><td>{{printf "%.1f" .TakeoverMS}}</td><td>{{printf "%.0f" .BudgetMS}}</td><td>{{if .Pass}}pass{{else}}FAIL{{end}}</td></tr>
{{end}}</table>
<h2>Invariants</h2>
<table>{{range .R.Invariants}}<tr><td>{{.ID}} {{.Name}}</td><td>{{if .Pass}}pass{{else}}FAIL{{end}}</td><td>{{.Evidence}}</td></tr>
{{end}}</table>
</body></html>
`))
