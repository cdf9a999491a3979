package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// promote takes a won term from promoting to live: read the state at the
// latest revision (snapshot) and load it, claim the epoch at the recorder,
// reconcile with the recorder's open recordings, apply the backlog, go
// live. It returns the snapshot (its revision is where the handoff watch
// starts), or false when the term must end (the cause is logged; the stop
// protocol follows).
func (L *leader) promote() (*protocol.Snapshot, bool) {
	snap, err := L.n.cl.Snapshot(L.ctx)
	if err != nil {
		L.stepDown(err, "cannot read state")
		return nil, false
	}
	if err := L.load(snap); err != nil {
		L.stepDown(err, "state unreadable")
		return nil, false
	}
	if !L.claimEpoch() {
		return nil, false
	}
	L.reconcile()
	backlog, ok := L.applyBacklog(snap.Handoffs)
	if !ok {
		return nil, false
	}
	L.n.setRole(RoleLeader, L.term.Epoch())
	L.live = true
	L.log.Info().Int("backlog", backlog).Int("engagements", len(L.engs)).Msg("leader is live")
	return snap, true
}

// stepDown logs why promotion stopped, quietly when the node is shutting
// down or lost the term anyway.
func (L *leader) stepDown(err error, what string) {
	if L.ctx.Err() != nil {
		L.log.Debug().Err(err).Msg("promotion abandoned: " + what)
		return
	}
	L.log.Error().Err(err).Msg("promotion: " + what + "; stepping down")
}

// claimEpoch tells the recorder this term's epoch (its fence); false when
// the recorder did not take it, and then the term is lost. A recorder that
// knows a higher epoch than this cluster has issued holds campaigning back
// (staleEpochWait).
func (L *leader) claimEpoch() bool {
	n, epoch := L.n, L.term.Epoch()
	err := n.sink.ClaimEpoch(L.ctx, rcapi.EpochClaim{Epoch: epoch, Node: n.cfg.Name})
	if err == nil {
		n.staleRefusals = 0
		return true
	}
	var se *StaleEpochError
	if errors.As(err, &se) {
		// Not a race with our own successor (that one would hold a newer
		// term in etcd): the recorder knows a higher epoch than this
		// cluster has issued. Campaigning again at once would only spin
		// etcd's revision; wait, say why, and let the operator act.
		wait := n.staleEpochWait()
		L.log.Error().Int64("recorder_epoch", se.Epoch).Int64("epoch", epoch).Dur("retry_in", wait).
			Msg("the recorder has seen a higher epoch than this cluster issues: another cluster drives this recorder " +
				"(give each pair its own recorder), or etcd was rebuilt (reset the recorder's epoch); not leading until then")
	} else {
		L.stepDown(err, "recorder did not take the epoch")
	}
	L.term.Lose(err)
	return false
}

// applyBacklog applies what this node holds that the log does not show, in
// event time order, before going live (C-16): the snapshot's handoff queue
// (queue, raw event by dedup key) and the node's pending events. It writes
// every BatchSize events and at the end, and returns the backlog's size, or
// false when applying or writing failed (logged).
func (L *leader) applyBacklog(queue map[string][]byte) (int, bool) {
	n := L.n
	for key, raw := range queue {
		if ev := L.takeHandoff(key, raw); ev != nil {
			n.intakeQuiet(ev).handedOff = true
		}
	}
	backlog := n.pendingByTime()
	for _, p := range backlog {
		if err := L.process(p.ev); err != nil {
			L.log.Warn().Err(err).Msg("promotion: applying the backlog failed; stepping down")
			return 0, false
		}
		if L.batch.size() >= n.cfg.BatchSize {
			if err := L.flush(L.ctx); err != nil {
				L.log.Warn().Err(err).Msg("promotion: log write failed; stepping down")
				return 0, false
			}
		}
	}
	if err := L.flush(L.ctx); err != nil {
		L.log.Warn().Err(err).Msg("promotion: log write failed; stepping down")
		return 0, false
	}
	return len(backlog), true
}

// pendingByTime returns the pending events in event time order, ties in
// arrival order.
func (n *Node) pendingByTime() []*pendingEvent {
	var list []*pendingEvent
	for _, p := range n.pending {
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].ev.Time.Equal(list[j].ev.Time) {
			return list[i].ev.Time.Before(list[j].ev.Time)
		}
		return list[i].seq < list[j].seq
	})
	return list
}

// load takes the snapshot's dedup log, state records and dead letters as
// this term's state, with an empty batch and nothing parked.
func (L *leader) load(s *protocol.Snapshot) error {
	now := time.Now()
	L.applied = make(map[string]time.Time, len(s.Applied))
	for k := range s.Applied {
		L.applied[k] = now
	}
	L.engs = make(map[string]*Engagement, len(s.States))
	for id, raw := range s.States {
		var e Engagement
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("state of engagement %q: %w", id, err)
		}
		L.engs[id] = &e
	}
	L.batch = newBatch()
	L.unlogged, L.queued = map[string]struct{}{}, map[string]struct{}{}
	L.n.count(func(s *NodeStatus) { s.Parked = 0 })
	L.parked, L.parkedAt = map[string][]*events.Event{}, map[string]parkInfo{}
	L.loadDeadLetters(s.DeadLetters)
	return nil
}

// reconcile compares the recorder's open segments with the state and
// adopts what the recorder knows that the log does not: a command the old
// leader sent but had not logged. It sends nothing.
func (L *leader) reconcile() {
	open, err := L.n.sink.OpenRecordings(L.ctx)
	if err != nil {
		L.log.Warn().Err(err).Msg("promotion: recorder open recordings unavailable; continuing from the log")
		return
	}
	adopted := 0
	for _, o := range open {
		eng := L.engs[o.EngagementID]
		if eng == nil {
			eng = &Engagement{ID: o.EngagementID}
			L.engs[o.EngagementID] = eng
		}
		var seg *Segment
		for _, s := range eng.Segments {
			if s.ID == o.SegmentID {
				seg = s
			}
		}
		if seg == nil {
			user, leg := splitSegmentID(o.EngagementID, o.SegmentID)
			seg = &Segment{ID: o.SegmentID, UserID: user, Leg: leg, StartedAt: o.StartedAt}
			eng.Segments = append(eng.Segments, seg)
		}
		if seg.State != o.State || seg.Pauses != o.Pauses {
			seg.State = o.State
			seg.Pauses = o.Pauses
			seg.Resumes = o.Pauses
			if o.State == rcapi.StatePaused {
				seg.Resumes = o.Pauses - 1
			}
			L.batch.engs[eng.ID] = eng
			adopted++
		}
	}
	// A segment the log shows open that the recorder has closed: the old
	// leader's stop reached the recorder but not the log.
	openAt := make(map[string]bool, len(open))
	for _, o := range open {
		openAt[o.SegmentID] = true
	}
	for _, eng := range L.engs {
		for _, seg := range eng.Segments {
			if seg.open() && !openAt[seg.ID] {
				seg.State = rcapi.StateStopped
				if seg.StoppedAt.IsZero() {
					seg.StoppedAt = seg.StartedAt
				}
				L.batch.engs[eng.ID] = eng
				adopted++
			}
		}
	}
	if adopted > 0 {
		L.log.Info().Int("segments", adopted).Msg("promotion: adopted recorder state the log did not show")
	}
}

// splitSegmentID returns the user id and leg number of a segment id
// (engagement/user, or engagement/user/leg for a leg after the first).
func splitSegmentID(engID, segID string) (string, int) {
	rest := segID
	if len(segID) > len(engID)+1 && segID[:len(engID)+1] == engID+"/" {
		rest = segID[len(engID)+1:]
	}
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '/' {
			leg := 0
			if _, err := fmt.Sscanf(rest[i+1:], "%d", &leg); err == nil && leg > 1 {
				return rest[:i], leg
			}
			break
		}
	}
	return rest, 1
}
