package adapter

import (
	"context"
	"time"

	"github.com/zccadapter/zccadapter/redact"
	"github.com/zccadapter/zccadapter/wait"
)

// promotionBackoff holds campaigning back after a promotion failed: the
// ceiling doubles from 200 ms to 10 s with each failure in a row, and each
// hold is drawn between half the ceiling and the ceiling (promotionHold).
// A cause that outlives the term (etcd, the recorder, a bug) must not make
// the node win and lose hundreds of terms a minute, and the hold gives the
// peer its turn.
var promotionBackoff = wait.Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second}

// promotionHold returns the hold after the n-th failure in a row (from 0):
// jittered in [ceiling/2, ceiling] of promotionBackoff.
func promotionHold(n int) time.Duration {
	b := promotionBackoff
	b.Jitter, b.Floor = true, b.Ceiling(n)/2
	return b.Delay(n)
}

// leaderCheckEvery is how often a standby reads who holds the election,
// for /readyz and /status (never per request).
const leaderCheckEvery = 500 * time.Millisecond

// promotionFailed records a promotion that failed with err: counted and
// shown in /status and the metrics, and campaigning held back by
// promotionBackoff. Called from the run loop.
func (n *Node) promotionFailed(err error) {
	d := promotionHold(n.promoteFailures)
	n.promoteFailures++
	n.promoteUntil.Store(time.Now().Add(d).UnixNano())
	msg := redact.Truncate(redact.Text(err.Error()), 512)
	n.count(func(s *NodeStatus) { s.PromotionFailures++; s.LastPromotionError = msg })
	n.log.Warn().Dur("retry_in", d).Int("in_a_row", n.promoteFailures).Msg("promotion failed; campaigning again after a backoff")
}

// promotionSucceeded ends the backoff of promotionFailed. Called from the
// run loop.
func (n *Node) promotionSucceeded() {
	n.promoteFailures = 0
	n.promoteUntil.Store(0)
}

// campaignHold returns how long campaigning is held back: by a stale-epoch
// refusal or a failed promotion.
func (n *Node) campaignHold() time.Duration {
	until := max(n.staleUntil.Load(), n.promoteUntil.Load())
	return time.Until(time.Unix(0, until))
}

// pairLeader is who held the election when a standby last looked.
type pairLeader struct {
	node string // "" when no node held it
	at   time.Time
}

// checkLeader reads who holds the election, at most every
// leaderCheckEvery, and caches it for /readyz and /status. A failed read
// leaves the cache as it was (etcd's own state shows in etcd_ok). Called
// from the standby loop.
func (n *Node) checkLeader(ctx context.Context) {
	now := time.Now()
	if now.Sub(n.leaderCheckedAt) < leaderCheckEvery {
		return
	}
	n.leaderCheckedAt = now
	lctx, cancel := context.WithTimeout(ctx, leaderCheckEvery)
	node, _, err := n.cl.Leader(lctx)
	cancel()
	if err != nil {
		return
	}
	n.pairLeader.Store(&pairLeader{node: node, at: now})
}
