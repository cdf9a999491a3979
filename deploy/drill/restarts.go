package drill

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zccadapter/zccadapter/wait"
)

// restartEtcd stops an etcd member for a.For (default 1s), starts it, and
// measures how soon a leader drives the recorder again (budget: TTL + 5s
// after etcd is back: the old leader's lease must expire first).
func (d *drill) restartEtcd(ctx context.Context, a Action) error {
	_, st, _ := d.waitLeader(ctx, "", 0, 5*time.Second)
	stopAt := time.Now()
	member, err := d.be.StopEtcd(ctx, a.Member)
	if err != nil {
		return err
	}
	downAt := time.Now()
	down := cmp.Or(a.For, time.Second)
	d.smp.mark("etcd " + member + " down")
	d.progress("etcd member %s stopped for %s", member, down)
	if err := wait.Sleep(ctx, down); err != nil {
		return err
	}
	backAt := time.Now()
	if err := d.be.StartEtcd(ctx, member); err != nil {
		return err
	}
	d.smp.mark("etcd " + member + " back")
	fo := Failover{Kind: "etcd-restart", From: st.Node, FromEpoch: st.Epoch, FaultAt: backAt,
		BudgetMS: float64((d.sc.SessionTTL + 5*time.Second).Milliseconds())}
	minEpoch := st.Epoch
	if q, ok := d.be.(interface{ EtcdKeepsQuorum() bool }); ok && q.EtcdKeepsQuorum() {
		// The other members kept quorum: the leader may keep its term, or
		// a successor leads within the crash budget of the member going
		// down (its graceful stop included), measured from the stop.
		fo.FaultAt = stopAt
		fo.BudgetMS = float64((d.sc.SessionTTL + time.Second + downAt.Sub(stopAt)).Milliseconds())
		minEpoch = st.Epoch - 1
	}
	to, ts, err := d.waitLeader(ctx, "", minEpoch, d.sc.SessionTTL+20*time.Second)
	if err != nil {
		d.rep.Failovers = append(d.rep.Failovers, fo)
		return fmt.Errorf("no leader after etcd came back: %w", err)
	}
	if ts.Epoch == st.Epoch {
		fo.To, fo.ToEpoch, fo.Pass = to, ts.Epoch, true
		d.rep.Failovers = append(d.rep.Failovers, fo)
		d.progress("etcd back; %s kept its term (epoch %d) through the member's restart", to, ts.Epoch)
		return nil
	}
	fo.To, fo.ToEpoch, fo.DetectMS = to, ts.Epoch, ms(ts.ElectedAt.Sub(fo.FaultAt))
	d.takeover(ctx, &fo)
	d.rep.Failovers = append(d.rep.Failovers, fo)
	d.progress("etcd back; %s leads with epoch %d after %.0f ms (budget %.0f ms)", to, ts.Epoch, fo.TakeoverMS, fo.BudgetMS)
	return nil
}

// recorderRestarter is a backend that can stop the reference recorder and
// start it again on the same address and state file.
type recorderRestarter interface {
	// StopRecorder sends SIGKILL (kill) or SIGTERM and returns the
	// recorder's exit code (-1 for death by signal) once it has exited.
	StopRecorder(ctx context.Context, kill bool) (int, error)
	// StartRecorder starts it again and returns once its ledger answers.
	StartRecorder(ctx context.Context) error
}

// restartRecorder stops the recorder with a.Signal (default term), keeps it
// down for a.For (default 1s) counted from the signal, starts it again on
// its state file and checks that its ledger came back whole.
func (d *drill) restartRecorder(ctx context.Context, a Action) error {
	rr := d.be.(recorderRestarter) // checked before the drill starts
	before, err := readLedger(ctx, d.hc, d.be.RecorderURL())
	if err != nil {
		return fmt.Errorf("read the ledger before the recorder restart: %w", err)
	}
	rs := RecorderRestart{Signal: cmp.Or(a.Signal, "term"), StopAt: time.Now(), EntriesBefore: len(before.Entries)}
	down := cmp.Or(a.For, time.Second)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	rs.ExitCode, err = rr.StopRecorder(wctx, rs.Signal == "kill")
	cancel()
	if err != nil {
		return fmt.Errorf("stop the recorder: %w", err)
	}
	d.smp.mark("recorder down (" + rs.Signal + ")")
	d.progress("recorder stopped by SIG%s (exit code %d after %.0f ms); down for %s",
		strings.ToUpper(rs.Signal), rs.ExitCode, ms(time.Since(rs.StopAt)), down)
	if err := wait.Sleep(ctx, time.Until(rs.StopAt.Add(down))); err != nil {
		return err
	}
	if err := rr.StartRecorder(ctx); err != nil {
		return fmt.Errorf("start the recorder again: %w", err)
	}
	rs.DownMS = ms(time.Since(rs.StopAt))
	d.smp.mark("recorder back")
	after, err := readLedger(ctx, d.hc, d.be.RecorderURL())
	if err != nil {
		d.rep.RecorderRestarts = append(d.rep.RecorderRestarts, rs)
		return fmt.Errorf("read the ledger after the recorder restart: %w", err)
	}
	rs.EntriesAfter = len(after.Entries)
	var problems []string
	if rs.Signal == "term" && rs.ExitCode != 0 {
		problems = append(problems, fmt.Sprintf("exit code %d after SIGTERM, want 0", rs.ExitCode))
	}
	if len(after.Entries) < len(before.Entries) {
		problems = append(problems, fmt.Sprintf("%d ledger entries after the restart, %d before", len(after.Entries), len(before.Entries)))
	} else {
		for i, e := range before.Entries {
			g := after.Entries[i]
			if g.Seq != e.Seq || g.Kind != e.Kind || g.Result != e.Result || !g.ReceivedAt.Equal(e.ReceivedAt) {
				problems = append(problems, fmt.Sprintf("ledger entry %d changed across the restart: seq %d %s %s, was seq %d %s %s",
					i+1, g.Seq, g.Kind, g.Result, e.Seq, e.Kind, e.Result))
				break
			}
		}
	}
	rs.Pass = len(problems) == 0
	d.rep.RecorderRestarts = append(d.rep.RecorderRestarts, rs)
	for _, p := range problems {
		d.fail(fmt.Errorf("recorder restart at %s: %s", a.At, p))
	}
	d.progress("recorder back after %.0f ms with %d ledger entries (%d before the signal), replayed from its state file",
		rs.DownMS, rs.EntriesAfter, rs.EntriesBefore)
	return nil
}
