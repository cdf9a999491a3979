package verify

import (
	"fmt"
	"slices"
	"sort"

	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/sim/traffic"
)

// Invariant is one guarantee with its verdict and evidence.
type Invariant struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Pass     bool     `json:"pass"`
	Evidence string   `json:"evidence"`
	Details  []string `json:"details,omitempty"`
}

// Order checks G6: the recorder refused no command as an invalid
// transition.
func Order(l rcapi.Ledger) Invariant {
	invalid := 0
	for _, e := range l.Entries {
		if e.Result == rcapi.ErrCodeInvalidTransition {
			invalid++
		}
	}
	return Invariant{ID: "G6", Name: "order per engagement", Pass: invalid == 0,
		Evidence: fmt.Sprintf("%d commands refused as invalid transitions", invalid)}
}

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

// CompareTruth checks G1 (no lost command) and G2 (no duplicate effect):
// each delivered segment of the truth must have exactly its actions at the
// recorder, and the recorder must have no segment the truth lacks.
func CompareTruth(truth traffic.Truth, l rcapi.Ledger) (g1, g2 Invariant) {
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

// CheckFencing checks G3: in ledger order, no applied message carries an
// epoch lower than one applied before it, and no deposed leader sent
// anything at all (each stale_epoch rejection means a node's self-fencing
// let a message through, even though the recorder caught it).
func CheckFencing(l rcapi.Ledger) Invariant {
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
	if stale > 0 {
		// The recorder's check held, but a deposed leader tried to send:
		// its self-fencing deadline should have stopped it first.
		inv.Details = append(inv.Details, fmt.Sprintf("%d messages from a deposed leader reached the recorder (rejected as stale)", stale))
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
