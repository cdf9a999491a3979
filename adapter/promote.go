package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
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
	L.n.promotionSucceeded()
	L.n.setRole(RoleLeader, L.term.Epoch())
	L.live = true
	L.log.Info().Int("backlog", backlog).Int("engagements", len(L.engs)).Msg("leader is live")
	return snap, true
}

// stepDown logs why promotion stopped, quietly when the node is shutting
// down or lost the term anyway; otherwise the failure is counted and
// campaigning backs off (promotionFailed).
func (L *leader) stepDown(err error, what string) {
	if L.ctx.Err() != nil {
		L.log.Debug().Err(err).Msg("promotion abandoned: " + what)
		return
	}
	L.log.Error().Err(err).Msg("promotion: " + what + "; stepping down")
	L.n.promotionFailed(fmt.Errorf("%s: %w", what, err))
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
		L.startFenceKeeper()
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
				"(give each pair its own recorder), or etcd was rebuilt or restored from a backup " +
				"(run `zccadapter cluster bump-epoch --above " + strconv.FormatInt(se.Epoch, 10) + "`); not leading until then")
	} else {
		L.stepDown(err, "recorder did not take the epoch")
	}
	L.term.Lose(err)
	return false
}

// applyBacklog applies what this node holds that the log does not show, in
// event time order, before going live (C-16): the snapshot's handoff queue
// (queue, raw event by dedup key) and the node's pending events. An entry
// that does not parse is quarantined and unqueued (takeHandoff); an event
// whose application would fail through its own fault (its state would not
// encode) is quarantined and logged as done (rejectBacklog), never retried.
// It writes every BatchSize events and at the end, and returns the
// backlog's size, or false when applying or writing failed (logged,
// counted as a failed promotion).
func (L *leader) applyBacklog(queue map[string][]byte) (int, bool) {
	n := L.n
	for key, raw := range queue {
		if ev := L.takeHandoff(key, raw); ev != nil {
			n.intakeQuiet(ev).handedOff = true
		}
	}
	backlog := n.pendingByTime()
	for _, p := range backlog {
		if err := L.applicable(p.ev); err != nil {
			L.rejectBacklog(p, err)
			continue
		}
		if err := L.process(p.ev); err != nil {
			L.stepDown(err, "applying the backlog failed")
			return 0, false
		}
		if L.batch.size() >= n.cfg.BatchSize {
			if err := L.flush(L.ctx); err != nil {
				L.stepDown(err, "log write failed")
				return 0, false
			}
		}
	}
	if err := L.flush(L.ctx); err != nil {
		L.stepDown(err, "log write failed")
		return 0, false
	}
	return len(backlog), true
}

// applicable reports, without sending or changing anything, whether
// applying ev would fail through the event's own fault: the state it
// yields does not encode (an implausible time the parser let through).
func (L *leader) applicable(ev *events.Event) error {
	id := EngagementID(ev)
	if id == "" {
		return nil
	}
	eng, _, _ := L.n.cfg.Rules.Apply(L.engs[id].Clone(), ev)
	if eng == nil {
		return nil
	}
	if _, err := json.Marshal(eng); err != nil {
		return fmt.Errorf("the state it yields for engagement %q does not encode: %w", id, err)
	}
	return nil
}

// rejectBacklog quarantines a backlog event that cannot be applied and logs
// its key as done (dedup log), so no node hands it over or applies it
// again; its queue entry, if any, is deleted with the write.
func (L *leader) rejectBacklog(p *pendingEvent, err error) {
	source := protocol.QuarantineSocket
	if p.handedOff {
		source = protocol.QuarantineHandoff
	}
	L.n.quarantine(source, p.ev.Key, p.ev.Raw, err.Error())
	key := p.ev.Key
	L.applied[key] = time.Now()
	L.unlogged[key] = struct{}{}
	L.batch.keys = append(L.batch.keys, key)
	delete(L.batch.queue, key)
	L.batch.unqueue[key] = struct{}{}
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
// this term's state, with an empty batch and nothing parked. A state record
// that does not decode (or would not encode again) is quarantined and
// skipped: the engagement starts from the recorder's open recordings
// (reconcile), and its next event writes a new record over it. It returns
// no error today; the result is kept for the loads to come.
func (L *leader) load(s *protocol.Snapshot) error {
	now := L.n.now()
	L.applied = make(map[string]time.Time, len(s.Applied))
	for k := range s.Applied {
		L.applied[k] = now
	}
	L.engs = make(map[string]*Engagement, len(s.States))
	for id, raw := range s.States {
		e, err := decodeState(raw)
		if err != nil {
			L.log.Error().Err(err).Str("engagement_id", redact.Truncate(id, 128)).
				Msg("promotion: state record unreadable; quarantined, the engagement starts from the recorder's open recordings")
			L.n.quarantine(protocol.QuarantineState, id, raw, fmt.Sprintf("state of engagement %q: %v", redact.Truncate(id, 128), err))
			continue
		}
		L.engs[id] = e
	}
	L.batch = newBatch()
	L.unlogged, L.queued = map[string]struct{}{}, map[string]struct{}{}
	L.n.count(func(s *NodeStatus) { s.Parked = 0 })
	L.parked, L.parkedAt = map[string][]*events.Event{}, map[string]parkInfo{}
	L.loadDeadLetters(s.DeadLetters)
	return nil
}

// decodeState decodes a state record strictly enough that the leader can
// write it again: it must decode, and encode. The error names what is wrong
// and where, never a value of the record (decodeReason).
func decodeState(raw []byte) (*Engagement, error) {
	var e Engagement
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("undecodable: %s", decodeReason(err))
	}
	if _, err := json.Marshal(&e); err != nil {
		return nil, fmt.Errorf("does not encode again: %s", decodeReason(err))
	}
	return &e, nil
}

// decodeReason describes a JSON decoding or encoding error without the
// values encoding/json and time quote in theirs.
func decodeReason(err error) string {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		tpe *time.ParseError
		mar *json.MarshalerError
	)
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: a JSON %s where %s belongs", redact.Truncate(typ.Field, 64), typ.Value, typ.Type)
	case errors.As(err, &tpe):
		return "a time that is not RFC 3339"
	case errors.As(err, &mar):
		return "a value that does not encode (" + mar.Type.String() + ")"
	}
	return "not a state record"
}

// reconcile compares the recorder's open segments with the state and
// adopts what the recorder knows that the log does not: a command the old
// leader sent but had not logged (a segment the recorder holds open, or
// paused or resumed, that the log does not show so). It sends nothing.
//
// A segment the log shows open that the recorder does not list stays open:
// absence is no proof of a stop (an empty or partial list, a recorder that
// lost its state). The stop is sent when the leg's end is applied; its id
// is deterministic, so a stop the old leader already sent is answered
// duplicate. Such segments are counted and logged. When the list cannot be
// read (a malformed reply included) the state stays as the log has it.
func (L *leader) reconcile() {
	open, err := L.n.sink.OpenRecordings(L.ctx)
	if err != nil {
		L.log.Warn().Err(err).Msg("promotion: recorder open recordings unavailable; continuing from the log (open segments stay open)")
		return
	}
	adopted := 0
	openAt := make(map[string]bool, len(open))
	for _, o := range open {
		openAt[o.SegmentID] = true
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
	var unlisted []string
	for _, eng := range L.engs {
		for _, seg := range eng.Segments {
			if seg.open() && !openAt[seg.ID] {
				unlisted = append(unlisted, seg.ID)
			}
		}
	}
	if adopted > 0 {
		L.log.Info().Int("segments", adopted).Msg("promotion: adopted recorder state the log did not show")
	}
	if len(unlisted) > 0 {
		sort.Strings(unlisted)
		L.log.Warn().Int("segments", len(unlisted)).Strs("segment_ids", unlisted[:min(len(unlisted), 10)]).
			Msg("promotion: segments the log shows open are not in the recorder's open list; kept open, their stops are sent when the legs end")
	}
	L.n.count(func(s *NodeStatus) { s.ReconcileUnlisted += int64(len(unlisted)) })
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
