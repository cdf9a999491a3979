package adapter

import (
	"sort"
	"time"
)

// housekeep is the leader's periodic upkeep, run every 30s from the live
// loop: it closes idle engagements (expireIdle) and then forgets what the
// dedup window no longer covers (prune), both on the node's clock
// (NodeConfig.Now). The closed records go into the batch, which the loop
// writes next. Its error is a send's (see expireIdle): the term stops.
func (L *leader) housekeep() error {
	now := L.n.now()
	if err := L.expireIdle(now); err != nil {
		return err
	}
	L.prune(now)
	return nil
}

// expireIdle closes every engagement that is not closed yet (or has a
// segment open) and whose last activity (lastActivity) is at least
// EngagementIdleTimeout before now: its end was lost. Each open segment
// gets a stop with reason expired (Rules.Expire: the id its own end would
// have given it, so the recorder absorbs a second one), sent through the
// fenced send before the closed record is batched, like every applied
// event's commands. Engagements with events still parked wait for those.
// An engagement with no time at all (adopted from the recorder without
// one) is stamped with now, and expires one timeout later. Engagements are
// taken in id order. It returns the first send error (ErrFenced, a stale
// epoch, the leader's context ending); the engagements closed before it
// stay batched.
func (L *leader) expireIdle(now time.Time) error {
	n := L.n
	idle := n.cfg.EngagementIdleTimeout
	var due []string
	for id, e := range L.engs {
		if e.Closed && !e.Open() || len(L.parked[id]) > 0 {
			continue
		}
		last := lastActivity(e)
		if last.IsZero() {
			eng := e.Clone()
			eng.LastEventAt = now
			L.engs[id], L.batch.engs[id] = eng, eng
			continue
		}
		if now.Sub(last) >= idle {
			due = append(due, id)
		}
	}
	sort.Strings(due)
	for _, id := range due {
		eng := L.engs[id].Clone()
		last := lastActivity(eng)
		cmds := n.cfg.Rules.Expire(eng, now)
		for _, c := range cmds {
			c.Epoch, c.Node = L.term.Epoch(), n.cfg.Name
			if err := L.send(c); err != nil {
				return err
			}
		}
		L.engs[id], L.batch.engs[id] = eng, eng
		n.count(func(s *NodeStatus) { s.Expired++ })
		L.log.Warn().Str("engagement_id", id).Time("last_event_at", last).Dur("idle", now.Sub(last)).
			Int("segments_stopped", len(cmds)).
			Msg("engagement idle past rules.engagement_idle_timeout: its end was lost; closed, open segments stopped with reason expired")
	}
	return nil
}

// lastActivity is the newest time an engagement's record shows: its last
// applied event, or else the newest segment time (a record adopted from
// the recorder may have only those). Zero when it shows none.
func lastActivity(e *Engagement) time.Time {
	last := e.LastEventAt
	for _, s := range e.Segments {
		for _, t := range []time.Time{s.StartedAt, s.StoppedAt, s.HoldAt, s.UnholdAt} {
			if t.After(last) {
				last = t
			}
		}
	}
	return last
}
