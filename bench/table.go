package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Benchmark names, as `go test` prints them without the GOMAXPROCS suffix.
const (
	bPipe     = "BenchmarkPipeline/"
	bLatency  = "BenchmarkLatency/rate="
	bFailover = "BenchmarkFailover"
	bFoot     = "BenchmarkFootprint"
	bHour     = "BenchmarkEtcdHour/compaction="
)

// Budgets of issue 7, on this 2-core machine.
const (
	budgetEventsPerSec = 5000
	budgetP99At500     = 20 * time.Millisecond
	budgetGraceful     = 250 * time.Millisecond
	budgetMirror       = 100 * time.Millisecond // G5
	budgetRSSMB        = 150
	etcdQuotaMB        = 2048 // etcd's default backend quota
)

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

// num formats a number with thousands separators and digits decimals.
func num(v float64, digits int) string {
	s := fmt.Sprintf("%.*f", digits, v)
	intPart, frac, _ := strings.Cut(s, ".")
	neg := strings.HasPrefix(intPart, "-")
	intPart = strings.TrimPrefix(intPart, "-")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	if frac != "" {
		out += "." + frac
	}
	return out
}

// table is one section of the report. It is printed at flush, and only if
// one of its rows holds a figure beyond its label (a cell with a number and
// no dash): a
// section whose benchmarks did not run (filtered with -bench) is left out.
type table struct {
	out      io.Writer
	buf      bytes.Buffer
	w        *tabwriter.Writer
	measured bool
}

func newTable(out io.Writer, title string, header ...string) *table {
	t := &table{out: out}
	fmt.Fprintf(&t.buf, "\n%s\n", title)
	t.w = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t.w, "  "+strings.Join(header, "\t"))
	return t
}

func (t *table) row(cells ...string) {
	for _, c := range cells[min(1, len(cells)):] {
		if strings.ContainsAny(c, "0123456789") && !strings.Contains(c, "—") {
			t.measured = true
		}
	}
	fmt.Fprintln(t.w, "  "+strings.Join(cells, "\t"))
}

func (t *table) flush() {
	t.w.Flush()
	if t.measured {
		t.out.Write(t.buf.Bytes()) //nolint:errcheck // stdout
	}
}

// printTables prints every section; a figure that was not measured (its
// benchmark filtered out or failed) shows "—".
func printTables(out io.Writer, r results, o options) {
	dash := "—"
	val := func(name, unit string, digits int) string {
		if v, ok := r.get(name, unit); ok {
			return num(v, digits)
		}
		return dash
	}

	// Throughput.
	txn32, okTxn := r.get(bPipe+"ref=txn-32", "events/s")
	put4, okPut := r.get(bPipe+"ref=put-4w", "events/s")
	ratio := func(v, ref float64, ok bool) string {
		if !ok || ref == 0 {
			return dash
		}
		return fmt.Sprintf("%.2f", v/ref)
	}
	t := newTable(out, "THROUGHPUT: events/s with durable dedup and state writes (counted as dedup keys in etcd), one embedded etcd for all rows",
		"figure", "events/s", "÷ guarded txn, leader's shape", "÷ batched put, 4 writers", "budget")
	for _, row := range []struct{ name, label string }{
		{"ref=txn-1", "ref: etcd guarded txn, 1 event per txn"},
		{"ref=txn-32", "ref: etcd guarded txn, leader's shape (1 txn per 32 events)"},
		{"ref=put-1w", "ref: etcd batched put, 120 ops/txn, 1 writer"},
		{"ref=put-4w", "ref: etcd batched put, 120 ops/txn, 4 writers"},
		{"leader/discard", "leader, saturated, recorder answering at once"},
		{"leader/recorder", "leader, saturated, reference recorder over HTTP"},
	} {
		v, ok := r.get(bPipe+row.name, "events/s")
		cells := []string{row.label, val(bPipe+row.name, "events/s", 0), dash, dash, ""}
		if ok && strings.HasPrefix(row.name, "leader") {
			cells[2], cells[3] = ratio(v, txn32, okTxn), ratio(v, put4, okPut)
		}
		t.row(cells...)
	}
	var rates []float64
	for name := range r {
		if rate, ok := strings.CutPrefix(name, bPipe+"cluster/rate="); ok {
			if v, err := strconv.ParseFloat(rate, 64); err == nil {
				rates = append(rates, v)
			}
		}
	}
	slices.Sort(rates)
	best := 0.0
	for _, rate := range rates {
		name := fmt.Sprintf("%scluster/rate=%.0f", bPipe, rate)
		v, _ := r.get(name, "events/s")
		unlogged, _ := r.get(name, "unlogged")
		handoffs, _ := r.get(name, "%handed-off")
		sustained, _ := r.get(name, "sustained")
		note := "not sustained"
		if sustained == 1 {
			note = "sustained"
			best = max(best, rate)
		}
		t.row(fmt.Sprintf("cluster: leader + hot standby + HTTP recorder, %s/s offered", num(rate, 0)),
			num(v, 0), ratio(v, txn32, okTxn), ratio(v, put4, okPut),
			fmt.Sprintf("%s (%s unlogged, %s%% of events handed off)", note, num(unlogged, 0), num(handoffs, 0)))
	}
	if len(rates) > 0 {
		t.row("cluster: highest offered rate sustained", num(best, 0), ratio(best, txn32, okTxn), ratio(best, put4, okPut),
			fmt.Sprintf("≥ %s: %s", num(budgetEventsPerSec, 0), verdict(best >= budgetEventsPerSec)))
	}
	t.flush()
	if v, ok := r.get("BenchmarkParse", "ns/op"); ok {
		dk, _ := r.get("BenchmarkDedupKey", "ns/op")
		fmt.Fprintf(out, "  CPU per event and node: events.Parse %s µs, of which the dedup key %s µs (each node parses every event: at %s events/s, %.2f core per node)\n",
			num(v/1000, 1), num(dk/1000, 1), num(budgetEventsPerSec, 0), v*budgetEventsPerSec/1e9)
	}

	// Latency.
	t = newTable(out, "EVENT → COMMAND LATENCY (ms): simulated Zoom's send → recorder's receipt, commands acting at once (start, pause, resume, tag)",
		"rate", "p50", "p99", "p99.9", "max", "commands", "ref: transport floor p50 / p99 / p99.9", "stops p50 (held back by design)", "budget")
	for _, rate := range []string{"100", "500", "1000"} {
		n := bLatency + rate
		budget := ""
		if rate == "500" {
			if p99, ok := r.get(n, "p99-ms"); ok {
				budget = fmt.Sprintf("p99 ≤ %d ms: %s", budgetP99At500.Milliseconds(), verdict(p99 <= float64(budgetP99At500.Milliseconds())))
			}
		}
		t.row(rate+"/s", val(n, "p50-ms", 2), val(n, "p99-ms", 2), val(n, "p99.9-ms", 2), val(n, "max-ms", 2), val(n, "commands", 0),
			val(n, "ref-p50-ms", 2)+" / "+val(n, "ref-p99-ms", 2)+" / "+val(n, "ref-p99.9-ms", 2), val(n, "stop-p50-ms", 0), budget)
	}
	t.flush()

	// Failover.
	ttl, okTTL := r.get(bFailover, "ttl-ms")
	title := fmt.Sprintf("FAILOVER: signal → recorder accepts the successor's epoch (drill, local processes), %d drills each, session TTL %s", o.drills, o.ttl)
	t = newTable(out, title, "kind", "n", "p50 ms", "p99 ms", "max ms", "p99 ÷ TTL", "budget")
	for _, kind := range []string{"graceful", "crash"} {
		budget := dash
		if p99, ok := r.get(bFailover, kind+"-p99-ms"); ok && okTTL {
			if kind == "graceful" {
				budget = fmt.Sprintf("p99 ≤ %d ms: %s", budgetGraceful.Milliseconds(), verdict(p99 <= float64(budgetGraceful.Milliseconds())))
			} else {
				budget = fmt.Sprintf("p99 ≤ TTL + 1 s = %s ms: %s", num(ttl+1000, 0), verdict(p99 <= ttl+1000))
			}
		}
		t.row(kind, val(bFailover, kind+"-n", 0), val(bFailover, kind+"-p50-ms", 0), val(bFailover, kind+"-p99-ms", 0),
			val(bFailover, kind+"-max-ms", 0), val(bFailover, kind+"-p99/ttl", 3), budget)
	}
	t.flush()
	if v, ok := r.get(bFailover, "verdict-pass"); ok {
		fmt.Fprintf(out, "  drill verdict over G1 G2 G3 G4 G6: %s (p99 of n < 100 drills is their maximum)\n", map[bool]string{true: "pass", false: "FAIL"}[v == 1])
	}

	// Mirror lag.
	t = newTable(out, "STANDBY MIRROR LAG (G5): leader's commit reply → the standby mirror holds that revision (ms)",
		"rate", "commits", "p50", "p99", "max", "within 100 ms", "ref: bare etcd watch p99 / max", "budget")
	for _, rate := range []string{"100", "500", "1000"} {
		n := bLatency + rate
		budget := dash
		if p99, ok := r.get(n, "mirror-p99-ms"); ok {
			budget = fmt.Sprintf("p99 ≤ %d ms: %s", budgetMirror.Milliseconds(), verdict(p99 <= float64(budgetMirror.Milliseconds())))
		}
		t.row(rate+"/s", val(n, "commits", 0), val(n, "mirror-p50-ms", 2), val(n, "mirror-p99-ms", 2), val(n, "mirror-max-ms", 2),
			val(n, "mirror-within-100ms-%", 2)+"%", val(n, "raw-watch-p99-ms", 2)+" / "+val(n, "raw-watch-max-ms", 2), budget)
	}
	t.flush()

	// Footprint.
	agents, _ := r.get(bFoot, "agents")
	engs, _ := r.get(bFoot, "engagements")
	t = newTable(out, fmt.Sprintf("FOOTPRINT at %s agents and %s open engagements (nodes and etcd as OS processes)", num(agents, 0), num(engs, 0)),
		"figure", "value", "reference", "budget")
	for _, role := range []string{"leader", "standby"} {
		budget := dash
		if v, ok := r.get(bFoot, "rss-"+role+"-MB"); ok {
			budget = fmt.Sprintf("≤ %d MB: %s", budgetRSSMB, verdict(v <= budgetRSSMB))
		}
		t.row("RSS of the "+role+" (MB)", val(bFoot, "rss-"+role+"-MB", 1),
			"idle "+val(bFoot, "rss-"+role+"-idle-MB", 1)+", Go heap in use "+val(bFoot, "heap-"+role+"-MB", 1), budget)
	}
	t.row("RSS of the etcd member (MB)", val(bFoot, "rss-etcd-MB", 1), "", "")
	t.row("etcd bytes per event, database in use (MVCC history)", val(bFoot, "etcd-inuse-B/event", 0),
		"live key-value bytes per event "+val(bFoot, "etcd-live-B/event", 0), "")
	t.row("state record per open engagement (bytes)", val(bFoot, "state-B/engagement", 0), "", "")
	t.flush()

	// etcd over an hour.
	t = newTable(out, "ETCD SIZE after one simulated hour at 200 events/s (the leader's writes, dedup window 20 min)",
		"compaction", "db file MB", "in use MB", "in use at 30 min", "growth MB/h (30→60 min)", "live keys", "budget: bounded")
	noneGrowth, okNone := r.get(bHour+"none", "growth-MB/h")
	for _, mode := range []struct{ name, label string }{
		{"none", "ref: none (etcd's default)"},
		{"periodic-5m", "periodic, 5 min (embedded, compose, README)"},
	} {
		n := bHour + mode.name
		budget := dash
		if g, ok := r.get(n, "growth-MB/h"); ok && mode.name == "none" && g > 0 {
			// The reference: how long etcd's default would last.
			inUse, _ := r.get(n, "inuse-MB")
			budget = fmt.Sprintf("(2 GiB quota full in ≈ %.1f h)", (etcdQuotaMB-inUse)/g+1)
		} else if ok && okNone && noneGrowth > 0 {
			// Bounded: the size no longer follows the volume written. The
			// reference is the same hour without compaction, where every
			// event's writes stay; what is left with compaction is bbolt's
			// page reuse, a few MB up or down.
			share := g / noneGrowth
			inUse, _ := r.get(n, "inuse-MB")
			budget = fmt.Sprintf("%s (growth %.0f%% of the uncompacted growth)", verdict(share <= 0.1), 100*max(share, 0))
			if share > 0.1 && g > 0 {
				budget = fmt.Sprintf("%s (2 GiB quota full in ≈ %.1f h)", verdict(false), (etcdQuotaMB-inUse)/g+1)
			}
		}
		t.row(mode.label, val(n, "db-MB", 1), val(n, "inuse-MB", 1), val(n, "inuse-half-MB", 1), val(n, "growth-MB/h", 1),
			val(n, "live-keys", 0), budget)
	}
	t.flush()
}
