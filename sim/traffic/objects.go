package traffic

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Event names the model emits, exactly as Zoom spells them.
const (
	evUserSignedIn      = "user.signed_in"
	evPresenceUpdated   = "user.presence_status_updated"
	evUserLogin         = "contact_center.user_login"
	evUserStatusChanged = "contact_center.user_status_changed"

	evEngagementStarted    = "contact_center.engagement_started"
	evEngagementEnded      = "contact_center.engagement_ended"
	evConsumerNotified     = "contact_center.engagement_consumer_notified"
	evConsumerAnswered     = "contact_center.engagement_consumer_answered"
	evConsumerEnded        = "contact_center.engagement_consumer_ended"
	evUserAnswered         = "contact_center.engagement_user_answered"
	evUserEnded            = "contact_center.engagement_user_ended"
	evUserHold             = "contact_center.engagement_user_hold"
	evUserUnhold           = "contact_center.engagement_user_unhold"
	evWrapUpStarted        = "contact_center.engagement_wrap_up_started"
	evWrapUpEnded          = "contact_center.engagement_wrap_up_ended"
	evTransferInitiated    = "contact_center.engagement_transfer_initiated"
	evTransferQueued       = "contact_center.engagement_transfer_queued"
	evTransferReserved     = "contact_center.engagement_transfer_reserved"
	evTransferAccepted     = "contact_center.engagement_transfer_accepted"
	evTransferCompleted    = "contact_center.engagement_transfer_completed"
	evTaskCreated          = "contact_center.task_created"
	evTaskUpdated          = "contact_center.task_updated"
	evTaskCompleted        = "contact_center.task_completed"
	evTaskCanceled         = "contact_center.task_canceled"
	evReservationCreated   = "contact_center.task_reservation_created"
	evReservationAccepted  = "contact_center.task_reservation_accepted"
	evReservationCompleted = "contact_center.task_reservation_completed"
)

const (
	msLayout      = "2006-01-02T15:04:05.000Z" // date_time_ms and the *_time_ms fields
	secondsLayout = "2006-01-02T15:04:05Z"     // user.* date_time
)

func fmtMS(t time.Time) string  { return t.UTC().Format(msLayout) }
func fmtSec(t time.Time) string { return t.UTC().Format(secondsLayout) }

// Fixed attributes of the simulated contact center.
const (
	channel        = "voice"
	channelSource  = "phone"
	channelID      = "ch-voice-01"
	taskPriority   = 3
	inboundNumber  = "+15550100200"
	outboundNumber = "+15550100300"
	clientType     = "win"
	clientVersion  = "6.2.5.41234"
	loginType      = 100
)

// queue is a contact-center queue; the flow is the one that feeds it.
type queue struct {
	id, name string
}

// flow is a contact-center flow.
type flow struct {
	id, name, number string
}

// Agent describes one simulated agent, as returned by Model.Agents.
type Agent struct {
	// UserID is the agent's Zoom user id ("usr-…"), stable per (Seed, agent index).
	UserID string `json:"user_id"`
	// DisplayName is the agent's display name.
	DisplayName string `json:"display_name"`
	// Email is the agent's email address, unique per agent.
	Email string `json:"email"`
	// Status is "offline" before Run logs the agent in, then "ready" or "busy" (on a call
	// or in wrap-up).
	Status string `json:"status"`
}

// agent is the immutable identity of one agent.
type agent struct {
	index           int
	id, name, email string
}

var (
	firstNames = []string{"Ava", "Bo", "Chen", "Dara", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jae",
		"Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
		"Wen", "Ximena", "Yusuf", "Zoe"}
	lastNames = []string{"Lindqvist", "Okafor", "Nakamura", "Silva", "Novak", "Haddad", "Petrov", "Kim",
		"Moreau", "Osei", "Garcia", "Jensen", "Rossi", "Mbeki", "Tanaka", "Kowalski", "Ibrahim", "Larsen"}
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// seededID returns prefix + a base62 string of n characters derived from (seed, kind, index)
// only, so the same seed names the same things.
func seededID(seed int64, kind string, index int, prefix string, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%d", seed, kind, index))
	var b strings.Builder
	b.Grow(len(prefix) + n)
	b.WriteString(prefix)
	for i := range n {
		b.WriteByte(base62[int(sum[i])%len(base62)])
	}
	return b.String()
}

// seededInt returns a non-negative int derived from (seed, kind, index).
func seededInt(seed int64, kind string, index int) int {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%d", seed, kind, index))
	return int(binary.BigEndian.Uint32(sum[:4]) >> 1)
}

func newAgent(seed int64, i int) agent {
	first := firstNames[seededInt(seed, "first", i)%len(firstNames)]
	last := lastNames[seededInt(seed, "last", i)%len(lastNames)]
	return agent{
		index: i,
		id:    seededID(seed, "user", i, "usr-", 10),
		name:  first + " " + last,
		email: fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), i),
	}
}

// site holds the queues and flows of the simulated contact center; derived from the seed.
type site struct {
	inboundFlow, outboundFlow flow
	inboundQueues             []queue // a call's queue; a transfer goes to another one
	outboundQueue             queue
}

func newSite(seed int64) site {
	return site{
		inboundFlow:  flow{id: seededID(seed, "flow", 0, "flow-", 8), name: "Support Inbound", number: inboundNumber},
		outboundFlow: flow{id: seededID(seed, "flow", 1, "flow-", 8), name: "Sales Outbound", number: outboundNumber},
		inboundQueues: []queue{
			{id: seededID(seed, "queue", 0, "q-", 8), name: "Tier 1 Support"},
			{id: seededID(seed, "queue", 1, "q-", 8), name: "Billing"},
			{id: seededID(seed, "queue", 2, "q-", 8), name: "Tier 2 Support"},
		},
		outboundQueue: queue{id: seededID(seed, "queue", 3, "q-", 8), name: "Outbound Sales"},
	}
}

// task is one Contact Center task (the original one of an inbound call, or the
// transfer's) with the reservation that assigned it.
type task struct {
	id            string
	queue         queue
	created       time.Time
	reservationID string
	reserved      time.Time // reservation created
	agent         *agent    // assigned agent; nil while pending
}

// The object builders below produce exactly the key sets of the samples in
// shared/zoom/events (one fresh map per event: the emitter may keep it).

func (c *call) direction() string {
	if c.plan.Outbound {
		return "outbound"
	}
	return "inbound"
}

// queueOf returns the queue of agent a's leg: the transfer's queue for the agent who took
// the transfer, else the call's queue.
func (c *call) queueOf(a *agent) queue {
	switch {
	case c.plan.Outbound:
		return c.m.site.outboundQueue
	case c.xfer != nil && a != nil && a == c.xfer.agent:
		return c.xfer.queue
	default:
		return c.task.queue
	}
}

// engagementObject: engagement_started and engagement_ended (no agent, no consumer).
func (c *call) engagementObject(at time.Time) map[string]any {
	return map[string]any{
		"engagement_id":        c.engagementID,
		"engagement_direction": c.direction(),
		"channel":              channel,
		"channel_source":       channelSource,
		"flow_id":              c.flow.id,
		"flow_name":            c.flow.name,
		"date_time_ms":         fmtMS(at),
	}
}

// legObject: user_answered, user_ended, hold, unhold, consumer_answered, consumer_ended,
// wrap_up_started, wrap_up_ended. A nil agent leaves out user_id and user_display_name
// (a caller who abandoned in the queue never met an agent).
func (c *call) legObject(at time.Time, a *agent) map[string]any {
	q := c.queueOf(a)
	o := map[string]any{
		"engagement_id":         c.engagementID,
		"engagement_direction":  c.direction(),
		"channel":               channel,
		"date_time_ms":          fmtMS(at),
		"flow_id":               c.flow.id,
		"flow_name":             c.flow.name,
		"flow_number":           c.flow.number,
		"cc_queue_id":           q.id,
		"queue_name":            q.name,
		"consumer_id":           c.consumerID,
		"consumer_display_name": c.consumerName,
		"consumer_number":       c.consumerNumber,
	}
	if a != nil {
		o["user_id"] = a.id
		o["user_display_name"] = a.name
	}
	return o
}

// notifiedObject: consumer_notified (outbound dialing).
func (c *call) notifiedObject(at time.Time, a *agent) map[string]any {
	o := c.legObject(at, a)
	o["consumer_invite_number"] = c.consumerNumber
	o["consumer_invite_email"] = ""
	return o
}

// transferObject: engagement_transfer_initiated, _queued, _reserved, _accepted, _completed.
func (c *call) transferObject(at time.Time, from, to *agent, taskStatus, toTaskStatus string) map[string]any {
	return map[string]any{
		"task_id":                       c.task.id,
		"transfer_to_task_id":           c.xfer.id,
		"task_status":                   taskStatus,
		"transfer_to_task_status":       toTaskStatus,
		"task_timeout":                  c.m.taskTimeout,
		"transfer_to_task_timeout":      c.m.taskTimeout,
		"transfer_level":                "queue",
		"transfer_type":                 "warm",
		"engagement_id":                 c.engagementID,
		"engagement_direction":          c.direction(),
		"channel":                       channel,
		"flow_id":                       c.flow.id,
		"flow_name":                     c.flow.name,
		"flow_number":                   c.flow.number,
		"cc_queue_id":                   c.task.queue.id,
		"queue_name":                    c.task.queue.name,
		"transfer_to_cc_queue_id":       c.xfer.queue.id,
		"transfer_to_queue_name":        c.xfer.queue.name,
		"user_id":                       from.id,
		"user_display_name":             from.name,
		"transfer_to_user_id":           to.id,
		"transfer_to_user_display_name": to.name,
		"consumer_id":                   c.consumerID,
		"consumer_display_name":         c.consumerName,
		"consumer_number":               c.consumerNumber,
		"date_time_ms":                  fmtMS(at),
	}
}

// taskObject: task_created, task_updated, task_completed, task_canceled.
func (c *call) taskObject(at time.Time, t *task, status string) map[string]any {
	return map[string]any{
		"task_id":               t.id,
		"engagement_id":         c.engagementID,
		"flow_id":               c.flow.id,
		"flow_name":             c.flow.name,
		"task_status":           status,
		"channel_id":            channelID,
		"channel_name":          channel,
		"task_priority":         taskPriority,
		"cc_queue_id":           t.queue.id,
		"queue_name":            t.queue.name,
		"created_time_ms":       fmtMS(t.created),
		"last_modified_time_ms": fmtMS(at),
		"auto_assign":           true,
		"task_timeout":          c.m.taskTimeout,
		"caller_number":         c.consumerNumber,
		"callee_number":         c.flow.number,
	}
}

// reservationObject: task_reservation_created, _accepted, _completed.
func (c *call) reservationObject(at time.Time, t *task) map[string]any {
	return map[string]any{
		"task_reservation_id":   t.reservationID,
		"task_id":               t.id,
		"assigned_user_id":      t.agent.id,
		"flow_id":               c.flow.id,
		"flow_name":             c.flow.name,
		"channel":               channel,
		"channel_source":        channelSource,
		"cc_queue_id":           t.queue.id,
		"queue_name":            t.queue.name,
		"created_time_ms":       fmtMS(t.reserved),
		"last_modified_time_ms": fmtMS(at),
		"engagement_id":         c.engagementID,
		"auto_assign":           true,
		"task_timeout":          c.m.taskTimeout,
		"caller_number":         c.consumerNumber,
		"callee_number":         c.flow.number,
		"engagement_direction":  c.direction(),
	}
}

// Agent roster objects (emitted by Run when it logs the agents in).

func signedInObject(at time.Time, a *agent) map[string]any {
	return map[string]any{
		"id":          a.id,
		"client_type": clientType,
		"date_time":   fmtSec(at),
		"email":       a.email,
		"version":     clientVersion,
		"login_type":  loginType,
	}
}

func userLoginObject(at time.Time, a *agent) map[string]any {
	return map[string]any{
		"user_id":      a.id,
		"display_name": a.name,
		"user_email":   a.email,
		"date_time_ms": fmtMS(at),
	}
}

func statusReadyObject(at time.Time, a *agent) map[string]any {
	return map[string]any{
		"user_id":                  a.id,
		"display_name":             a.name,
		"user_email":               a.email,
		"date_time_ms":             fmtMS(at),
		"previous_status_id":       "2",
		"previous_status_name":     "Not Ready",
		"previous_sub_status_id":   "",
		"previous_sub_status_name": "",
		"current_status_id":        "1",
		"current_status_name":      "Ready",
		"current_sub_status_id":    "",
		"current_sub_status_name":  "",
	}
}

func presenceAvailableObject(at time.Time, a *agent) map[string]any {
	return map[string]any{
		"id":              a.id,
		"email":           a.email,
		"date_time":       fmtSec(at),
		"presence_status": "Available",
		"app": map[string]any{
			"type":            "desktop",
			"presence_status": "Available",
		},
	}
}
