package traffic

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Emitter receives every event the model produces: its name ("contact_center.task_created"),
// its time (the event_ts / date_time_ms to publish, UTC, millisecond resolution) and its
// payload.object. It returns how many subscriptions the event reached; 0 marks the event
// (and the segments whose actions it implies) undelivered in the Truth.
//
// The model calls it from several goroutines at once, but never concurrently for the same
// engagement, and in story order per engagement. It should return promptly: a call's story
// waits for it, and so does Drain. It owns object after the call. It may call Truth, Agents
// and Config, but must not call Drain (Drain waits for the call that is inside emit).
type Emitter func(name string, at time.Time, object map[string]any) (delivered int)

// Model is a simulated contact center: agents, a FIFO queue of callers, and calls that each
// tell their story in real time through the Emitter, while the model records the ground
// truth of the recording segments they imply.
//
// Lifecycle: New, then Run (once) to log the agents in and generate calls, then Drain to
// end every call and join their goroutines. Truth, Agents and Config are safe for
// concurrent use at any time.
type Model struct {
	cfg         Config
	emit        Emitter
	log         zerolog.Logger
	site        site
	agents      []agent
	taskTimeout int // task_timeout in events: QueueTimeout in whole seconds, at least 1

	drainCh chan struct{} // closed by the first Drain
	idle    chan struct{} // closed when draining and no call goroutine is left

	mu         sync.Mutex
	ran        bool
	draining   bool
	idleClosed bool
	active     int        // call goroutines running
	loggedIn   []bool     // by agent index
	busy       []bool     // by agent index: reserved, on a call or in wrap-up
	free       []int      // free agents, longest idle first
	waiting    []*waiter  // queued inbound callers, first come first served
	plans      []callPlan // every call started, in start order (for tests)
	truth      truthCounters
	segments   map[string]*Segment
}

// waiter is a queued inbound caller. ch (buffer 1) receives the assigned agent's index.
type waiter struct {
	ch chan int
}

// New returns a Model for cfg, with defaults applied to zero fields (see Config). It returns
// a *ConfigError (errors.Is ErrInvalidConfig) naming each invalid field, joined when there are
// several. emit must not be nil. log gets a "component":"traffic" child; pass zerolog.Nop()
// for silence. New starts nothing.
func New(cfg Config, emit Emitter, log zerolog.Logger) (*Model, error) {
	cfg = cfg.withDefaults()
	err := cfg.validate()
	if emit == nil {
		err = errors.Join(err, &ConfigError{Field: "emit", Value: nil, Reason: "an Emitter is required"})
	}
	if err != nil {
		return nil, err
	}
	m := &Model{
		cfg:         cfg,
		emit:        emit,
		log:         log.With().Str("component", "traffic").Logger(),
		site:        newSite(cfg.Seed),
		agents:      make([]agent, cfg.Agents),
		taskTimeout: max(1, int(math.Ceil(time.Duration(cfg.QueueTimeout).Seconds()))),
		drainCh:     make(chan struct{}),
		idle:        make(chan struct{}),
		loggedIn:    make([]bool, cfg.Agents),
		busy:        make([]bool, cfg.Agents),
		segments:    make(map[string]*Segment),
	}
	for i := range m.agents {
		m.agents[i] = newAgent(cfg.Seed, i)
	}
	return m, nil
}

// Config returns the effective configuration, defaults applied.
func (m *Model) Config() Config { return m.cfg }

// Agents returns a snapshot of the agents, in agent-index order.
func (m *Model) Agents() []Agent {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Agent, len(m.agents))
	for i, a := range m.agents {
		status := "offline"
		switch {
		case m.busy[i]:
			status = "busy"
		case m.loggedIn[i]:
			status = "ready"
		}
		out[i] = Agent{UserID: a.id, DisplayName: a.name, Email: a.email, Status: status}
	}
	return out
}

// Run logs every agent in (user.signed_in, contact_center.user_login,
// contact_center.user_status_changed to Ready, user.presence_status_updated), then starts
// calls at Poisson arrival times, each in its own goroutine, until ctx ends or Drain is
// called. It blocks until then and returns nil.
//
// ctx only stops the generation of new calls: calls in progress keep running after Run
// returns, to their natural end or until Drain. Run may be called once; a second call returns
// ErrAlreadyRun, a call after Drain returns ErrDrained.
func (m *Model) Run(ctx context.Context) error {
	m.mu.Lock()
	switch {
	case m.ran:
		m.mu.Unlock()
		return ErrAlreadyRun
	case m.draining:
		m.mu.Unlock()
		return ErrDrained
	}
	m.ran = true
	m.mu.Unlock()

	m.log.Info().Int("agents", m.cfg.Agents).Float64("calls_per_second", m.cfg.CallsPerSecond).
		Int64("seed", m.cfg.Seed).Msg("traffic started")
	for i := range m.agents {
		if m.stopped(ctx) {
			return nil
		}
		m.logIn(&m.agents[i])
	}

	// Arrival times follow a fixed schedule from the seed; a late wake-up does not shift the
	// arrivals after it.
	r := arrivalRNG(m.cfg.Seed)
	next := time.Now()
	for index := 0; ; index++ {
		next = next.Add(time.Duration(r.ExpFloat64() / m.cfg.CallsPerSecond * float64(time.Second)))
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			m.logStop()
			return nil
		case <-m.drainCh:
			timer.Stop()
			m.logStop()
			return nil
		case <-timer.C:
		}
		m.startCall(index)
	}
}

func (m *Model) logStop() {
	t := m.Truth()
	m.log.Info().Int("calls", t.Calls).Int("events", t.Events).Msg("traffic generation stopped")
}

func (m *Model) stopped(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	case <-m.drainCh:
		return true
	default:
		return false
	}
}

// logIn emits the four roster events of one agent and makes the agent free.
func (m *Model) logIn(a *agent) {
	var last time.Time
	for _, ev := range []struct {
		name  string
		build func(time.Time, *agent) map[string]any
	}{
		{evUserSignedIn, signedInObject},
		{evUserLogin, userLoginObject},
		{evUserStatusChanged, statusReadyObject},
		{evPresenceUpdated, presenceAvailableObject},
	} {
		at := nextAt(last)
		last = at
		m.count(m.emit(ev.name, at, ev.build(at, a)))
	}
	m.mu.Lock()
	m.loggedIn[a.index] = true
	m.mu.Unlock()
	m.release(a.index)
}

// nextAt returns now at millisecond resolution (UTC), or last+1ms if that is not later
// than last: event times strictly increase within one story.
func nextAt(last time.Time) time.Time {
	at := time.Now().UTC().Truncate(time.Millisecond)
	if !at.After(last) {
		at = last.Add(time.Millisecond)
	}
	return at
}

// startCall plans call index and starts its goroutine. An outbound call takes its agent
// here; with no free agent it is skipped.
func (m *Model) startCall(index int) {
	p := planCall(m.cfg, len(m.site.inboundQueues), index)
	m.mu.Lock()
	if m.draining {
		m.mu.Unlock()
		return
	}
	ag := -1
	if p.Outbound {
		ag = m.takeFreeLocked(nil)
		if ag < 0 {
			m.mu.Unlock()
			m.log.Debug().Int("call", index).Msg("outbound call skipped: no free agent")
			return
		}
	}
	m.active++
	m.truth.Calls++
	m.plans = append(m.plans, p)
	m.mu.Unlock()

	c := m.newCall(p)
	go func() {
		defer m.callDone()
		c.run(ag)
	}()
}

// callDone is the last thing a call goroutine does.
func (m *Model) callDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.active--
	if m.active == 0 && m.draining && !m.idleClosed {
		m.idleClosed = true
		close(m.idle)
	}
}

// takeFreeLocked removes and returns the longest-idle free agent not in exclude, or -1.
func (m *Model) takeFreeLocked(exclude map[int]bool) int {
	for i, a := range m.free {
		if exclude[a] {
			continue
		}
		m.free = append(m.free[:i:i], m.free[i+1:]...)
		m.busy[a] = true
		return a
	}
	return -1
}

// takeFree is takeFreeLocked under the lock.
func (m *Model) takeFree(exclude map[int]bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.takeFreeLocked(exclude)
}

// release frees agent a: it goes to the first queued caller, or to the free list. While
// draining, queued callers are abandoning, so a goes to the free list.
func (m *Model) release(a int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.draining && len(m.waiting) > 0 {
		w := m.waiting[0]
		m.waiting = m.waiting[1:]
		w.ch <- a // buffered, and each waiter receives at most one agent
		return
	}
	m.busy[a] = false
	m.free = append(m.free, a)
}

// enqueue returns a free agent at once (>= 0), or queues w and returns -1.
func (m *Model) enqueue(w *waiter) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.takeFreeLocked(nil); a >= 0 {
		return a
	}
	m.waiting = append(m.waiting, w)
	return -1
}

// dequeue removes w from the queue if it is still there and reports whether it was; if not,
// an agent has already been sent on w.ch.
func (m *Model) dequeue(w *waiter) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.waiting {
		if x == w {
			m.waiting = append(m.waiting[:i:i], m.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// Drain stops new calls and ends every active call now, with its proper end events: a queued
// caller abandons (engagement_consumer_ended without agent, engagement_ended,
// task_canceled); a connected call, on hold or not, ends with engagement_consumer_ended
// (stopping all its open segments) and engagement_ended, then its wrap-up events at once.
// Drain then blocks until every call goroutine has returned, or ctx ends; ctx only bounds
// that wait (the calls are ending either way) and its error is returned, wrapped, if it
// ends first. Drain is idempotent and safe to call concurrently with Run.
func (m *Model) Drain(ctx context.Context) error {
	m.mu.Lock()
	if !m.draining {
		m.draining = true
		close(m.drainCh)
		m.log.Info().Int("active_calls", m.active).Int("queued", len(m.waiting)).Msg("draining traffic")
	}
	if m.active == 0 && !m.idleClosed {
		m.idleClosed = true
		close(m.idle)
	}
	m.mu.Unlock()
	select {
	case <-m.idle:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		n := m.active
		m.mu.Unlock()
		return fmt.Errorf("traffic drain: %d calls still running: %w", n, ctx.Err())
	}
}

// Truth is a snapshot of the ground truth: what the emitted events imply.
type Truth struct {
	// Calls counts engagements started (skipped outbound arrivals are not calls).
	Calls int `json:"calls"`
	// Answered counts calls that reached an agent (inbound answered, outbound consumer answered).
	Answered int `json:"answered"`
	// Abandoned counts inbound callers who left the queue (timeout or Drain) before an agent.
	Abandoned int `json:"abandoned"`
	// Transfers counts completed warm transfers.
	Transfers int `json:"transfers"`
	// Holds counts engagement_user_hold events.
	Holds int `json:"holds"`
	// Events counts every event emitted, roster events included.
	Events int `json:"events"`
	// Undelivered counts the events for which the Emitter returned 0.
	Undelivered int `json:"undelivered"`
	// Segments lists every recording segment begun so far, sorted by SegmentID.
	Segments []Segment `json:"segments"`
}

// Segment is one agent's leg of one engagement and the recording actions its events imply
// (DESIGN.md §5).
type Segment struct {
	// SegmentID is EngagementID + "/" + UserID.
	SegmentID    string `json:"segment_id"`
	EngagementID string `json:"engagement_id"`
	UserID       string `json:"user_id"`
	// Actions lists the implied actions in order: "start", then ("pause", "resume")*, maybe a
	// final "pause", then "stop" once the segment is Complete.
	Actions []string `json:"actions"`
	// Complete reports that the segment's stop was emitted.
	Complete bool `json:"complete"`
	// Undelivered reports that an event implying one of its actions reached no subscription.
	Undelivered bool `json:"undelivered"`
}

// truthCounters are the counts of Truth, owned by Model.mu.
type truthCounters struct {
	Calls, Answered, Abandoned, Transfers, Holds, Events, Undelivered int
}

// bump changes the counters under the lock.
func (m *Model) bump(f func(*truthCounters)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.truth)
}

// Truth returns a snapshot of the ground truth; it never blocks for long and is safe to call
// at any time, from any goroutine, including from the Emitter.
func (m *Model) Truth() Truth {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := Truth{
		Calls:       m.truth.Calls,
		Answered:    m.truth.Answered,
		Abandoned:   m.truth.Abandoned,
		Transfers:   m.truth.Transfers,
		Holds:       m.truth.Holds,
		Events:      m.truth.Events,
		Undelivered: m.truth.Undelivered,
		Segments:    make([]Segment, 0, len(m.segments)),
	}
	for _, s := range m.segments {
		c := *s
		c.Actions = append([]string(nil), s.Actions...)
		t.Segments = append(t.Segments, c)
	}
	sort.Slice(t.Segments, func(i, j int) bool { return t.Segments[i].SegmentID < t.Segments[j].SegmentID })
	return t
}

// count records one emitted event.
func (m *Model) count(delivered int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countLocked(delivered)
}

func (m *Model) countLocked(delivered int) {
	m.truth.Events++
	if delivered <= 0 {
		m.truth.Undelivered++
	}
}

// segmentActions records action on each segment of engagement eng for the given users,
// after the event implying it was emitted with the given delivery count, and counts the event.
func (m *Model) segmentActions(eng string, users []string, action string, delivered int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.countLocked(delivered)
	for _, u := range users {
		id := eng + "/" + u
		s := m.segments[id]
		if s == nil {
			s = &Segment{SegmentID: id, EngagementID: eng, UserID: u}
			m.segments[id] = s
		}
		s.Actions = append(s.Actions, action)
		if action == actionStop {
			s.Complete = true
		}
		if delivered <= 0 {
			s.Undelivered = true
		}
	}
}

// The recording actions of DESIGN.md §5.
const (
	actionStart  = "start"
	actionPause  = "pause"
	actionResume = "resume"
	actionStop   = "stop"
)
