package adapter

import (
	"context"
	"errors"
	"sort"
	"time"
)

// At a shutdown a node may hold events that exist nowhere else: its socket
// delivered them (still in the inbox, or pending after a send the stop cut
// short, or within a standby's handoff grace) and the peer's socket missed
// them (it was down, or connected only after they came, as in a rolling
// restart). Before the node goes, they are put where the successor finds
// them: a stopping leader queues them with a write of its own (or, when it
// cannot, hands them off after resigning), a stopping standby hands them
// off. What cannot be kept is counted as dropped and
// logged.

// Budgets of keeping events at a shutdown, each on a context detached from
// the node's (see stopTerm for the leader's whole stop).
const (
	// stopSourceBudget bounds the wait for the source to stop delivering.
	stopSourceBudget = 300 * time.Millisecond
	// stopKeepBudget bounds the write (leader) or handoffs (standby) of the
	// events kept.
	stopKeepBudget = time.Second
)

// drainInbox, at a shutdown, takes in (intake) what the inbox holds until
// the source has stopped delivering (srcDone) or stopSourceBudget has
// passed, then what is left. Whatever the source delivers later stays in
// the inbox (Run counts it). Run loop only; it blocks up to
// stopSourceBudget.
func (n *Node) drainInbox() {
	t := time.NewTimer(stopSourceBudget)
	defer t.Stop()
	for waiting := true; waiting; {
		select {
		case ev := <-n.inbox:
			n.intake(ev)
		case <-n.srcDone:
			waiting = false
		case <-t.C:
			waiting = false
		}
	}
	for {
		select {
		case ev := <-n.inbox:
			n.intake(ev)
		default:
			return
		}
	}
}

// unhandled returns, in arrival order, the pending events that nothing
// shows kept elsewhere: not applied (the mirror's log, and skip, the
// caller's own knowledge), not queued (the mirror's queue) and not handed
// off by this node. Pending events the mirror shows applied are forgotten.
func (n *Node) unhandled(skip func(key string) bool) []*pendingEvent {
	var due []*pendingEvent
	for key, p := range n.pending {
		if n.mirror.Applied(key) {
			delete(n.pending, key)
			continue
		}
		if p.handedOff || n.mirror.Queued(key) || skip(key) {
			continue
		}
		due = append(due, p)
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
	sort.Slice(due, func(i, j int) bool { return due[i].seq < due[j].seq })
	return due
}

// handOffAtStop, at a standby's shutdown, hands to the leader every event
// this node holds that is not kept elsewhere (unhandled), whatever its age
// within the handoff grace, after taking in the inbox (drainInbox). Events
// older than half the dedup window are not handed off (sweep's rule: they
// could be applied twice). It blocks up to stopSourceBudget +
// stopKeepBudget; ctx is the node's (ended), used only for its values.
// What is not handed off is counted as dropped and logged.
func (n *Node) handOffAtStop(ctx context.Context) {
	n.drainInbox()
	maxAge := n.cl.Settings().DedupWindow / 2
	now := time.Now()
	var due []*pendingEvent
	tooOld := 0
	for _, p := range n.unhandled(func(string) bool { return false }) {
		if now.Sub(p.arrived) > maxAge {
			tooOld++
			continue
		}
		due = append(due, p)
	}
	if len(due) == 0 && tooOld == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopKeepBudget)
	err := n.handOff(hctx, due)
	cancel()
	lost := tooOld + countNotHandedOff(due)
	if lost == 0 {
		n.log.Info().Int("events", len(due)).Msg("stopping: events the leader's log did not show handed off")
		return
	}
	n.count(func(s *NodeStatus) { s.Dropped += int64(lost) })
	n.log.Error().Err(err).Int("events", lost).Int("older_than_half_the_dedup_window", tooOld).
		Msg("stopping: events the leader's log did not show could not be handed off; lost unless the leader's socket had them")
}

func countNotHandedOff(list []*pendingEvent) int {
	c := 0
	for _, p := range list {
		if !p.handedOff {
			c++
		}
	}
	return c
}

// queueUnapplied, at a shutdown, queues what this leader received and has
// not applied, and that is not queued already: the events left in the
// inbox (drainInbox), the pending ones, e.g. after a send the stop cut
// short, and parked ones whose queue entry did not land (too large, or
// etcd failed) and that applyUnqueuedHeld could not apply. It puts them in the handoff queue with a
// write of its own, guarded by the term and bounded by the term's fencing
// deadline and stopKeepBudget, so that the successor applies them in event
// time order with its backlog (Snapshot.Handoffs). It returns what it did
// not queue, for handOffUnqueued after the term is resigned: everything
// when that write cannot be made (the term ended; etcd failed: etcdFailed,
// or a write of the term failed) or fails, else the events too large for
// a batch; and the reason. It blocks up to stopSourceBudget +
// stopKeepBudget.
func (L *leader) queueUnapplied(stopCtx context.Context, etcdFailed bool) ([]*pendingEvent, error) {
	n := L.n
	n.drainInbox()
	if L.batch.queue == nil { // stopped during promotion, before the state was loaded
		L.batch = newBatch()
		L.unlogged, L.queued = map[string]struct{}{}, map[string]struct{}{}
	}
	due := n.unhandled(func(key string) bool {
		_, applied := L.applied[key]
		_, queued := L.queued[key] // a parked event whose queue entry landed
		return applied || queued
	})
	if len(due) == 0 {
		return nil, nil
	}
	if !L.term.Valid() || etcdFailed || L.writeFailed {
		return due, errors.New("the term ended or etcd failed: no queue write at stop")
	}
	qctx, cancel := context.WithTimeout(stopCtx, stopKeepBudget)
	defer cancel()
	rest, err := L.queueAndWrite(qctx, due)
	if err == nil && len(rest) < len(due) {
		L.log.Info().Int("events", len(due)-len(rest)).Msg("stopping: events received but not applied queued for the successor")
	}
	return rest, err
}

// handOffUnqueued, at a shutdown after the term is resigned, hands off one
// by one, as a standby does, the events queueUnapplied could not queue
// (why: its reason), within stopKeepBudget. What is not handed off is
// counted as dropped and logged.
func (L *leader) handOffUnqueued(stopCtx context.Context, rest []*pendingEvent, why error) {
	if len(rest) == 0 {
		return
	}
	n := L.n
	hctx, cancel := context.WithTimeout(stopCtx, stopKeepBudget)
	err := n.handOff(hctx, rest)
	cancel()
	lost := countNotHandedOff(rest)
	if lost == 0 {
		ev := L.log.Info()
		if why != nil {
			ev = L.log.Warn().AnErr("queue_write", why)
		}
		ev.Int("events", len(rest)).Msg("stopping: events received but not applied handed off one by one")
		return
	}
	n.count(func(s *NodeStatus) { s.Dropped += int64(lost) })
	L.log.Error().Err(errors.Join(why, err)).Int("events", lost).
		Msg("stopping: events received but not applied could not be queued or handed off; lost unless the peer's socket had them")
}

// queueAndWrite puts due in the handoff queue with a write of their own,
// bounded by ctx and the term's fencing deadline. It returns the events
// that were not queued (all of them when the write failed; else those too
// large for the queue) and the write's error.
func (L *leader) queueAndWrite(ctx context.Context, due []*pendingEvent) ([]*pendingEvent, error) {
	var rest []*pendingEvent
	queued := 0
	for _, p := range due {
		if len(p.ev.Raw) > maxQueuedEventBytes {
			rest = append(rest, p)
			continue
		}
		delete(L.batch.unqueue, p.ev.Key)
		L.batch.queue[p.ev.Key] = p.ev.Raw
		queued++
	}
	if queued == 0 {
		return rest, nil
	}
	wctx, cancel := context.WithDeadline(ctx, L.term.Deadline())
	defer cancel()
	if err := L.flush(wctx); err != nil {
		return due, err
	}
	for _, p := range due {
		if _, ok := L.queued[p.ev.Key]; ok {
			p.handedOff = true
		}
	}
	return rest, nil
}
