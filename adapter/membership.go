package adapter

import (
	"context"
	"fmt"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/wait"
)

// checkMembership refuses to start beside a live node with the same name or
// the same subscription (ErrNodeNameTaken, ErrSubscriptionShared). A record
// of this node's own previous run (a crash) is waited out: it vanishes with
// its lease within the session TTL. It returns nil when ctx ends while it
// waits.
func (n *Node) checkMembership(ctx context.Context) error {
	sub := ""
	if n.source != nil {
		sub = n.source.SubscriptionID()
	}
	deadline := time.Now().Add(n.cl.Settings().SessionTTL + 2*time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, err := n.cl.Members(cctx)
		cancel()
		if err != nil {
			return err
		}
		sameName := false
		for _, m := range members {
			switch {
			case m.Node == n.cfg.Name:
				sameName = true
			case sub != "" && m.Subscription == sub:
				return fmt.Errorf("%w: node %q is connected to subscription %s; give each node its own event subscription", ErrSubscriptionShared, m.Node, sub)
			}
		}
		if !sameName {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q is registered and alive; give each node its own name (node:)", ErrNodeNameTaken, n.cfg.Name)
		}
		n.log.Info().Msg("a previous run of this node is still registered; waiting for its session to expire")
		if wait.Sleep(ctx, 500*time.Millisecond) != nil {
			return nil
		}
	}
}

// checkHealth tracks the socket and publishes this node's health when it
// changes, and every 5s. Called from the run loop.
func (n *Node) checkHealth(ctx context.Context) {
	if n.source == nil {
		return
	}
	up := n.source.Status().Connected
	now := time.Now()
	if up {
		n.downSince.Store(0)
	} else if n.downSince.Load() == 0 {
		n.downSince.Store(now.UnixNano())
	}
	if up == n.healthUp && now.Sub(n.healthAt) < 5*time.Second {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := n.health.Publish(hctx, protocol.Health{SocketUp: up, At: now.UTC()}); err == nil {
		n.healthUp, n.healthAt = up, now
	}
}

// degraded reports whether the socket has been down for DegradedAfter.
func (n *Node) degraded() bool {
	since := n.downSince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= n.cfg.DegradedAfter
}

// healthyPeer reports whether another live node's socket is up.
func (n *Node) healthyPeer(ctx context.Context) bool {
	hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	peers, err := n.cl.PeersHealth(hctx)
	if err != nil {
		return false
	}
	for name, h := range peers {
		if name != n.cfg.Name && h.SocketUp && time.Since(h.At) < 15*time.Second {
			return true
		}
	}
	return false
}
