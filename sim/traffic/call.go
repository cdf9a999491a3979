package traffic

import (
	"fmt"
	"slices"
	"time"

	"github.com/rs/zerolog"
)

// call is one engagement. All its fields are owned by the call's goroutine, which emits all
// its events, so emits for one engagement never overlap and keep story order.
type call struct {
	m    *Model
	plan callPlan
	log  zerolog.Logger

	engagementID   string
	consumerID     string
	consumerName   string
	consumerNumber string
	flow           flow
	task           *task // the original task (inbound); outbound calls have none
	xfer           *task // the transfer's task, once a transfer started

	last     time.Time     // time of the last event emitted (strictly increasing)
	cur      *agent        // the agent holding the call
	onCall   map[int]bool  // every agent who has been on this engagement
	open     []*agent      // agents whose segment is open, in start order
	deferred *deferredStep // the transferring agent's wrap-up end, while pending
}

// deferredStep is something the call does at a later time while its story goes on.
type deferredStep struct {
	at time.Time
	fn func()
}

func (m *Model) newCall(p callPlan) *call {
	seed, i := m.cfg.Seed, p.Index
	number := fmt.Sprintf("+1555%07d", seededInt(seed, "consumer_number", i)%10_000_000)
	c := &call{
		m:              m,
		plan:           p,
		engagementID:   seededID(seed, "engagement", i, "eng-", 10),
		consumerID:     seededID(seed, "consumer", i, "con-", 8),
		consumerName:   "Caller " + number[len(number)-4:],
		consumerNumber: number,
		onCall:         make(map[int]bool),
	}
	c.log = m.log.With().Str("engagement_id", c.engagementID).Int("call", i).Logger()
	if p.Outbound {
		c.flow = m.site.outboundFlow
	} else {
		c.flow = m.site.inboundFlow
		c.task = &task{
			id:            seededID(seed, "task", i, "task-", 10),
			queue:         m.site.inboundQueues[p.Queue],
			reservationID: seededID(seed, "reservation", i, "res-", 10),
		}
	}
	return c
}

// run tells the call's story. ag is the agent of an outbound call (taken by startCall).
func (c *call) run(ag int) {
	c.log.Debug().Bool("outbound", c.plan.Outbound).Dur("talk", c.plan.Talk).Msg("call started")
	if c.plan.Outbound {
		c.runOutbound(&c.m.agents[ag])
	} else {
		c.runInbound()
	}
	c.log.Debug().Msg("call finished")
}

func (c *call) runInbound() {
	at := c.tick()
	c.event(evEngagementStarted, c.engagementObject(at))
	at = c.tick()
	c.task.created = at
	c.event(evTaskCreated, c.taskObject(at, c.task, "pending"))

	ag := c.waitForAgent()
	if ag == nil {
		c.abandon()
		return
	}
	c.cur = ag
	c.onCall[ag.index] = true
	c.task.agent = ag
	at = c.tick()
	c.task.reserved = at
	c.event(evReservationCreated, c.reservationObject(at, c.task))
	at = c.tick()
	c.event(evReservationAccepted, c.reservationObject(at, c.task))
	at = c.tick()
	c.event(evTaskUpdated, c.taskObject(at, c.task, "assigned"))
	at = c.tick()
	c.segmentEvent(evUserAnswered, c.legObject(at, ag), actionStart, ag)
	c.open = []*agent{ag}
	c.m.bump(func(t *truthCounters) { t.Answered++ })

	p := c.plan
	t0 := time.Now()
	holdFirst := p.Hold && (!p.Transfer || p.HoldAt < p.TransferAt)
	if holdFirst && !c.hold(t0) {
		c.endNow()
		return
	}
	if p.Transfer {
		if !c.waitUntil(t0.Add(p.TransferAt)) {
			c.endNow()
			return
		}
		c.transfer()
	}
	if p.Hold && !holdFirst && !c.hold(t0) {
		c.endNow()
		return
	}
	if !c.waitUntil(t0.Add(p.Talk)) {
		c.endNow()
		return
	}
	c.end()
}

func (c *call) runOutbound(ag *agent) {
	c.cur = ag
	c.onCall[ag.index] = true
	at := c.tick()
	c.event(evEngagementStarted, c.engagementObject(at))
	at = c.tick()
	c.event(evConsumerNotified, c.notifiedObject(at, ag))
	at = c.tick()
	c.segmentEvent(evConsumerAnswered, c.legObject(at, ag), actionStart, ag)
	c.open = []*agent{ag}
	c.m.bump(func(t *truthCounters) { t.Answered++ })

	t0 := time.Now()
	if c.plan.Hold && !c.hold(t0) {
		c.endNow()
		return
	}
	if !c.waitUntil(t0.Add(c.plan.Talk)) {
		c.endNow()
		return
	}
	c.end()
}

// waitForAgent queues the caller until an agent is assigned (returned), or the queue timeout
// passes or the model drains (nil: the caller abandons).
func (c *call) waitForAgent() *agent {
	w := &waiter{ch: make(chan int, 1)}
	if a := c.m.enqueue(w); a >= 0 {
		return &c.m.agents[a]
	}
	timer := time.NewTimer(time.Duration(c.m.cfg.QueueTimeout))
	defer timer.Stop()
	select {
	case a := <-w.ch:
		return &c.m.agents[a]
	case <-timer.C:
	case <-c.m.drainCh:
	}
	if c.m.dequeue(w) {
		return nil
	}
	a := <-w.ch // assigned while timing out: already sent, never blocks
	if c.draining() {
		c.m.release(a)
		return nil
	}
	return &c.m.agents[a]
}

// abandon ends a call whose caller left the queue. No segment exists.
func (c *call) abandon() {
	at := c.tick()
	c.event(evConsumerEnded, c.legObject(at, nil))
	at = c.tick()
	c.event(evEngagementEnded, c.engagementObject(at))
	at = c.tick()
	c.event(evTaskCanceled, c.taskObject(at, c.task, "canceled"))
	c.m.bump(func(t *truthCounters) { t.Abandoned++ })
	c.log.Debug().Msg("caller abandoned")
}

// hold puts the call on hold at t0+HoldAt and takes it off at t0+HoldAt+HoldFor. It
// returns false if the model drains first (the call then ends, possibly still on hold).
func (c *call) hold(t0 time.Time) bool {
	if !c.waitUntil(t0.Add(c.plan.HoldAt)) {
		return false
	}
	at := c.tick()
	c.segmentEvent(evUserHold, c.legObject(at, c.cur), actionPause, c.cur)
	c.m.bump(func(t *truthCounters) { t.Holds++ })
	if !c.waitUntil(t0.Add(c.plan.HoldAt + c.plan.HoldFor)) {
		return false
	}
	at = c.tick()
	c.segmentEvent(evUserUnhold, c.legObject(at, c.cur), actionResume, c.cur)
	return true
}

// transfer warm-transfers the call to a free agent who has not been on it; with none free it
// does nothing. The transferring agent's wrap-up ends later (deferred).
func (c *call) transfer() {
	to := c.m.takeFree(c.onCall)
	if to < 0 {
		c.log.Debug().Msg("transfer skipped: no free agent")
		return
	}
	from, toA := c.cur, &c.m.agents[to]
	c.onCall[to] = true
	c.xfer = &task{
		id:            seededID(c.m.cfg.Seed, "transfer_task", c.plan.Index, "task-", 10),
		queue:         c.m.site.inboundQueues[c.plan.ToQueue],
		reservationID: seededID(c.m.cfg.Seed, "transfer_reservation", c.plan.Index, "res-", 10),
		agent:         toA,
	}
	at := c.tick()
	c.xfer.created = at
	c.event(evTransferInitiated, c.transferObject(at, from, toA, "assigned", "pending"))
	at = c.tick()
	c.event(evTransferQueued, c.transferObject(at, from, toA, "assigned", "pending"))
	at = c.tick()
	c.xfer.reserved = at
	c.event(evTransferReserved, c.transferObject(at, from, toA, "assigned", "pending"))
	at = c.tick()
	c.event(evTransferAccepted, c.transferObject(at, from, toA, "assigned", "assigned"))
	at = c.tick()
	c.segmentEvent(evUserAnswered, c.legObject(at, toA), actionStart, toA)
	c.open = append(c.open, toA)
	at = c.tick()
	c.event(evTransferCompleted, c.transferObject(at, from, toA, "completed", "assigned"))
	c.m.bump(func(t *truthCounters) { t.Transfers++ })
	at = c.tick()
	c.segmentEvent(evUserEnded, c.legObject(at, from), actionStop, from)
	c.closeSegment(from)
	at = c.tick()
	c.event(evWrapUpStarted, c.legObject(at, from))
	c.cur = toA

	orig := c.task
	c.deferred = &deferredStep{
		at: time.Now().Add(c.plan.OldWrapUp),
		fn: func() {
			at := c.tick()
			c.event(evWrapUpEnded, c.legObject(at, from))
			at = c.tick()
			c.event(evTaskCompleted, c.taskObject(at, orig, "completed"))
			at = c.tick()
			c.event(evReservationCompleted, c.reservationObject(at, orig))
			c.m.release(from.index)
		},
	}
	c.log.Debug().Str("from", from.id).Str("to", toA.id).Msg("call transferred")
}

// end is the natural end of a connected call: the agent ends (user_ended, then the consumer
// leg ends) or the consumer hangs up; then the engagement ends and the agent wraps up.
func (c *call) end() {
	if c.plan.AgentEnds {
		at := c.tick()
		c.segmentEvent(evUserEnded, c.legObject(at, c.cur), actionStop, c.cur)
		c.closeSegment(c.cur)
	}
	c.endNow()
}

// endNow ends a connected call at once: the consumer leg ends (stopping every open segment,
// paused or not), the engagement ends, the agent wraps up.
func (c *call) endNow() {
	at := c.tick()
	c.segmentEvent(evConsumerEnded, c.legObject(at, c.cur), actionStop, c.open...)
	c.open = nil
	at = c.tick()
	c.event(evEngagementEnded, c.engagementObject(at))
	c.wrapUp()
}

// wrapUp runs the current agent's wrap-up (shortened to nothing while draining), frees the
// agent, then waits for a pending deferred step.
func (c *call) wrapUp() {
	ag := c.cur
	at := c.tick()
	c.event(evWrapUpStarted, c.legObject(at, ag))
	c.waitUntil(time.Now().Add(c.plan.WrapUp)) // false = draining: end the wrap-up now
	at = c.tick()
	c.event(evWrapUpEnded, c.legObject(at, ag))
	if !c.plan.Outbound {
		t := c.task
		if c.xfer != nil {
			t = c.xfer
		}
		at = c.tick()
		c.event(evTaskCompleted, c.taskObject(at, t, "completed"))
		at = c.tick()
		c.event(evReservationCompleted, c.reservationObject(at, t))
	}
	c.m.release(ag.index)
	if c.deferred != nil {
		c.waitUntil(c.deferred.at)
	}
	if d := c.deferred; d != nil { // draining: do it now
		c.deferred = nil
		d.fn()
	}
}

// waitUntil waits until t, running the deferred step when it falls due. It returns false
// as soon as the model drains (at once if it already has), true when t is reached.
func (c *call) waitUntil(t time.Time) bool {
	for {
		if c.draining() {
			return false
		}
		next := t
		if c.deferred != nil && c.deferred.at.Before(next) {
			next = c.deferred.at
		}
		if d := time.Until(next); d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-c.m.drainCh:
				timer.Stop()
				return false
			}
		}
		now := time.Now()
		if d := c.deferred; d != nil && !now.Before(d.at) {
			c.deferred = nil
			d.fn()
		}
		if !now.Before(t) {
			return true
		}
	}
}

func (c *call) draining() bool {
	select {
	case <-c.m.drainCh:
		return true
	default:
		return false
	}
}

// tick returns the time of the call's next event: now (ms, UTC), kept strictly after the
// previous one.
func (c *call) tick() time.Time {
	c.last = nextAt(c.last)
	return c.last
}

// event emits an event that implies no recording action.
func (c *call) event(name string, object map[string]any) {
	c.m.count(c.m.emit(name, c.last, object))
}

// segmentEvent emits an event implying action on the segments of agents and records it.
func (c *call) segmentEvent(name string, object map[string]any, action string, agents ...*agent) {
	d := c.m.emit(name, c.last, object)
	users := make([]string, len(agents))
	for i, a := range agents {
		users[i] = a.id
	}
	c.m.segmentActions(c.engagementID, users, action, d)
}

func (c *call) closeSegment(a *agent) {
	c.open = slices.DeleteFunc(c.open, func(x *agent) bool { return x == a })
}
