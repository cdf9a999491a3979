package events

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event is one Zoom event: the envelope of PROTOCOL.md §3,
// {"event":…,"event_ts":…,"payload":{"account_id":…,"object":{…}}},
// plus a typed view of its object. Build one with [Parse].
//
// At most one of Engagement, Task, Reservation, Agent and User is set, and only
// for known names (Known true); the typed views copy fields out of Object, which
// stays the authority for anything they do not carry.
type Event struct {
	// Name is the event name, e.g. "contact_center.engagement_user_answered";
	// compare it with the name constants ([EngagementUserAnswered], …).
	Name string
	// TS is event_ts, Zoom's time of the event in milliseconds since the Unix
	// epoch, as a UTC time inside the window of the [Limits] it was parsed
	// with. Copies of one event on two subscriptions may carry different
	// values (PROTOCOL.md §1).
	TS time.Time
	// AccountID is payload.account_id.
	AccountID string
	// Object is payload.object, byte for byte as received.
	Object json.RawMessage
	// Raw is the whole event JSON as received (a copy of Parse's input).
	Raw json.RawMessage
	// Key is the dedup key of the event, see [DedupKey].
	Key string
	// Time is when the event happened according to its object: date_time_ms,
	// else date_time (or "date-time"), else last_modified_time_ms, else TS.
	// Always UTC, and like TS inside the window of the [Limits] it was parsed
	// with (so a year from 1 to 9999). For unknown names a bad or implausible
	// time field is ignored and TS used.
	Time time.Time
	// Known reports whether Name is one of the name constants ([IsKnown]).
	// Unknown events are returned without error and without a typed view;
	// callers count them.
	Known bool

	// Engagement is set for every known contact_center.engagement_* event,
	// transfers included.
	Engagement *Engagement
	// Task is set for the known contact_center.task_* events other than
	// reservations.
	Task *Task
	// Reservation is set for the known contact_center.task_reservation_* events.
	Reservation *Reservation
	// Agent is set for contact_center.user_login, user_logout and
	// user_status_changed.
	Agent *Agent
	// User is set for user.signed_in, user.signed_out and
	// user.presence_status_updated.
	User *UserActivity
}

// Engagement is the object of a contact_center.engagement_* event
// (PROTOCOL.md §3 "Key fields"). Each field holds the Zoom field named in its
// json tag; absent fields are "". engagement_started and engagement_ended
// carry no agent or consumer, and only transfer events carry the TransferTo*
// fields.
type Engagement struct {
	EngagementID        string `json:"engagement_id"`                   // the engagement (call, chat, …); always set
	Direction           string `json:"engagement_direction,omitempty"`  // "inbound" or "outbound"
	Channel             string `json:"channel,omitempty"`               // voice, video, chat, sms, …
	ChannelSource       string `json:"channel_source,omitempty"`        // e.g. "phone"
	FlowID              string `json:"flow_id,omitempty"`               // the routing flow
	FlowName            string `json:"flow_name,omitempty"`             // the flow's display name
	FlowNumber          string `json:"flow_number,omitempty"`           // the number dialled into the flow, E.164
	QueueID             string `json:"cc_queue_id,omitempty"`           // the Contact Center queue (cc_queue_id, not queue_id)
	QueueName           string `json:"queue_name,omitempty"`            // the queue's display name
	ConsumerID          string `json:"consumer_id,omitempty"`           // the customer
	ConsumerNumber      string `json:"consumer_number,omitempty"`       // the customer's number, E.164
	ConsumerDisplayName string `json:"consumer_display_name,omitempty"` // the customer's display name
	// UserID is the agent on the leg; required for engagement_user_answered,
	// _user_ended, _user_hold and _user_unhold.
	UserID                    string `json:"user_id,omitempty"`
	UserDisplayName           string `json:"user_display_name,omitempty"`             // the agent's display name
	TaskID                    string `json:"task_id,omitempty"`                       // the leg's task (transfers)
	TransferToUserID          string `json:"transfer_to_user_id,omitempty"`           // transfer target agent
	TransferToUserDisplayName string `json:"transfer_to_user_display_name,omitempty"` // its display name
	TransferToQueueID         string `json:"transfer_to_cc_queue_id,omitempty"`       // transfer target queue
	TransferToQueueName       string `json:"transfer_to_queue_name,omitempty"`        // its display name
	TransferToTaskID          string `json:"transfer_to_task_id,omitempty"`           // the task created for the target
	TransferType              string `json:"transfer_type,omitempty"`                 // warm, …
	TransferLevel             string `json:"transfer_level,omitempty"`                // queue, …
}

// Task is the object of a contact_center.task_* event other than
// reservations. Each field holds the Zoom field named in its json tag.
type Task struct {
	TaskID       string `json:"task_id"`                 // always set
	EngagementID string `json:"engagement_id,omitempty"` // the engagement the task routes
	FlowID       string `json:"flow_id,omitempty"`       // the routing flow
	FlowName     string `json:"flow_name,omitempty"`     // the flow's display name
	Status       string `json:"task_status,omitempty"`   // pending, assigned, completed, canceled, …
	// Priority is task_priority; 0 when absent. Accepted as a JSON number or a
	// string of digits.
	Priority     int    `json:"task_priority,omitempty"`
	QueueID      string `json:"cc_queue_id,omitempty"`   // the queue the task waits in
	QueueName    string `json:"queue_name,omitempty"`    // its display name
	ChannelID    string `json:"channel_id,omitempty"`    // the channel's id
	ChannelName  string `json:"channel_name,omitempty"`  // voice, chat, …
	CallerNumber string `json:"caller_number,omitempty"` // E.164
	CalleeNumber string `json:"callee_number,omitempty"` // E.164
}

// Reservation is the object of a contact_center.task_reservation_* event: a
// task offered to one agent. Each field holds the Zoom field named in its json
// tag.
type Reservation struct {
	ReservationID  string `json:"task_reservation_id"`            // always set
	TaskID         string `json:"task_id,omitempty"`              // the task offered
	AssignedUserID string `json:"assigned_user_id,omitempty"`     // the agent it is offered to
	EngagementID   string `json:"engagement_id,omitempty"`        // the engagement the task routes
	QueueID        string `json:"cc_queue_id,omitempty"`          // the queue
	QueueName      string `json:"queue_name,omitempty"`           // its display name
	FlowID         string `json:"flow_id,omitempty"`              // the routing flow
	FlowName       string `json:"flow_name,omitempty"`            // its display name
	Channel        string `json:"channel,omitempty"`              // voice, chat, …
	ChannelSource  string `json:"channel_source,omitempty"`       // e.g. "phone"
	Direction      string `json:"engagement_direction,omitempty"` // "inbound" or "outbound"; not on every event
	CallerNumber   string `json:"caller_number,omitempty"`        // E.164
	CalleeNumber   string `json:"callee_number,omitempty"`        // E.164
}

// Agent is the object of contact_center.user_login, user_logout and
// user_status_changed. Each field holds the Zoom field named in its json tag;
// the status fields are set by user_status_changed only.
type Agent struct {
	UserID                string `json:"user_id"`                            // the agent; always set
	DisplayName           string `json:"display_name,omitempty"`             // the agent's display name
	Email                 string `json:"user_email,omitempty"`               // the agent's email
	CurrentStatusID       string `json:"current_status_id,omitempty"`        // e.g. "1"
	CurrentStatusName     string `json:"current_status_name,omitempty"`      // e.g. "Ready"
	CurrentSubStatusID    string `json:"current_sub_status_id,omitempty"`    // "" when none
	CurrentSubStatusName  string `json:"current_sub_status_name,omitempty"`  // "" when none
	PreviousStatusID      string `json:"previous_status_id,omitempty"`       // e.g. "2"
	PreviousStatusName    string `json:"previous_status_name,omitempty"`     // e.g. "Not Ready"
	PreviousSubStatusID   string `json:"previous_sub_status_id,omitempty"`   // e.g. "20"
	PreviousSubStatusName string `json:"previous_sub_status_name,omitempty"` // e.g. "Break"
}

// UserActivity is the object of user.signed_in, user.signed_out and
// user.presence_status_updated. Each field holds the Zoom field named in its
// json tag.
type UserActivity struct {
	ID    string `json:"id"`              // the Zoom user; always set
	Email string `json:"email,omitempty"` // the user's email
	// PresenceStatus is one of Available, Away, Do_Not_Disturb, In_Meeting,
	// Presenting, On_Phone_Call, In_Calendar_Event, Offline, Busy,
	// Mobile_signed_in (presence_status_updated only).
	PresenceStatus string `json:"presence_status,omitempty"`
	ClientType     string `json:"client_type,omitempty"` // win, mac, …
	Version        string `json:"version,omitempty"`     // the client's version
	// LoginType is login_type as a decimal string ("100"); Zoom sends it as a
	// JSON number or a string (PROTOCOL.md §3), both are accepted.
	LoginType string `json:"login_type,omitempty"`
}

// objectTimeFields are the fields an object may carry its own time in, in
// the order Event.Time prefers them (created_time_ms is validated but is the
// creation of the task, not the time of the event).
var objectTimeFields = []string{"date_time_ms", "date_time", "date-time", "last_modified_time_ms", "created_time_ms"}

// Parse is [ParseWith] with the default [Limits]: event times at most a day
// ahead of the clock and 30 days behind it, nesting at most 64 deep.
func Parse(raw []byte) (*Event, error) {
	return ParseWith(raw, Limits{})
}

// ParseWith decodes one event JSON: the whole event, as found in a message
// frame's content (PROTOCOL.md §1, §3). It copies raw; the caller may reuse
// it.
//
// Refused first, before anything is decoded, each with a [*ParseError]
// naming the field's path: objects and arrays nested deeper than
// lim.MaxDepth ([ClassTooDeep]); then any string or object key that is not
// valid UTF-8 or escapes a lone UTF-16 surrogate ([ClassInvalidUTF8]), since
// decoding would turn all of them into U+FFFD and so make different
// identifiers, and different events, one.
//
// Required, else a [*ParseError] naming the field: the envelope's event (a
// non-empty string), event_ts (an integer, ms since the epoch, > 0, inside
// the window of lim: [ClassImplausibleTime] otherwise), payload.account_id (a
// non-empty string) and payload.object (a JSON object). For known names
// also: engagement_id for engagement events, user_id for
// engagement_user_answered/_user_ended/_user_hold/_user_unhold, task_id for
// task events, task_reservation_id for reservation events, user_id for agent
// events and id for user.* events; and every time field present
// (date_time_ms, date_time, "date-time", last_modified_time_ms,
// created_time_ms) must be an RFC 3339 string or epoch milliseconds
// ([ClassBadTime]) inside the window ([ClassImplausibleTime]).
//
// The window is [lim.Now()-lim.MaxPast, lim.Now()+lim.MaxFuture], and
// whatever it is a time must be a UTC year from 1 to 9999. It catches unit
// slips (microseconds sent as milliseconds), years past 9999, which
// json.Marshal refuses, and times before year 1, which would sort first.
//
// Optional string fields accept a JSON string, number or boolean (kept as its
// literal text); null or a value of another type reads as "" and is no error,
// so a cosmetic schema change never loses an event. Object keeps everything.
//
// An unknown event name is no error: the envelope is parsed and the event
// returned with Known false and no typed view. Its event_ts is checked like
// any other; a bad or implausible object time is skipped.
//
// The cost is linear in len(raw), whatever its shape. ParseWith never panics.
func ParseWith(raw []byte, lim Limits) (*Event, error) {
	lim = lim.withDefaults()
	if perr := checkShape(raw, lim.MaxDepth); perr != nil {
		if perr.Class != ClassTooDeep {
			perr.Event = knownNameOf(raw) // nesting is bounded: decoding is safe
		}
		return nil, perr
	}
	raw = bytes.Clone(raw)
	env, perr := decodeObject(raw, "")
	if perr != nil {
		return nil, perr
	}

	name, ok := jsonString(env["event"])
	switch {
	case env["event"] == nil || isNull(env["event"]):
		return nil, &ParseError{Field: "event", Reason: reasonMissing, Class: ClassMissing}
	case !ok:
		return nil, &ParseError{Field: "event", Reason: reasonNotString, Class: ClassNotString}
	case name == "":
		return nil, &ParseError{Field: "event", Reason: reasonEmpty, Class: ClassEmpty}
	}
	known := IsKnown(name)
	errName := ""
	if known {
		errName = name
	}
	fail := func(field, reason string) (*Event, error) {
		return nil, &ParseError{Event: errName, Field: field, Reason: reason, Class: reasonClasses[reason]}
	}

	tsRaw := env["event_ts"]
	if tsRaw == nil || isNull(tsRaw) {
		return fail("event_ts", reasonMissing)
	}
	tsMS, ok := jsonInt(tsRaw)
	if !ok {
		return fail("event_ts", reasonNotInt)
	}
	if tsMS <= 0 {
		return fail("event_ts", reasonNotAfterEpoch)
	}
	win := lim.window()
	ts := time.UnixMilli(tsMS).UTC()
	if !win.plausible(ts) {
		return fail("event_ts", reasonImplausibleTime)
	}

	if env["payload"] == nil || isNull(env["payload"]) {
		return fail("payload", reasonMissing)
	}
	payload, perr := decodeObject(env["payload"], "payload")
	if perr != nil {
		perr.Event = errName
		return nil, perr
	}
	accountID, ok := jsonString(payload["account_id"])
	switch {
	case payload["account_id"] == nil || isNull(payload["account_id"]):
		return fail("payload.account_id", reasonMissing)
	case !ok:
		return fail("payload.account_id", reasonNotString)
	case accountID == "":
		return fail("payload.account_id", reasonEmpty)
	}
	objRaw := payload["object"]
	if objRaw == nil || isNull(objRaw) {
		return fail("payload.object", reasonMissing)
	}
	obj, perr := decodeObject(objRaw, "payload.object")
	if perr != nil {
		perr.Event = errName
		return nil, perr
	}

	ev := &Event{
		Name:      name,
		TS:        ts,
		AccountID: accountID,
		Object:    objRaw,
		Raw:       raw,
		Known:     known,
	}

	f := &fields{m: obj, event: errName, win: win, skew: lim.MaxSkew}
	ev.Time = f.eventTime(known, ev.TS)
	if known {
		switch groupOf(name) {
		case groupEngagement:
			ev.Engagement = f.engagement(needsUserID[name])
		case groupTask:
			ev.Task = f.task()
		case groupReservation:
			ev.Reservation = f.reservation()
		case groupAgent:
			ev.Agent = f.agent()
		case groupUser:
			ev.User = f.user()
		}
	}
	if f.err != nil {
		return nil, f.err
	}

	// obj is the decoded payload.object: hash it without decoding it again.
	ev.Key = dedupKeyOfObject(name, accountID, obj, tsMS)
	return ev, nil
}

// fields reads typed values out of one decoded object, keeping the first
// error.
type fields struct {
	m     map[string]json.RawMessage
	event string
	win   window        // where times must lie
	skew  time.Duration // how far an object time may lie after event_ts
	err   *ParseError
}

func (f *fields) fail(key, reason string) {
	if f.err == nil {
		f.err = &ParseError{Event: f.event, Field: "payload.object." + key, Reason: reason, Class: reasonClasses[reason]}
	}
}

// str returns an optional field as a string: a JSON string, or the literal
// text of a number or boolean. It is "" when the field is absent, null, or of
// another type (an object or array): an optional field never fails the event.
func (f *fields) str(key string) string {
	s, _ := scalarString(f.m[key])
	return s
}

// req returns a required field as a string: absent or null is "missing", an
// object or array "not a string", "" "empty".
func (f *fields) req(key string) string {
	v, present := f.m[key]
	if !present || isNull(v) {
		f.fail(key, reasonMissing)
		return ""
	}
	s, ok := scalarString(v)
	switch {
	case !ok:
		f.fail(key, reasonNotString)
	case s == "":
		f.fail(key, reasonEmpty)
	}
	return s
}

// integer returns an optional field as an int: a JSON integer or a string of
// digits. Anything else, absent included, is 0.
func (f *fields) integer(key string) int {
	v := f.m[key]
	if n, ok := jsonInt(v); ok && n == int64(int(n)) {
		return int(n)
	}
	if s, ok := jsonString(v); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n
		}
	}
	return 0
}

// timeField parses key as an RFC 3339 string or epoch milliseconds (a JSON
// number or a string of digits). present is false when absent, null or "".
func (f *fields) timeField(key string) (t time.Time, present bool, ok bool) {
	v, in := f.m[key]
	if !in || isNull(v) {
		return time.Time{}, false, true
	}
	if ms, isInt := jsonInt(v); isInt {
		return time.UnixMilli(ms).UTC(), true, true
	}
	s, isStr := jsonString(v)
	if !isStr {
		return time.Time{}, true, false
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false, true
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true, true
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true, true
	}
	return time.Time{}, true, false
}

// eventTime picks Event.Time. For known events every time field present must
// parse and be plausible; for unknown ones other values are skipped.
func (f *fields) eventTime(strict bool, ts time.Time) time.Time {
	var chosen time.Time
	var chosenKey string
	for _, key := range objectTimeFields {
		t, present, ok := f.timeField(key)
		reason := reasonBadTime
		if ok && present && !f.win.plausible(t) {
			ok, reason = false, reasonImplausibleTime
		}
		if !ok {
			if strict {
				f.fail(key, reason)
				return ts
			}
			continue
		}
		if present && chosen.IsZero() && key != "created_time_ms" {
			chosen, chosenKey = t, key
		}
	}
	if chosen.IsZero() {
		return ts
	}
	// The event claims to have been sent before it happened: one of the two
	// times is wrong, and nothing says which (the recording would start or
	// stop at a time the event itself contradicts).
	if strict && chosen.After(ts.Add(f.skew)) {
		f.fail(chosenKey, reasonContradictory)
		return ts
	}
	return chosen
}

func (f *fields) engagement(needUser bool) *Engagement {
	e := &Engagement{EngagementID: f.req("engagement_id")}
	if needUser {
		e.UserID = f.req("user_id")
	} else {
		e.UserID = f.str("user_id")
	}
	e.Direction = f.str("engagement_direction")
	e.Channel = f.str("channel")
	e.ChannelSource = f.str("channel_source")
	e.FlowID = f.str("flow_id")
	e.FlowName = f.str("flow_name")
	e.FlowNumber = f.str("flow_number")
	e.QueueID = f.str("cc_queue_id")
	e.QueueName = f.str("queue_name")
	e.ConsumerID = f.str("consumer_id")
	e.ConsumerNumber = f.str("consumer_number")
	e.ConsumerDisplayName = f.str("consumer_display_name")
	e.UserDisplayName = f.str("user_display_name")
	e.TaskID = f.str("task_id")
	e.TransferToUserID = f.str("transfer_to_user_id")
	e.TransferToUserDisplayName = f.str("transfer_to_user_display_name")
	e.TransferToQueueID = f.str("transfer_to_cc_queue_id")
	e.TransferToQueueName = f.str("transfer_to_queue_name")
	e.TransferToTaskID = f.str("transfer_to_task_id")
	e.TransferType = f.str("transfer_type")
	e.TransferLevel = f.str("transfer_level")
	return e
}

func (f *fields) task() *Task {
	return &Task{
		TaskID:       f.req("task_id"),
		EngagementID: f.str("engagement_id"),
		FlowID:       f.str("flow_id"),
		FlowName:     f.str("flow_name"),
		Status:       f.str("task_status"),
		Priority:     f.integer("task_priority"),
		QueueID:      f.str("cc_queue_id"),
		QueueName:    f.str("queue_name"),
		ChannelID:    f.str("channel_id"),
		ChannelName:  f.str("channel_name"),
		CallerNumber: f.str("caller_number"),
		CalleeNumber: f.str("callee_number"),
	}
}

func (f *fields) reservation() *Reservation {
	return &Reservation{
		ReservationID:  f.req("task_reservation_id"),
		TaskID:         f.str("task_id"),
		AssignedUserID: f.str("assigned_user_id"),
		EngagementID:   f.str("engagement_id"),
		QueueID:        f.str("cc_queue_id"),
		QueueName:      f.str("queue_name"),
		FlowID:         f.str("flow_id"),
		FlowName:       f.str("flow_name"),
		Channel:        f.str("channel"),
		ChannelSource:  f.str("channel_source"),
		Direction:      f.str("engagement_direction"),
		CallerNumber:   f.str("caller_number"),
		CalleeNumber:   f.str("callee_number"),
	}
}

func (f *fields) agent() *Agent {
	return &Agent{
		UserID:                f.req("user_id"),
		DisplayName:           f.str("display_name"),
		Email:                 f.str("user_email"),
		CurrentStatusID:       f.str("current_status_id"),
		CurrentStatusName:     f.str("current_status_name"),
		CurrentSubStatusID:    f.str("current_sub_status_id"),
		CurrentSubStatusName:  f.str("current_sub_status_name"),
		PreviousStatusID:      f.str("previous_status_id"),
		PreviousStatusName:    f.str("previous_status_name"),
		PreviousSubStatusID:   f.str("previous_sub_status_id"),
		PreviousSubStatusName: f.str("previous_sub_status_name"),
	}
}

func (f *fields) user() *UserActivity {
	return &UserActivity{
		ID:             f.req("id"),
		Email:          f.str("email"),
		PresenceStatus: f.str("presence_status"),
		ClientType:     f.str("client_type"),
		Version:        f.str("version"),
		LoginType:      f.str("login_type"),
	}
}
