package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/bench/kit"
	"github.com/zccadapter/zccadapter/deploy/drill"
)

// BenchmarkFailover runs the drill (deploy/drill, local backend: etcd, the
// simulated Zoom, the recorder and nodes a and b as OS processes on
// loopback) with ZCC_BENCH_DRILLS (default 5) SIGKILLs and as many SIGTERMs
// of the leader, alternating, under call traffic (80 agents, 2 calls/s, the
// drill's defaults, pause_on_hold as the drill's truth counts it); each
// killed or stopped node is restarted as standby, and the pair runs steady
// for about 3.5 s, before the next fault. The session TTL is ZCC_BENCH_TTL (default 5s, the
// production default).
//
// Takeover is the drill's: from the signal to the recorder's acceptance of
// the successor's epoch. Reported per kind: p50, p99 and max in ms and p99
// as a ratio to the TTL (with N drills p99 is the largest of them when
// N < 100), and the drill's verdict over G1–G6 (1 pass, 0 fail).
func BenchmarkFailover(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark: skipped with -short")
	}
	n := envInt("ZCC_BENCH_DRILLS", 5)
	ttl := envDuration("ZCC_BENCH_TTL", 5*time.Second)
	bin := benchBinary(b)
	// Each fault gets a slot long enough for the takeover, the restart of
	// the faulted node and then about 3.5 s of a steady pair (more than the
	// leader's 3 s hold-back of leg-ending events), so that every drill
	// starts from a hot standby and no two faults overlap. (A drill runs an
	// action late if the previous one is still restarting its node.)
	var actions strings.Builder
	at := 3 * time.Second
	for i := 0; i < n; i++ {
		fmt.Fprintf(&actions, "  - {at: %s, do: %s, node: leader}\n", at, drill.ActKill)
		at += ttl + 4*time.Second
		fmt.Fprintf(&actions, "  - {at: %s, do: %s, node: leader}\n", at, drill.ActStop)
		at += 4 * time.Second
	}
	yaml := fmt.Sprintf(`name: bench-failover
description: %d SIGKILLs and %d SIGTERMs of the leader, alternating, each node restarted as standby
session_ttl: %s
traffic: {duration: %s, agents: 80, calls_per_second: 2}
actions:
%s`, n, n, ttl, at, actions.String())
	sc, err := drill.ParseScenario("bench-failover", []byte(yaml))
	if err != nil {
		b.Fatal(err)
	}
	progress("failover: %d crash and %d graceful drills, session TTL %s (about %s)", n, n, ttl, at+20*time.Second)
	var out io.Writer = io.Discard
	if os.Getenv("ZCC_BENCH_VERBOSE") != "" {
		out = os.Stderr
	}
	start := time.Now()
	rep, err := drill.Run(context.Background(), drill.Options{Scenario: sc, Binary: bin, Progress: out, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	progress("failover: %d failovers in %s, verdict %s", len(rep.Failovers), time.Since(start).Round(time.Second), rep.Verdict)
	byKind := map[string][]time.Duration{}
	for _, f := range rep.Failovers {
		byKind[f.Kind] = append(byKind[f.Kind], time.Duration(f.TakeoverMS*float64(time.Millisecond)))
	}
	b.ReportMetric(0, "ns/op")
	for _, kind := range []string{"crash", "graceful"} {
		d := kit.NewDist(byKind[kind])
		b.ReportMetric(float64(len(d)), kind+"-n")
		b.ReportMetric(kit.MS(d.Q(.5)), kind+"-p50-ms")
		b.ReportMetric(kit.MS(d.Q(.99)), kind+"-p99-ms")
		b.ReportMetric(kit.MS(d.Max()), kind+"-max-ms")
		b.ReportMetric(d.Q(.99).Seconds()/ttl.Seconds(), kind+"-p99/ttl")
		b.Logf("%s takeover: %s (TTL %s)", kind, d, ttl)
	}
	b.ReportMetric(ttl.Seconds()*1000, "ttl-ms")
	pass := 0.0
	if rep.Verdict == "pass" {
		pass = 1
	}
	b.ReportMetric(pass, "verdict-pass")
	for _, inv := range rep.Invariants {
		b.Logf("%s %s: pass=%v %s", inv.ID, inv.Name, inv.Pass, inv.Evidence)
	}
	for _, e := range rep.Errors {
		b.Logf("drill error: %s", e)
	}
	if rep.WorkDir != "" {
		b.Logf("drill work dir kept: %s", rep.WorkDir)
	}
}
