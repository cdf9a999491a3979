package adapter_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/sim/traffic"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// propertyChecks bounds the cases of TestPropertyLedgerMatchesModel when
// -rapid.checks is not given: each case runs a whole in-process pair.
const propertyChecks = 4

// TestPropertyLedgerMatchesModel: random call stories from the traffic model
// × random delivery faults per subscription (delay, jitter, reorder,
// duplicates, copies that differ in event_ts, key order and volatile fields,
// and drops on one subscription only, so every event reaches at least one
// node) × a random node fault (none, or the leader stopped mid-traffic).
// The recorder's ledger must equal the model's expected commands: G1, G2,
// G3 and G6.
func TestPropertyLedgerMatchesModel(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: each case runs an in-process pair for ~6s")
	}
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		f.Value.Set(fmt.Sprint(propertyChecks)) //nolint:errcheck // a valid number
		defer f.Value.Set(f.DefValue)           //nolint:errcheck // restore
	}
	rapid.Check(t, func(rt *rapid.T) {
		seed := rapid.Int64Range(1, 1<<40).Draw(rt, "seed")
		faultFor := func(sub string, mayDrop bool) zoom.Faults {
			f := zoom.Faults{
				Delay:       zoom.Duration(time.Duration(rapid.IntRange(0, 150).Draw(rt, sub+".delay_ms")) * time.Millisecond),
				Jitter:      zoom.Duration(time.Duration(rapid.IntRange(0, 20).Draw(rt, sub+".jitter_ms")) * time.Millisecond),
				Duplicate:   rapid.Float64Range(0, 0.3).Draw(rt, sub+".duplicate"),
				EventTSSkew: int64(rapid.IntRange(-500, 500).Draw(rt, sub+".event_ts_skew_ms")),
				ShuffleKeys: rapid.Bool().Draw(rt, sub+".shuffle_keys"),
			}
			if rapid.Bool().Draw(rt, sub+".volatile") {
				f.VolatileField = "download_url"
			}
			if mayDrop {
				f.Drop = rapid.SampledFrom([]float64{0, 0.2, 1}).Draw(rt, sub+".drop")
			}
			return f
		}
		stopLeaderAt := time.Duration(rapid.SampledFrom([]int{0, 1500, 3000}).Draw(rt, "stop_leader_at_ms")) * time.Millisecond
		// G1 holds for events that reached a node alive to receive them.
		// A copy still in flight (delayed) to a leader that is stopped is
		// counted as delivered by the simulator, so drops go only to the
		// subscription of the node that is stopped (a leads first): the
		// survivor then holds every event.
		dropOnA := stopLeaderAt > 0 || rapid.Bool().Draw(rt, "drops_on_a")
		fa, fb := faultFor("sub-a", dropOnA), faultFor("sub-b", !dropOnA)

		l := newLab(t)
		defer l.Close()
		a := l.start("a")
		sa := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
		b := l.start("b")
		b.WaitRole(t, adapter.RoleStandby, 10*time.Second)
		if _, err := l.Zoom.SetFaults("sub-a", fa); err != nil {
			rt.Fatal(err)
		}
		if _, err := l.Zoom.SetFaults("sub-b", fb); err != nil {
			rt.Fatal(err)
		}
		l.startTraffic(traffic.Config{Seed: seed, Agents: 25, CallsPerSecond: 10,
			MinCall: traffic.Duration(300 * time.Millisecond), MaxCall: traffic.Duration(1500 * time.Millisecond),
			QueueTimeout: traffic.Duration(time.Second), AccountID: "acct-lab"})
		start := time.Now()
		if stopLeaderAt > 0 {
			time.Sleep(stopLeaderAt) // the fault's moment in the story, not a wait for a result
			a.Stop()
			b.WaitRole(t, adapter.RoleLeader, 10*time.Second)
		}
		time.Sleep(4*time.Second - time.Since(start)) // traffic duration
		truth := l.stopTraffic()
		for _, inv := range l.settle(t, truth) {
			if !inv.Pass {
				rt.Fatalf("%s %s failed (faults a=%+v b=%+v, leader epoch %d): %s; %v", inv.ID, inv.Name, fa, fb, sa.Epoch, inv.Evidence, inv.Details)
			}
		}
		rt.Logf("%d segments, %d events (%d undelivered) verified", len(truth.Segments), truth.Events, truth.Undelivered)
	})
}
