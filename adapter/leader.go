package adapter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// leader is the state of one term, owned by the run loop.
type leader struct {
	n    *Node
	term protocol.Term
	// ctx is the term's work context: cancelled when the term is lost or
	// the node stops (the stop protocol then gives the last steps budgets
	// of their own).
	ctx context.Context
	// log carries the epoch.
	log zerolog.Logger
	// watchers are the term's goroutines (the handoff watch), joined
	// before the term's state is written for the last time.
	watchers sync.WaitGroup

	applied map[string]time.Time // dedup key → when this node learnt it
	engs    map[string]*Engagement
	batch   batch
	// Early events waiting for an earlier fact, by engagement, and when
	// each was parked, by dedup key.
	parked   map[string][]*events.Event
	parkedAt map[string]parkInfo
	// live is false while the promotion backlog is applied (no hold-back
	// then: the backlog is applied in event time order at once).
	live bool
	// inflight is the batch being written, if any (flushAsync).
	inflight *inflight
	// unlogged are the keys of events applied whose write has not landed
	// yet; queued the keys of held events whose queue entry has.
	unlogged map[string]struct{}
	queued   map[string]struct{}
	// writeFailed: a write of this term failed (etcd did not take it).
	writeFailed bool

	// Engagements blocked behind a command the recorder kept refusing
	// (deadletter.go), by id; the keys of the events they hold; the
	// suspensions being retried (replay).
	blocked     map[string]*blocked
	blockedKeys map[string]string
	retrying    map[string]*blocked
	// lastOK is when the recorder last took a command or agent update;
	// recorderDown is set while it answers nothing (probe).
	lastOK       time.Time
	recorderDown bool
}

// lead runs one term: promotion, then live processing until the term or
// ctx ends; it always returns with leader work stopped and the term
// resigned (stopTerm).
func (n *Node) lead(ctx context.Context, term protocol.Term) {
	n.setRole(RolePromoting, term.Epoch())
	lctx, cancel := context.WithCancel(term.Context())
	stopOnShutdown := context.AfterFunc(ctx, cancel)
	L := &leader{n: n, term: term, ctx: lctx, log: n.log.With().Int64("epoch", term.Epoch()).Logger()}
	defer L.stopTerm(ctx, func() { cancel(); stopOnShutdown() })
	snap, ok := L.promote()
	if !ok {
		return
	}
	L.runLive(snap.Revision)
}

// runLive is the live leader's loop: its own events, handoffs from etcd
// (watched from rev on), the release of held events and the group commit,
// until the term ends (L.ctx), a step fails, or this leader hands over
// because its socket is down while a standby's is up.
func (L *leader) runLive(rev int64) {
	n := L.n
	handoffs := make(chan protocol.Handoff, 256)
	removed := make(chan protocol.DeadLetterRemoved, 16)
	wctx := L.ctx
	L.watchers.Add(2)
	go func() {
		defer L.watchers.Done()
		if err := n.cl.WatchHandoffs(wctx, rev, handoffs); err != nil && wctx.Err() == nil {
			L.log.Error().Err(err).Msg("handoff watch failed; stepping down")
			L.term.Lose(err)
		}
	}()
	go func() {
		defer L.watchers.Done()
		if err := n.cl.WatchDeadLetters(wctx, rev, removed); err != nil && wctx.Err() == nil {
			L.log.Error().Err(err).Msg("dead-letter watch failed; stepping down")
			L.term.Lose(err)
		}
	}()
	prune := time.NewTicker(30 * time.Second)
	defer prune.Stop()
	expire := time.NewTicker(100 * time.Millisecond)
	defer expire.Stop()
	for {
		var err error
		select {
		case ev := <-n.inbox:
			err = L.own(ev)
		case h := <-handoffs:
			err = L.handoff(h)
		case r := <-removed:
			err = L.deadLetterRemoved(r)
		case <-expire.C:
			err = L.releaseParked(3 * n.cfg.HandoffGrace)
			if err == nil {
				err = L.retrySuspended()
			}
			n.checkHealth(L.ctx)
			if err == nil && L.handOver() {
				return
			}
		case <-prune.C:
			err = L.housekeep() // the closed records go out with the group commit
		case <-L.ctx.Done():
			return
		}
		if err == nil {
			err = L.groupCommit(handoffs)
		}
		if err != nil {
			if L.ctx.Err() == nil {
				L.log.Warn().Err(err).Msg("leader stops")
			}
			return
		}
	}
}

// groupCommit takes what is already waiting (up to BatchSize events in the
// batch), then starts one write of the batch.
func (L *leader) groupCommit(handoffs <-chan protocol.Handoff) error {
	var err error
	for more := true; more && err == nil && L.batch.size() < L.n.cfg.BatchSize; {
		select {
		case ev := <-L.n.inbox:
			err = L.own(ev)
		case h := <-handoffs:
			err = L.handoff(h)
		default:
			more = false
		}
	}
	if err != nil {
		return err
	}
	// On the term's context, not L.ctx: a shutdown lets the write in flight
	// land (stopTerm waits for it); losing the term stops it (and its guard
	// would refuse it anyway).
	return L.flushLive(L.term.Context())
}

// handOver reports whether this leader gives up leadership because its
// socket is degraded while a standby's is up; if so it writes its batch
// first (the stop protocol then resigns).
func (L *leader) handOver() bool {
	n := L.n
	if !n.degraded() || !n.healthyPeer(L.ctx) {
		return false
	}
	L.log.Warn().Dur("socket_down", time.Since(time.Unix(0, n.downSince.Load()))).
		Msg("subscription socket down while a standby's is up: handing over leadership")
	if err := L.flush(L.ctx); err != nil {
		L.log.Warn().Err(err).Msg("log write before handover failed")
	}
	return true
}

// Budgets of the stop protocol, each on a context detached from the node's
// (which has usually ended): the whole stop stays near 2s; a shutdown adds
// up to stopSourceBudget + stopKeepBudget before the resignation and
// stopKeepBudget after it, when there are unapplied events to keep
// (stopkeep.go).
const (
	stopInflightBudget = 500 * time.Millisecond // the write in flight
	stopFlushBudget    = 500 * time.Millisecond // the final write
	stopApplyBudget    = 120 * time.Millisecond // applying unqueued held events (C-11)
	stopResignBudget   = time.Second
)

// stopTerm ends a term: stop all leader work (cancel) and join it, then log
// what was sent, apply held events whose queue entry did not land, then, at
// a shutdown, queue what was received and not applied (queueUnapplied),
// then resign; at a shutdown, what could not be
// queued is then handed off (handOffUnqueued), which does not delay the
// successor. Each step has its own budget; ctx
// is the node's context (usually ended), used only for its values and to
// tell a shutdown from a lost term (then the node stays up, and what it
// holds stays pending for its next role).
func (L *leader) stopTerm(ctx context.Context, cancel func()) {
	cancel()
	L.watchers.Wait()
	stopCtx := context.WithoutCancel(ctx)
	etcdFailed := L.waitInflight()
	if L.term.Valid() && !etcdFailed {
		L.finalFlush(stopCtx)
	}
	// Held events first: when etcd failed, the fencing deadline is near.
	L.applyUnqueuedHeld(stopCtx)
	var unqueued []*pendingEvent
	var why error
	if ctx.Err() != nil {
		unqueued, why = L.queueUnapplied(stopCtx, etcdFailed)
	}
	L.n.count(func(s *NodeStatus) { s.Parked, s.DeadLetters, s.Suspended, s.RecorderDown = 0, 0, 0, false })
	L.resign(ctx)
	L.handOffUnqueued(stopCtx, unqueued, why)
}

// waitInflight gives the write in flight stopInflightBudget more to land,
// and reports whether etcd failed this term (then a final write would fare
// no better; see finalFlush for what the successor does without it).
func (L *leader) waitInflight() (etcdFailed bool) {
	etcdFailed = L.writeFailed
	f := L.inflight
	if f == nil {
		return etcdFailed
	}
	abort := time.AfterFunc(stopInflightBudget, f.cancel)
	defer abort.Stop()
	if err := L.waitFlush(); err != nil {
		if L.term.Valid() {
			L.log.Warn().Err(err).Msg("log write failed at stop; " + unloggedAtStop)
		}
		return true
	}
	return etcdFailed
}

// finalFlush writes the rest of the batch. Events still held back or
// waiting go into the handoff queue with it, if they are not there yet: the
// successor applies them in event time order together with what its own
// socket received, which is better than applying them here. When it fails,
// the successor does not know these events were applied: it adopts their
// effect from the recorder's open recordings, and replays those its own
// socket received (the recorder answers duplicate). Held events not queued
// are applied by applyUnqueuedHeld.
func (L *leader) finalFlush(stopCtx context.Context) {
	fctx, cancel := context.WithTimeout(stopCtx, stopFlushBudget)
	defer cancel()
	if err := L.flush(fctx); err != nil {
		L.log.Warn().Err(err).Msg("final log write failed; " + unloggedAtStop)
	}
}

// unloggedAtStop says what becomes of applied events whose log write failed
// at a stop (finalFlush).
const unloggedAtStop = "the successor takes those events' effect from the recorder's recordings " +
	"and replays only those it received too"

// applyUnqueuedHeld applies the held events whose queue entry did not land
// (etcd failed): such an event may exist nowhere else (a standby that was
// not connected when it came). It applies them while the term and the
// recorder allow, within stopApplyBudget, which keeps the stop bounded
// (C-11); the successor finds their effect on the recorder when it
// reconciles.
func (L *leader) applyUnqueuedHeld(stopCtx context.Context) {
	ids := L.unqueuedHeld()
	if len(ids) == 0 || !L.term.Valid() || !L.n.sinkHealth().OK {
		return
	}
	dctx, cancel := context.WithTimeout(stopCtx, stopApplyBudget)
	defer cancel()
	L.ctx = dctx
	for _, id := range ids {
		if err := L.retryParked(id, true); err != nil {
			L.log.Warn().Err(err).Msg("applying held-back events at stop failed")
			return
		}
	}
}

// resign gives the term up within stopResignBudget (else its lease
// expires after the TTL), and says why leadership ended unless the node is
// shutting down.
func (L *leader) resign(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopResignBudget)
	defer cancel()
	if err := L.term.Resign(rctx); err != nil {
		L.log.Warn().Err(err).Msg("resign incomplete; the lease expires after its TTL")
	}
	if err := L.term.Err(); err != nil && ctx.Err() == nil {
		L.log.Warn().Err(err).Msg("leadership ended")
	}
}

// own takes an event from this node's socket as leader.
func (L *leader) own(ev *events.Event) error {
	if p := L.n.intake(ev); p == nil {
		return nil
	}
	return L.process(ev)
}

// handoff takes one entry of the handoff queue from the watch: an event a
// standby handed over, or this leader's own queue entry of an event it
// holds (the watch echoes its writes).
func (L *leader) handoff(h protocol.Handoff) error {
	ev := L.takeHandoff(h.Key, h.Raw)
	if ev == nil {
		return nil
	}
	L.n.intakeQuiet(ev)
	return L.process(ev)
}

// takeHandoff decodes one handoff queue entry (key, raw) and returns the
// event to apply, or nil when there is none: the event is held by this
// leader (it stays queued until applied), already applied (its entry is
// deleted with the next write), or unreadable or implausible
// (events.ParseWith with the node's Limits: quarantined, entry deleted). An
// event queued under another key than its own (another version's key
// function) is returned and its old entry deleted: the event's own key is
// what it is logged and queued under.
func (L *leader) takeHandoff(key string, raw []byte) *events.Event {
	if _, held := L.parkedAt[key]; held {
		return nil
	}
	if held, inEntry := L.held(key); held {
		if inEntry {
			L.batch.unqueue[key] = struct{}{} // a copy of what the dead letter carries
		}
		return nil
	}
	if _, done := L.applied[key]; done {
		L.batch.unqueue[key] = struct{}{}
		return nil
	}
	ev, err := events.ParseWith(raw, L.n.cfg.Limits)
	if err != nil {
		L.log.Warn().Err(err).Msg("handoff unreadable; quarantined")
		L.n.quarantine(protocol.QuarantineHandoff, key, raw, err.Error())
		L.batch.unqueue[key] = struct{}{}
		return nil
	}
	if ev.Key != key {
		L.batch.unqueue[key] = struct{}{}
	}
	return ev
}

// process applies one event as leader: rules, commands (sent before the
// event is logged, so a crash between the two replays the event and the
// recorder answers duplicate), then the batch.
//
// Two kinds of event wait instead (unlogged, and written to the handoff
// queue with the next batch, so that a successor applies them even if no
// standby received them): an Early event, until the fact it needs arrives
// (typically through a handoff); and, when live, an event that ends a leg
// (user_ended, consumer_ended, engagement_ended), for the hold-back time, so
// that an earlier event this node's socket missed — a resume, another
// agent's answer — can still arrive from a standby and be applied before
// the stop. Stops carry the event's own time, so the delay changes no
// recording boundary.
func (L *leader) process(ev *events.Event) error {
	n := L.n
	if _, done := L.applied[ev.Key]; done {
		if _, unlogged := L.unlogged[ev.Key]; !unlogged {
			delete(n.pending, ev.Key) // else forgotten once its write lands
		}
		n.count(func(s *NodeStatus) { s.Deduplicated++; s.Pending = len(n.pending) })
		n.countEvent(ev, OutcomeDeduplicated)
		return nil
	}
	if _, parked := L.parkedAt[ev.Key]; parked {
		return nil
	}
	if held, _ := L.held(ev.Key); held {
		return nil
	}
	id := EngagementID(ev)
	if L.blocked[id] != nil && id != "" {
		L.holdBehind(id, ev)
		return nil
	}
	if L.live && n.cfg.HoldBack > 0 && endsLeg(ev) {
		L.park(id, ev, time.Now().Add(n.cfg.HoldBack))
		return nil
	}
	eng, cmds, outcome := n.cfg.Rules.Apply(L.engs[id].Clone(), ev)
	if outcome == Early {
		L.park(id, ev, time.Time{})
		return nil
	}
	if err := L.apply(ev, id, eng, cmds, outcome); err != nil {
		return err
	}
	if outcome == Applied && len(L.parked[id]) > 0 {
		return L.retryParked(id, false)
	}
	return nil
}

// endsLeg reports whether an event stops segments.
func endsLeg(ev *events.Event) bool {
	switch strings.TrimPrefix(ev.Name, "contact_center.") {
	case "engagement_user_ended", "engagement_consumer_ended", "engagement_ended":
		return true
	}
	return false
}

// apply sends an applied event's commands and adds it to the batch.
// An event of a blocked engagement goes behind it instead, and one whose
// command runs out of attempts while the recorder answers blocks its
// engagement (deadletter.go).
func (L *leader) apply(ev *events.Event, id string, eng *Engagement, cmds []rcapi.Command, outcome Outcome) error {
	n := L.n
	if L.blocked[id] != nil && id != "" {
		L.holdBehind(id, ev)
		return nil
	}
	for _, c := range cmds {
		c.Epoch, c.Node = L.term.Epoch(), n.cfg.Name
		if err := L.send(c); err != nil {
			var s *errSuspended
			if errors.As(err, &s) && id != "" {
				L.suspend(id, ev, c, s)
				return nil
			}
			return err
		}
	}
	if u, ok := AgentUpdate(ev); ok {
		u.Epoch, u.Node = L.term.Epoch(), n.cfg.Name
		if err := L.sendAgent(u); err != nil {
			return err
		}
	}
	n.countEvent(ev, OutcomeApplied)
	switch outcome {
	case Late:
		n.count(func(s *NodeStatus) { s.Late++ })
		n.countEvent(ev, OutcomeLate)
	case Stale:
		n.count(func(s *NodeStatus) { s.Stale++ })
		n.countEvent(ev, OutcomeStale)
		L.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Time("event_time", ev.Time).Msg("stale event starts no recording")
	}
	L.applied[ev.Key] = n.now()
	L.unlogged[ev.Key] = struct{}{}
	L.batch.keys = append(L.batch.keys, ev.Key)
	if id != "" && eng != nil {
		L.engs[id] = eng
		L.batch.engs[id] = eng
	}
	delete(L.batch.queue, ev.Key)
	L.batch.unqueue[ev.Key] = struct{}{}
	n.count(func(s *NodeStatus) { s.Applied++ })
	return nil
}
