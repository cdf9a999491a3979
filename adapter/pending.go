package adapter

import (
	"context"
	"sort"
	"time"

	"github.com/zccadapter/zccadapter/events"
)

// pendingEvent is an event this node holds that the leader's log does not
// show yet. Owned by the run loop.
type pendingEvent struct {
	ev        *events.Event
	seq       uint64
	arrived   time.Time
	handedOff bool
}

// intake records an event from the node's own socket: counted as received,
// then dropped as deduplicated when the log shows it, or added to pending
// (returned; the existing entry when it is already pending, counted as
// deduplicated). nil means the log shows it.
func (n *Node) intake(ev *events.Event) *pendingEvent {
	n.count(func(s *NodeStatus) {
		s.Received++
		if ev.Time.After(s.LastEventAt) {
			s.LastEventAt = ev.Time
		}
	})
	n.countEvent(ev, OutcomeReceived)
	if n.mirror.Applied(ev.Key) {
		n.count(func(s *NodeStatus) { s.Deduplicated++ })
		n.countEvent(ev, OutcomeDeduplicated)
		return nil
	}
	if p, ok := n.pending[ev.Key]; ok {
		n.count(func(s *NodeStatus) { s.Deduplicated++ })
		n.countEvent(ev, OutcomeDeduplicated)
		return p
	}
	p := n.addPending(ev)
	if len(n.pending) > n.cfg.MaxPending {
		n.dropOldest()
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
	return p
}

// intakeQuiet adds an event to pending without counting it as received
// (a handoff from another node); it returns its pending entry.
func (n *Node) intakeQuiet(ev *events.Event) *pendingEvent {
	if p, ok := n.pending[ev.Key]; ok {
		return p
	}
	return n.addPending(ev)
}

func (n *Node) addPending(ev *events.Event) *pendingEvent {
	n.seq++
	p := &pendingEvent{ev: ev, seq: n.seq, arrived: time.Now()}
	n.pending[ev.Key] = p
	return p
}

// dropOldest drops the pending event that arrived first, and counts it.
func (n *Node) dropOldest() {
	var oldest *pendingEvent
	for _, p := range n.pending {
		if oldest == nil || p.seq < oldest.seq {
			oldest = p
		}
	}
	delete(n.pending, oldest.ev.Key)
	n.count(func(s *NodeStatus) { s.Dropped++ })
	n.log.Error().Str("event", oldest.ev.Name).Int("max_pending", n.cfg.MaxPending).Msg("pending events over the limit; oldest dropped")
}

// sweep drops pending events the leader has logged and hands off those
// older than the grace period.
func (n *Node) sweep(ctx context.Context) {
	now := time.Now()
	maxAge := n.cl.Settings().DedupWindow / 2
	var due []*pendingEvent
	for k, p := range n.pending {
		if n.mirror.Applied(k) {
			delete(n.pending, k)
			continue
		}
		if now.Sub(p.arrived) > maxAge {
			// Older than the dedup log remembers: handing it over now
			// could apply it twice. Counted and dropped.
			delete(n.pending, k)
			n.count(func(s *NodeStatus) { s.Dropped++ })
			n.log.Warn().Str("event", p.ev.Name).Str("engagement_id", EngagementID(p.ev)).Msg("pending event older than half the dedup window dropped")
			continue
		}
		if !p.handedOff && now.Sub(p.arrived) >= n.cfg.HandoffGrace {
			if n.mirror.Queued(k) {
				// Already in the queue: the leader holds it back or waits
				// with it, or another node handed it off. It is durable;
				// handing it off again would only cost a txn.
				p.handedOff = true
				continue
			}
			due = append(due, p)
		}
	}
	if err := n.handOff(ctx, due); err != nil {
		n.log.Debug().Err(err).Msg("handoff failed; will retry")
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
}

// handOff hands the due events to the leader through etcd, in arrival
// order, until one fails: it returns that failure (the rest stay not
// handed off), nil when every event was handed off or found applied. Each
// handoff is bounded by ctx and 1s.
func (n *Node) handOff(ctx context.Context, due []*pendingEvent) error {
	sort.Slice(due, func(i, j int) bool { return due[i].seq < due[j].seq })
	for _, p := range due {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := n.cl.HandOff(hctx, p.ev.Key, p.ev.Raw)
		cancel()
		if err != nil {
			return err
		}
		p.handedOff = true
		if ok {
			n.count(func(s *NodeStatus) { s.HandedOff++ })
			n.countEvent(p.ev, OutcomeHandedOff)
			n.log.Debug().Str("event", p.ev.Name).Str("engagement_id", EngagementID(p.ev)).Msg("event handed off to the leader")
		}
	}
	return nil
}
