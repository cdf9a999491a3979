package adapter

import (
	"context"
	"sync"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/wait"
)

// Backoffs of the standby: between failed campaigns (each with a new
// session), and after the recorder refused this cluster's epoch as stale.
var (
	campaignBackoff   = wait.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	staleEpochBackoff = wait.Backoff{Min: 2 * time.Second, Max: time.Minute}
)

// standby keeps intake and handoff going while it campaigns; it returns the
// won term, or nil when ctx ended: then it has handed off what it holds
// that the leader's log does not show (handOffAtStop).
func (n *Node) standby(ctx context.Context) protocol.Term {
	n.setRole(RoleStandby, 0)
	n.pairLeader.Store(nil)
	n.leaderCheckedAt = time.Time{}
	cctx, cancel := context.WithCancel(ctx)
	won := make(chan protocol.Term, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		won <- n.campaign(cctx)
	}()
	defer wg.Wait()
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-n.inbox:
			n.intake(ev)
		case <-tick.C:
			n.sweep(ctx)
			n.checkHealth(ctx)
			n.checkLeader(ctx)
		case t := <-won:
			return t
		case <-ctx.Done():
			cancel()
			wg.Wait()
			n.resignWonWhileStopping(ctx, won)
			n.handOffAtStop(ctx)
			return nil
		}
	}
}

// resignWonWhileStopping resigns the term the campaign may have won just
// as the node stops (the campaign has ended), or the peer waits a session
// TTL for it.
func (n *Node) resignWonWhileStopping(ctx context.Context, won <-chan protocol.Term) {
	select {
	case t := <-won:
		if t != nil {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := t.Resign(rctx); err != nil {
				n.log.Warn().Err(err).Msg("resigning the term won while stopping failed; it expires after its TTL")
			}
			rcancel()
		}
	default:
	}
}

// campaign retries Campaign until it wins or ctx ends (nil). It waits out
// a stale-epoch hold or a failed promotion's backoff first, and while this node is degraded and a peer's
// socket is up it leaves leadership to that peer.
func (n *Node) campaign(ctx context.Context) protocol.Term {
	m := protocol.Member{Version: n.cfg.Version, Address: n.cfg.Address}
	if n.source != nil {
		m.Subscription = n.source.SubscriptionID()
	}
	for failures := 0; ; failures++ {
		if hold := n.campaignHold(); hold > 0 {
			if wait.Sleep(ctx, hold) != nil {
				return nil
			}
		}
		// A node whose socket is dead leaves leadership to a healthy peer.
		for n.degraded() && n.healthyPeer(ctx) {
			if wait.Sleep(ctx, 500*time.Millisecond) != nil {
				return nil
			}
		}
		t, err := n.cl.Campaign(ctx, m)
		if err == nil {
			return t
		}
		if ctx.Err() != nil {
			return nil
		}
		backoff := campaignBackoff.Delay(failures)
		n.log.Warn().Err(err).Dur("backoff", backoff).Msg("campaign failed; campaigning again with a new session")
		n.count(func(s *NodeStatus) { s.LastError = err.Error() })
		if wait.Sleep(ctx, backoff) != nil {
			return nil
		}
	}
}

// staleEpochWait returns how long to hold campaigning back after a stale
// epoch refusal (doubling from 2s to 1m with each refusal in a row) and
// arms the hold. Called from the run loop.
func (n *Node) staleEpochWait() time.Duration {
	d := staleEpochBackoff.Delay(n.staleRefusals)
	n.staleRefusals++
	n.staleUntil.Store(time.Now().Add(d).UnixNano())
	return d
}
