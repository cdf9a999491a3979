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
)

// recordingAction reports whether an action changes a recording (tags don't).
func recordingAction(a string) bool {
	return a == rcapi.ActionStart || a == rcapi.ActionPause || a == rcapi.ActionResume || a == rcapi.ActionStop
}

// appliedActions returns, per segment, the recording actions the recorder
// applied, in ledger order.
func appliedActions(l rcapi.Ledger) map[string][]string {
	out := map[string][]string{}
	for _, e := range l.Entries {
		if e.Kind == "command" && e.Result == rcapi.ResultApplied && e.Command != nil && recordingAction(e.Command.Action) {
			out[e.Command.SegmentID] = append(out[e.Command.SegmentID], e.Command.Action)
		}
	}
	return out
}

// compareTruth checks G1 (no lost command) and G2 (no duplicate effect):
// each delivered segment of the truth must have exactly its actions at the
// recorder, and the recorder must have no segment the truth lacks.
func compareTruth(truth traffic.Truth, l rcapi.Ledger) (g1, g2 Invariant) {
	got := appliedActions(l)
	g1 = Invariant{ID: "G1", Name: "no lost command"}
	g2 = Invariant{ID: "G2", Name: "no duplicate effect"}
	expected, skipped := 0, 0
	known := map[string]bool{}
	for _, s := range truth.Segments {
		known[s.SegmentID] = true
		if s.Undelivered {
			skipped++
			continue
		}
		expected += len(s.Actions)
		have := got[s.SegmentID]
		if slices.Equal(have, s.Actions) {
			continue
		}
		switch {
		case len(have) < len(s.Actions) && slices.Equal(have, s.Actions[:len(have)]):
			g1.Details = append(g1.Details, fmt.Sprintf("%s: expected %v, recorder has %v (missing %v)", s.SegmentID, s.Actions, have, s.Actions[len(have):]))
		case len(have) > len(s.Actions) && slices.Equal(have[:len(s.Actions)], s.Actions):
			g2.Details = append(g2.Details, fmt.Sprintf("%s: expected %v, recorder has %v (extra %v)", s.SegmentID, s.Actions, have, have[len(s.Actions):]))
		default:
			g1.Details = append(g1.Details, fmt.Sprintf("%s: expected %v, recorder has %v", s.SegmentID, s.Actions, have))
		}
	}
	var unknown []string
	for seg := range got {
		if !known[seg] {
			unknown = append(unknown, seg)
		}
	}
	sort.Strings(unknown)
	for _, seg := range unknown {
		g2.Details = append(g2.Details, fmt.Sprintf("%s: recorder has %v, the truth has no such segment", seg, got[seg]))
	}
	dups := 0
	for _, e := range l.Entries {
		if e.Result == rcapi.ResultDuplicate {
			dups++
		}
	}
	g1.Pass = len(g1.Details) == 0
	g2.Pass = len(g2.Details) == 0
	g1.Evidence = fmt.Sprintf("%d segments, %d recording actions expected; %d segments wrong; %d segments skipped (an event reached no subscription)",
		len(truth.Segments)-skipped, expected, len(g1.Details), skipped)
	g2.Evidence = fmt.Sprintf("%d extra or unknown segment actions; %d repeated commands absorbed by id", len(g2.Details), dups)
	g1.Details = capDetails(g1.Details)
	g2.Details = capDetails(g2.Details)
	return g1, g2
}

func capDetails(d []string) []string {
	if len(d) > 20 {
		return append(d[:20:20], fmt.Sprintf("… and %d more", len(d)-20))
	}
	return d
}

// checkFencing checks G3: in ledger order, no applied message carries an
// epoch lower than one applied before it.
func checkFencing(l rcapi.Ledger) Invariant {
	inv := Invariant{ID: "G3", Name: "fencing: no stale epoch applied"}
	var max int64
	stale, epochs := 0, map[int64]bool{}
	for _, e := range l.Entries {
		var ep int64
		switch {
		case e.Command != nil:
			ep = e.Command.Epoch
		case e.Agent != nil:
			ep = e.Agent.Epoch
		case e.Claim != nil:
			ep = e.Claim.Epoch
		}
		if e.Result == rcapi.ErrCodeStaleEpoch {
			stale++
			continue
		}
		if e.Result != rcapi.ResultApplied {
			continue
		}
		epochs[ep] = true
		if ep < max {
			inv.Details = append(inv.Details, fmt.Sprintf("entry %d applied with epoch %d after epoch %d", e.Seq, ep, max))
		}
		max = maxI(max, ep)
	}
	inv.Pass = len(inv.Details) == 0
	inv.Evidence = fmt.Sprintf("%d epochs applied in increasing order; %d messages rejected as stale", len(epochs), stale)
	inv.Details = capDetails(inv.Details)
	return inv
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func (d *drill) verify(ctx context.Context, truth traffic.Truth, l rcapi.Ledger) {
	g1, g2 := compareTruth(truth, l)
	g3 := checkFencing(l)
	g4 := Invariant{ID: "G4", Name: "failover time", Pass: len(d.rep.Failovers) == 2}
	var ev []string
	for _, f := range d.rep.Failovers {
		ev = append(ev, fmt.Sprintf("%s %.0f ms ≤ %.0f ms", f.Kind, f.TakeoverMS, f.BudgetMS))
		if !f.Pass {
			g4.Pass = false
			g4.Details = append(g4.Details, fmt.Sprintf("%s failover %s→%s: takeover %.0f ms, budget %.0f ms, exit code %d", f.Kind, f.From, f.To, f.TakeoverMS, f.BudgetMS, f.ExitCode))
		}
	}
	g4.Evidence = strings.Join(ev, "; ")
	invalid := 0
	for _, e := range l.Entries {
		if e.Result == rcapi.ErrCodeInvalidTransition {
			invalid++
		}
	}
	g6 := Invariant{ID: "G6", Name: "order per engagement", Pass: invalid == 0,
		Evidence: fmt.Sprintf("%d commands refused as invalid transitions", invalid)}
	d.rep.Invariants = []Invariant{g1, g2, g3, g4, g6}

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
	for name, n := range d.nodes {
		if s, err := d.status(ctx, n); err == nil {
			c.EventsPerNode[name] = s.Received
			c.HandedOffPerNode[name] = s.HandedOff
		}
	}
}

// PrintTable writes the report as tables for people.
func PrintTable(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nFAILOVER\tFROM→TO\tEPOCHS\tDETECT ms\tTAKEOVER ms\tFIRST CMD ms\tBUDGET ms\tEXIT\tRESULT")
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
		fmt.Fprintf(w, "node %s: %d events received (current run), %d handed off\n", n, c.EventsPerNode[n], c.HandedOffPerNode[n])
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if r.WorkDir != "" {
		fmt.Fprintf(w, "logs and data: %s\n", r.WorkDir)
	}
	fmt.Fprintf(w, "\nverdict: %s (%.1fs)\n", strings.ToUpper(r.Verdict), float64(r.DurationMS)/1000)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
