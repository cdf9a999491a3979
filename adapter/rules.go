package adapter

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

// Outcome says what Rules.Apply did with an event.
type Outcome int

// Outcomes of Rules.Apply.
const (
	// Applied: the event changed the state (it may or may not yield commands).
	Applied Outcome = iota
	// Ignored: the event carries nothing for the recording state.
	Ignored
	// Late: the event is older than a fact already applied and would undo it
	// (e.g. a user_answered after that leg's user_ended); nothing done.
	Late
	// Stale: the event is older than MaxEventAge and would start a
	// recording; nothing done.
	Stale
	// Early: the event needs an earlier fact that has not arrived yet (a
	// hold, unhold or user_ended for a leg not yet answered, an unhold with
	// no hold). Nothing was done; the caller parks the event and applies it
	// again after the next applied event of the engagement, and with
	// ApplyExpired when the earlier fact never comes.
	Early
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Ignored:
		return "ignored"
	case Late:
		return "late"
	case Stale:
		return "stale"
	case Early:
		return "early"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Rules turns events into commands. The zero value is usable: no pause on
// hold, no age limit, wall clock.
type Rules struct {
	// PauseOnHold makes a hold pause the segment and an unhold resume it;
	// when false both are tags and the hold is recorded. Default false.
	PauseOnHold bool
	// MaxEventAge: an event older than this never starts a recording (it is
	// Stale). Zero means no limit. The node's default is 10m.
	MaxEventAge time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Engagement is the recording state of one engagement: what the leader
// writes to etcd after each applied event and what the standby mirrors.
type Engagement struct {
	ID             string     `json:"id"`
	Direction      string     `json:"direction,omitempty"`
	Channel        string     `json:"channel,omitempty"`
	FlowID         string     `json:"flow_id,omitempty"`
	FlowName       string     `json:"flow_name,omitempty"`
	QueueID        string     `json:"queue_id,omitempty"`
	QueueName      string     `json:"queue_name,omitempty"`
	ConsumerNumber string     `json:"consumer_number,omitempty"`
	ConsumerName   string     `json:"consumer_name,omitempty"`
	TaskID         string     `json:"task_id,omitempty"`
	Segments       []*Segment `json:"segments,omitempty"`
	Closed         bool       `json:"closed,omitempty"`
	ClosedAt       time.Time  `json:"closed_at,omitzero"`
	LastEventAt    time.Time  `json:"last_event_at,omitzero"`
}

// Segment states beyond rcapi's: a leg whose end was seen before its start.
const stateEndedUnstarted = "ended_unstarted"

// Segment is one agent's leg of an engagement. ID is engagement_id + "/" +
// user_id, with "/<leg>" appended from the second leg of the same agent on.
type Segment struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	UserName  string    `json:"user_name,omitempty"`
	Leg       int       `json:"leg"`
	State     string    `json:"state"`
	Pauses    int       `json:"pauses,omitempty"`
	Resumes   int       `json:"resumes,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	StoppedAt time.Time `json:"stopped_at,omitzero"`
	HoldAt    time.Time `json:"hold_at,omitzero"`
	UnholdAt  time.Time `json:"unhold_at,omitzero"`
}

func (s *Segment) open() bool { return s.State == rcapi.StateRecording || s.State == rcapi.StatePaused }

// Clone returns a deep copy (nil for nil). The leader applies an event to a
// clone and keeps it only after every command it implies was accepted, so
// the state it logs never runs ahead of the recorder.
func (e *Engagement) Clone() *Engagement {
	if e == nil {
		return nil
	}
	c := *e
	c.Segments = make([]*Segment, len(e.Segments))
	for i, s := range e.Segments {
		sc := *s
		c.Segments[i] = &sc
	}
	return &c
}

// Open reports whether any segment is recording or paused.
func (e *Engagement) Open() bool {
	for _, s := range e.Segments {
		if s.open() {
			return true
		}
	}
	return false
}

// current returns the newest leg of a user, or nil.
func (e *Engagement) current(userID string) *Segment {
	var cur *Segment
	for _, s := range e.Segments {
		if s.UserID == userID && (cur == nil || s.Leg > cur.Leg) {
			cur = s
		}
	}
	return cur
}

// EngagementID returns the engagement an event belongs to, or "".
func EngagementID(ev *events.Event) string {
	switch {
	case ev.Engagement != nil:
		return ev.Engagement.EngagementID
	case ev.Task != nil:
		return ev.Task.EngagementID
	case ev.Reservation != nil:
		return ev.Reservation.EngagementID
	}
	return ""
}

// CommandID is the deterministic id of a segment's n-th command of one
// action: both nodes compute the same id for the same recording fact,
// whichever event triggered it, so a re-sent command is a duplicate at the
// recorder (G2). Tags, which carry no state, are keyed by their event.
func CommandID(segmentID, action string, n int, eventKey string) string {
	h := sha256.New()
	h.Write([]byte(segmentID))
	h.Write([]byte{0})
	h.Write([]byte(action))
	h.Write([]byte{0})
	if action == rcapi.ActionTag {
		h.Write([]byte(eventKey))
	} else {
		h.Write([]byte(strconv.Itoa(n)))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Apply applies ev to eng (nil for an engagement not seen yet) and returns
// the engagement's new state, the commands to send in order (Epoch and Node
// left for the sender) and the outcome. It mutates eng. Events with no
// engagement return (eng, nil, Ignored). It never fails: whatever order
// events arrive in, the commands it returns form a valid sequence per
// segment (G6).
func (r *Rules) Apply(eng *Engagement, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	id := EngagementID(ev)
	if id == "" {
		return eng, nil, Ignored
	}
	if eng == nil {
		eng = &Engagement{ID: id}
	}
	eng.enrich(ev)
	if ev.Time.After(eng.LastEventAt) {
		eng.LastEventAt = ev.Time
	}
	e := ev.Engagement
	if e == nil {
		return eng, nil, Applied // task and reservation events enrich only
	}
	name := strings.TrimPrefix(ev.Name, "contact_center.")
	switch name {
	case "engagement_started":
		return eng, nil, Applied
	case "engagement_user_answered":
		return r.start(eng, e.UserID, e.UserDisplayName, ev)
	case "engagement_consumer_answered":
		if e.UserID != "" && (e.Direction == "outbound" || eng.Direction == "outbound") {
			return r.start(eng, e.UserID, e.UserDisplayName, ev)
		}
		return eng, nil, Ignored
	case "engagement_user_hold":
		return r.hold(eng, e.UserID, ev)
	case "engagement_user_unhold":
		return r.unhold(eng, e.UserID, ev)
	case "engagement_user_ended":
		return r.end(eng, e.UserID, ev)
	case "engagement_consumer_ended", "engagement_ended":
		return r.close(eng, ev)
	case "engagement_consumer_notified", "engagement_wrap_up_started", "engagement_wrap_up_ended":
		return r.tag(eng, e.UserID, strings.TrimPrefix(name, "engagement_"), ev, nil)
	}
	if strings.HasPrefix(name, "engagement_transfer_") {
		md := map[string]string{}
		put(md, "transfer_to_user_id", e.TransferToUserID)
		put(md, "transfer_to_user_name", e.TransferToUserDisplayName)
		put(md, "transfer_to_queue_id", e.TransferToQueueID)
		put(md, "transfer_to_queue_name", e.TransferToQueueName)
		put(md, "transfer_type", e.TransferType)
		put(md, "transfer_level", e.TransferLevel)
		return r.tag(eng, e.UserID, strings.TrimPrefix(name, "engagement_"), ev, md)
	}
	return eng, nil, Ignored
}

func (r *Rules) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Rules) start(eng *Engagement, userID, userName string, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	if userID == "" || eng.Closed {
		return eng, nil, Late
	}
	leg := 1
	if seg := eng.current(userID); seg != nil {
		if seg.open() {
			return eng, nil, Ignored
		}
		if !ev.Time.After(seg.StoppedAt) {
			return eng, nil, Late // the answer of a leg already ended
		}
		leg = seg.Leg + 1
	}
	if r.MaxEventAge > 0 && r.now().Sub(ev.Time) > r.MaxEventAge {
		return eng, nil, Stale
	}
	segID := eng.ID + "/" + userID
	if leg > 1 {
		segID += "/" + strconv.Itoa(leg)
	}
	seg := &Segment{ID: segID, UserID: userID, UserName: bounded(userName), Leg: leg, State: rcapi.StateRecording, StartedAt: ev.Time}
	eng.Segments = append(eng.Segments, seg)
	return eng, []rcapi.Command{r.command(eng, seg, rcapi.ActionStart, 1, ev, nil)}, Applied
}

func (r *Rules) hold(eng *Engagement, userID string, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	seg := eng.current(userID)
	if seg == nil {
		return eng, nil, Early
	}
	if !seg.open() {
		return eng, nil, Ignored
	}
	if ev.Time.Before(seg.UnholdAt) || ev.Time.Before(seg.StartedAt) {
		return eng, nil, Late
	}
	seg.HoldAt = ev.Time
	if !r.PauseOnHold {
		return eng, []rcapi.Command{r.command(eng, seg, rcapi.ActionTag, 0, ev, map[string]string{"tag": "hold"})}, Applied
	}
	if seg.State != rcapi.StateRecording {
		return eng, nil, Ignored
	}
	seg.State = rcapi.StatePaused
	seg.Pauses++
	return eng, []rcapi.Command{r.command(eng, seg, rcapi.ActionPause, seg.Pauses, ev, nil)}, Applied
}

func (r *Rules) unhold(eng *Engagement, userID string, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	seg := eng.current(userID)
	if seg == nil {
		return eng, nil, Early
	}
	if !seg.open() {
		return eng, nil, Ignored
	}
	if ev.Time.Before(seg.HoldAt) {
		return eng, nil, Late
	}
	if r.PauseOnHold && seg.State == rcapi.StateRecording && !seg.HoldAt.After(seg.UnholdAt) {
		return eng, nil, Early // an unhold whose hold has not arrived
	}
	seg.UnholdAt = ev.Time
	if !r.PauseOnHold {
		return eng, []rcapi.Command{r.command(eng, seg, rcapi.ActionTag, 0, ev, map[string]string{"tag": "unhold"})}, Applied
	}
	if seg.State != rcapi.StatePaused {
		return eng, nil, Ignored
	}
	seg.State = rcapi.StateRecording
	seg.Resumes++
	return eng, []rcapi.Command{r.command(eng, seg, rcapi.ActionResume, seg.Resumes, ev, nil)}, Applied
}

func (r *Rules) end(eng *Engagement, userID string, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	seg := eng.current(userID)
	if seg == nil {
		return eng, nil, Early // the answer may still be on its way
	}
	if !seg.open() {
		return eng, nil, Ignored
	}
	return eng, []rcapi.Command{r.stop(eng, seg, ev)}, Applied
}

// ApplyExpired applies an event that stayed Early past its parking time:
// the earlier fact it waited for never came. A user_ended then records that
// the leg ended unstarted, so a later answer for it starts nothing; hold and
// unhold are dropped. It returns the engagement, no commands, and Late.
func (r *Rules) ApplyExpired(eng *Engagement, ev *events.Event) (*Engagement, Outcome) {
	id := EngagementID(ev)
	if id == "" || ev.Engagement == nil {
		return eng, Ignored
	}
	if eng == nil {
		eng = &Engagement{ID: id}
	}
	if strings.TrimPrefix(ev.Name, "contact_center.") == "engagement_user_ended" && eng.current(ev.Engagement.UserID) == nil {
		eng.Segments = append(eng.Segments, &Segment{ID: eng.ID + "/" + ev.Engagement.UserID, UserID: ev.Engagement.UserID,
			Leg: 1, State: stateEndedUnstarted, StoppedAt: ev.Time})
	}
	return eng, Late
}

func (r *Rules) stop(eng *Engagement, seg *Segment, ev *events.Event) rcapi.Command {
	seg.State = rcapi.StateStopped
	seg.StoppedAt = ev.Time
	return r.command(eng, seg, rcapi.ActionStop, 1, ev, nil)
}

// ReasonExpired is the metadata "reason" of the stops Expire returns, and
// EventExpired their Command.Event: no Zoom event triggered them.
const (
	ReasonExpired = "expired"
	EventExpired  = "zccadapter.engagement_expired"
)

// Expire closes an engagement whose end was never seen (its end event was
// lost): every open segment is stopped at at, with a stop command carrying
// metadata reason=expired, and the engagement is closed at at (ClosedAt is
// kept when it was already closed). A stop's id is the one the segment's
// own end would have given it (CommandID of its first stop), so whichever
// of the two reaches the recorder second is a duplicate there (G2), and a
// leader that expires the engagement again after a failover sends nothing
// new. It mutates eng and returns the commands in segment order (Epoch and
// Node left for the sender); none when no segment is open.
func (r *Rules) Expire(eng *Engagement, at time.Time) []rcapi.Command {
	ev := &events.Event{Name: EventExpired, Time: at}
	var cmds []rcapi.Command
	for _, seg := range eng.Segments {
		if seg.open() {
			c := r.stop(eng, seg, ev)
			c.Metadata["reason"] = ReasonExpired
			cmds = append(cmds, c)
		}
	}
	if !eng.Closed {
		eng.Closed = true
		eng.ClosedAt = at
	}
	return cmds
}

func (r *Rules) close(eng *Engagement, ev *events.Event) (*Engagement, []rcapi.Command, Outcome) {
	var cmds []rcapi.Command
	for _, seg := range eng.Segments {
		if seg.open() {
			cmds = append(cmds, r.stop(eng, seg, ev))
		}
	}
	if !eng.Closed {
		eng.Closed = true
		eng.ClosedAt = ev.Time
	}
	return eng, cmds, Applied
}

func (r *Rules) tag(eng *Engagement, userID, tag string, ev *events.Event, md map[string]string) (*Engagement, []rcapi.Command, Outcome) {
	var targets []*Segment
	if seg := eng.current(userID); userID != "" && seg != nil {
		// The event is about this agent's leg: tag it only while it is open.
		if seg.open() {
			targets = append(targets, seg)
		}
	} else {
		for _, seg := range eng.Segments {
			if seg.open() {
				targets = append(targets, seg)
			}
		}
	}
	if len(targets) == 0 {
		return eng, nil, Ignored
	}
	var cmds []rcapi.Command
	for _, seg := range targets {
		m := map[string]string{"tag": tag}
		for k, v := range md {
			m[k] = v
		}
		cmds = append(cmds, r.command(eng, seg, rcapi.ActionTag, 0, ev, m))
	}
	return eng, cmds, Applied
}

func (r *Rules) command(eng *Engagement, seg *Segment, action string, n int, ev *events.Event, extra map[string]string) rcapi.Command {
	md := map[string]string{}
	put(md, "direction", eng.Direction)
	put(md, "channel", eng.Channel)
	put(md, "agent_id", seg.UserID)
	put(md, "agent_name", seg.UserName)
	put(md, "consumer_number", eng.ConsumerNumber)
	put(md, "consumer_name", eng.ConsumerName)
	put(md, "queue_id", eng.QueueID)
	put(md, "queue_name", eng.QueueName)
	put(md, "flow_id", eng.FlowID)
	put(md, "flow_name", eng.FlowName)
	put(md, "task_id", eng.TaskID)
	for k, v := range extra {
		md[k] = v
	}
	return rcapi.Command{
		ID:           CommandID(seg.ID, action, n, ev.Key),
		Action:       action,
		EngagementID: eng.ID,
		SegmentID:    seg.ID,
		At:           ev.Time.UTC().Truncate(time.Millisecond),
		Event:        ev.Name,
		Metadata:     md,
	}
}

func put(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// maxNameBytes bounds the descriptive fields (names, numbers) an
// engagement keeps from its events, so that a state record stays far under
// etcd's request limit (1.5 MiB) whatever an event carries; identifiers are
// kept whole.
const maxNameBytes = 256

// bounded cuts s to maxNameBytes on a rune boundary.
func bounded(s string) string {
	if len(s) <= maxNameBytes {
		return s
	}
	cut := maxNameBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// enrich fills fields the engagement does not know yet.
func (eng *Engagement) enrich(ev *events.Event) {
	set := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst = v
		}
	}
	setName := func(dst *string, v string) { set(dst, bounded(v)) }
	if e := ev.Engagement; e != nil {
		set(&eng.Direction, e.Direction)
		set(&eng.Channel, e.Channel)
		set(&eng.FlowID, e.FlowID)
		setName(&eng.FlowName, e.FlowName)
		set(&eng.QueueID, e.QueueID)
		setName(&eng.QueueName, e.QueueName)
		setName(&eng.ConsumerNumber, e.ConsumerNumber)
		setName(&eng.ConsumerName, e.ConsumerDisplayName)
		set(&eng.TaskID, e.TaskID)
	}
	if t := ev.Task; t != nil {
		set(&eng.TaskID, t.TaskID)
		set(&eng.FlowID, t.FlowID)
		setName(&eng.FlowName, t.FlowName)
		set(&eng.QueueID, t.QueueID)
		setName(&eng.QueueName, t.QueueName)
		setName(&eng.ConsumerNumber, t.CallerNumber)
	}
	if r := ev.Reservation; r != nil {
		set(&eng.TaskID, r.TaskID)
		set(&eng.QueueID, r.QueueID)
		setName(&eng.QueueName, r.QueueName)
		set(&eng.Direction, r.Direction)
	}
}
