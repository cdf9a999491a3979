package drill

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/verify"
)

func (d *drill) verify(ctx context.Context, truth traffic.Truth, l rcapi.Ledger) {
	g1, g2 := verify.CompareTruth(truth, l)
	g3 := verify.CheckFencing(l)
	// The first command of each new term, from the final ledger (at the
	// failover itself no call event may have come yet).
	for i := range d.rep.Failovers {
		f := &d.rep.Failovers[i]
		if f.ToEpoch == f.FromEpoch {
			continue // the term survived (etcd kept quorum): no new term to time
		}
		for _, e := range l.Entries {
			if e.Kind == "command" && e.Command != nil && e.Command.Epoch == f.ToEpoch && e.Result == rcapi.ResultApplied {
				f.FirstCommandMS = ms(e.ReceivedAt.Sub(f.FaultAt))
				break
			}
		}
	}
	want := 0
	for _, a := range d.sc.Actions {
		if a.Node == "leader" && (a.Do == ActKill || a.Do == ActStop || a.Do == ActPause || a.Do == ActPartition) {
			want++
		}
	}
	if d.sc.Expect.Failovers != nil {
		want = *d.sc.Expect.Failovers
	}
	g4 := verify.Invariant{ID: "G4", Name: "failover time", Pass: len(d.rep.Failovers) >= want}
	var ev []string
	if len(d.rep.Failovers) < want {
		g4.Details = append(g4.Details, fmt.Sprintf("%d failovers measured, %d expected", len(d.rep.Failovers), want))
	}
	for _, f := range d.rep.Failovers {
		ev = append(ev, fmt.Sprintf("%s %.0f ms ≤ %.0f ms", f.Kind, f.TakeoverMS, f.BudgetMS))
		if !f.Pass {
			g4.Pass = false
			g4.Details = append(g4.Details, fmt.Sprintf("%s failover %s→%s: takeover %.0f ms, budget %.0f ms, exit code %d", f.Kind, f.From, f.To, f.TakeoverMS, f.BudgetMS, f.ExitCode))
		}
	}
	if len(ev) == 0 {
		ev = append(ev, "no failover in this scenario")
	}
	g4.Evidence = strings.Join(ev, "; ")
	g6 := verify.Order(l)
	var invs []verify.Invariant
	for _, inv := range []verify.Invariant{g1, g2, g3, g4, g6} {
		if slices.Contains(d.sc.Expect.Invariants, inv.ID) {
			invs = append(invs, inv)
		}
	}
	if len(d.sc.Expect.NoStartFor) > 0 || len(d.sc.Expect.StartFor) > 0 {
		invs = append(invs, expectations(d.sc.Expect, l))
	}

	c := &d.rep.Counts
	c.Calls, c.Answered, c.Transfers, c.Holds = truth.Calls, truth.Answered, truth.Transfers, truth.Holds
	c.EventsSent, c.EventsUndelivered, c.Segments = truth.Events, truth.Undelivered, len(truth.Segments)
	c.LedgerEntries = len(l.Entries)
	for _, e := range l.Entries {
		switch e.Result {
		case rcapi.ResultApplied:
			if e.Kind == "command" {
				c.CommandsApplied++
			}
		case rcapi.ResultDuplicate:
			c.Duplicates++
		case rcapi.ErrCodeStaleEpoch:
			c.StaleRejected++
		case rcapi.ErrCodeInvalidTransition:
			c.Invalid++
		}
	}
	c.EventsPerNode, c.HandedOffPerNode = map[string]int64{}, map[string]int64{}
	for _, name := range d.sc.NodeNames() {
		if doc, url, err := d.statusDoc(ctx, name); err == nil {
			d.smp.count(name, url, doc)
			c.EventsPerNode[name] = doc.Received
			c.HandedOffPerNode[name] = doc.HandedOff
		}
	}
	bad, quarantine := d.smp.badTotals()
	c.MalformedPerNode, c.BadSignaturePerNode = map[string]int64{}, map[string]int64{}
	if quarantine {
		c.QuarantinedPerNode = map[string]int64{}
	}
	for n, b := range bad {
		c.MalformedPerNode[n], c.BadSignaturePerNode[n] = b.malformed, b.badSignature
		if quarantine {
			c.QuarantinedPerNode[n] = b.quarantined
		}
	}
	if m := d.sc.Expect.MalformedAtLeast; m != nil {
		invs = append(invs, badInputCounted(*m, d.sc.NodeNames(), bad, quarantine))
	}
	d.rep.Invariants = invs
}

// badInputCounted checks G7's visible half: every node counted at least
// want events as malformed or quarantined over its runs. A malformed event
// from the socket is counted in both (malformed, then quarantined), so the
// larger of the two is what the node saw, never their sum: a sum could hide
// a poison event that was taken for an event.
func badInputCounted(want int, nodes []string, bad map[string]badCounts, quarantine bool) verify.Invariant {
	inv := verify.Invariant{ID: "G7", Name: "bad input counted"}
	var ev []string
	for _, n := range nodes {
		b, seen := bad[n]
		got := max(b.malformed, b.quarantined)
		q := "no quarantine count"
		if quarantine {
			q = fmt.Sprintf("%d quarantined", b.quarantined)
		}
		ev = append(ev, fmt.Sprintf("%s: %d malformed, %s, %d bad signature", n, b.malformed, q, b.badSignature))
		switch {
		case !seen:
			inv.Details = append(inv.Details, fmt.Sprintf("node %s: its /status never answered", n))
		case got < int64(want):
			inv.Details = append(inv.Details, fmt.Sprintf("node %s counted %d events malformed or quarantined, expected at least %d: the rest were taken for events", n, got, want))
		}
	}
	inv.Pass = len(inv.Details) == 0
	inv.Evidence = fmt.Sprintf("at least %d per node; %s", want, strings.Join(ev, "; "))
	return inv
}

// expectations checks a scenario's extra expectations against the ledger.
func expectations(e Expect, l rcapi.Ledger) verify.Invariant {
	inv := verify.Invariant{ID: "X", Name: "scenario expectations"}
	started := map[string]bool{}
	startedEng := map[string]bool{}
	for _, en := range l.Entries {
		if en.Kind == "command" && en.Result == rcapi.ResultApplied && en.Command.Action == rcapi.ActionStart {
			started[en.Command.SegmentID] = true
			startedEng[en.Command.EngagementID] = true
		}
	}
	for _, eng := range e.NoStartFor {
		if startedEng[eng] {
			inv.Details = append(inv.Details, fmt.Sprintf("engagement %s was started, expected no start", eng))
		}
	}
	for _, seg := range e.StartFor {
		if !started[seg] {
			inv.Details = append(inv.Details, fmt.Sprintf("segment %s was never started", seg))
		}
	}
	inv.Pass = len(inv.Details) == 0
	inv.Evidence = fmt.Sprintf("%d no-start and %d start expectations; %d unmet", len(e.NoStartFor), len(e.StartFor), len(inv.Details))
	return inv
}

// PrintTable writes the report as tables for people.
func PrintTable(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Failovers) == 0 {
		fmt.Fprintln(tw, "\nno failover in this scenario")
	} else {
		fmt.Fprintln(tw, "\nFAILOVER\tFROM→TO\tEPOCHS\tDETECT ms\tTAKEOVER ms\tFIRST CMD ms\tBUDGET ms\tEXIT\tRESULT")
	}
	for _, f := range r.Failovers {
		fmt.Fprintf(tw, "%s\t%s→%s\t%d→%d\t%.1f\t%.1f\t%.1f\t%.0f\t%d\t%s\n", f.Kind, f.From, f.To, f.FromEpoch, f.ToEpoch,
			f.DetectMS, f.TakeoverMS, f.FirstCommandMS, f.BudgetMS, f.ExitCode, passFail(f.Pass))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nINVARIANT\tRESULT\tEVIDENCE")
	for _, inv := range r.Invariants {
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", inv.ID, inv.Name, passFail(inv.Pass), inv.Evidence)
	}
	tw.Flush()
	for _, inv := range r.Invariants {
		for _, d := range inv.Details {
			fmt.Fprintf(w, "  %s: %s\n", inv.ID, d)
		}
	}
	c := r.Counts
	fmt.Fprintf(w, "\ncalls %d (answered %d, transfers %d, holds %d); events sent %d (undelivered %d); segments %d\n",
		c.Calls, c.Answered, c.Transfers, c.Holds, c.EventsSent, c.EventsUndelivered, c.Segments)
	fmt.Fprintf(w, "recorder: %d commands applied, %d duplicates absorbed, %d stale-epoch rejected, %d invalid transitions\n",
		c.CommandsApplied, c.Duplicates, c.StaleRejected, c.Invalid)
	var nodes []string
	for n := range c.EventsPerNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		bad := fmt.Sprintf("%d malformed", c.MalformedPerNode[n])
		if c.QuarantinedPerNode != nil {
			bad += fmt.Sprintf(", %d quarantined", c.QuarantinedPerNode[n])
		}
		fmt.Fprintf(w, "node %s: %d events received (current run), %d handed off; %s, %d bad signature (all runs)\n",
			n, c.EventsPerNode[n], c.HandedOffPerNode[n], bad, c.BadSignaturePerNode[n])
	}
	for _, rr := range r.RecorderRestarts {
		fmt.Fprintf(w, "recorder restart (SIG%s): exit code %d, down %.0f ms, ledger %d entries before, %d after: %s\n",
			strings.ToUpper(rr.Signal), rr.ExitCode, rr.DownMS, rr.EntriesBefore, rr.EntriesAfter, passFail(rr.Pass))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if r.Logs != "" {
		fmt.Fprintf(w, "logs: %s\n", r.Logs)
	}
	fmt.Fprintf(w, "\nscenario %s: verdict %s (%.1fs)\n", r.Scenario, strings.ToUpper(r.Verdict), float64(r.DurationMS)/1000)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
