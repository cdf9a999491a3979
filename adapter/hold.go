package adapter

import (
	"sort"
	"time"

	"github.com/zccadapter/zccadapter/events"
)

// parkInfo says of a waiting event since when it waits, and until when it
// is held back (zero: not held, only Early).
type parkInfo struct{ at, until time.Time }

// park makes an event wait: held back until until, or (zero until) Early
// until the fact it needs arrives. It is queued in etcd with the next
// write unless it is too large for the queue.
func (L *leader) park(id string, ev *events.Event, until time.Time) {
	L.parked[id] = append(L.parked[id], ev)
	L.parkedAt[ev.Key] = parkInfo{at: time.Now(), until: until}
	// Queue it in etcd with the next write: if this term ends before the
	// event is applied, the successor applies it (Snapshot.Handoffs), even
	// when no standby received it; and a standby that did does not hand it
	// off again (Mirror.Queued).
	delete(L.batch.unqueue, ev.Key)
	if len(ev.Raw) > maxQueuedEventBytes {
		L.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Int("bytes", len(ev.Raw)).
			Msg("event too large for the handoff queue: held in memory only")
		return
	}
	L.batch.queue[ev.Key] = ev.Raw
	L.n.count(func(s *NodeStatus) { s.Parked = len(L.parkedAt) })
}

// retryParked applies, in event time order, the parked events of one
// engagement that are neither held back (unless force) nor Early any more,
// until none changes.
func (L *leader) retryParked(id string, force bool) error {
	now := time.Now()
	for progress := true; progress; {
		progress = false
		list := L.parked[id]
		sort.SliceStable(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
		for i, ev := range list {
			if !force && now.Before(L.parkedAt[ev.Key].until) {
				continue
			}
			eng, cmds, outcome := L.n.cfg.Rules.Apply(L.engs[id].Clone(), ev)
			if outcome == Early {
				continue
			}
			L.unpark(id, i)
			if err := L.apply(ev, id, eng, cmds, outcome); err != nil {
				return err
			}
			progress = true
			break
		}
	}
	return nil
}

// unpark removes the i-th waiting event of engagement id.
func (L *leader) unpark(id string, i int) {
	list := L.parked[id]
	delete(L.parkedAt, list[i].Key)
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(L.parked, id)
	} else {
		L.parked[id] = list
	}
	L.n.count(func(s *NodeStatus) { s.Parked = len(L.parkedAt) })
}

// releaseParked applies held-back events whose time has come, and gives up
// waiting for Early events parked longer than limit.
func (L *leader) releaseParked(limit time.Duration) error {
	now := time.Now()
	for id, list := range L.parked {
		for _, ev := range list {
			if u := L.parkedAt[ev.Key].until; !u.IsZero() && !now.Before(u) {
				if err := L.retryParked(id, false); err != nil {
					return err
				}
				break
			}
		}
	}
	for id, list := range L.parked {
		for i := len(list) - 1; i >= 0; i-- {
			ev := list[i]
			if p := L.parkedAt[ev.Key]; now.Before(p.until) || now.Sub(p.at) < limit {
				continue
			}
			L.unpark(id, i)
			eng, outcome := L.n.cfg.Rules.ApplyExpired(L.engs[id].Clone(), ev)
			L.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Msg("the earlier event this one waited for never came")
			if err := L.apply(ev, id, eng, nil, outcome); err != nil {
				return err
			}
		}
	}
	return nil
}

// unqueuedHeld returns the engagements with an event held back or waiting
// whose handoff queue entry is not known to have landed.
func (L *leader) unqueuedHeld() []string {
	var ids []string
	for id, list := range L.parked {
		for _, ev := range list {
			if _, ok := L.queued[ev.Key]; !ok {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids
}
