package events

import "strings"

// Event names Zoom sends (PROTOCOL.md §3). The first 36 are the events of the
// seed's subscriptions, each with a sample in testdata/samples; the rest are
// documented by Zoom but not subscribed, and parse without error.
const (
	// User activity (Zoom Workplace users, not Contact Center agents).
	UserSignedIn              = "user.signed_in"
	UserSignedOut             = "user.signed_out"
	UserPresenceStatusUpdated = "user.presence_status_updated"

	// Tasks: a unit of routed work, one per engagement leg offered to a queue.
	TaskCreated   = "contact_center.task_created"
	TaskCompleted = "contact_center.task_completed"
	TaskCanceled  = "contact_center.task_canceled"
	TaskUpdated   = "contact_center.task_updated"
	TaskDeleted   = "contact_center.task_deleted"

	// Task reservations: a task offered to one agent.
	TaskReservationCreated   = "contact_center.task_reservation_created"
	TaskReservationAccepted  = "contact_center.task_reservation_accepted"
	TaskReservationCanceled  = "contact_center.task_reservation_canceled"
	TaskReservationTimeout   = "contact_center.task_reservation_timeout"
	TaskReservationCompleted = "contact_center.task_reservation_completed"
	TaskReservationRejected  = "contact_center.task_reservation_rejected"

	// Contact Center agents.
	UserLogin         = "contact_center.user_login"
	UserLogout        = "contact_center.user_logout"
	UserStatusChanged = "contact_center.user_status_changed"

	// Engagements: one customer interaction and its agent legs.
	EngagementStarted          = "contact_center.engagement_started"
	EngagementConsumerNotified = "contact_center.engagement_consumer_notified"
	EngagementUserAnswered     = "contact_center.engagement_user_answered"
	EngagementConsumerAnswered = "contact_center.engagement_consumer_answered"
	EngagementUserEnded        = "contact_center.engagement_user_ended"
	EngagementConsumerEnded    = "contact_center.engagement_consumer_ended"
	EngagementUserHold         = "contact_center.engagement_user_hold"
	EngagementUserUnhold       = "contact_center.engagement_user_unhold"
	EngagementWrapUpStarted    = "contact_center.engagement_wrap_up_started"
	EngagementWrapUpEnded      = "contact_center.engagement_wrap_up_ended"
	EngagementEnded            = "contact_center.engagement_ended"

	// Engagement transfers.
	EngagementTransferInitiated = "contact_center.engagement_transfer_initiated"
	EngagementTransferQueued    = "contact_center.engagement_transfer_queued"
	EngagementTransferReserved  = "contact_center.engagement_transfer_reserved"
	EngagementTransferAccepted  = "contact_center.engagement_transfer_accepted"
	EngagementTransferRejected  = "contact_center.engagement_transfer_rejected"
	EngagementTransferCompleted = "contact_center.engagement_transfer_completed"
	EngagementTransferCanceled  = "contact_center.engagement_transfer_canceled"
	EngagementTransferTimeout   = "contact_center.engagement_transfer_timeout"

	// Documented by Zoom, not subscribed by the seed (PROTOCOL.md §3 "Also exist").
	TaskReservationRescinded = "contact_center.task_reservation_rescinded"
	TaskEnteredQueue         = "contact_center.task_entered_queue"
	TaskExitedQueue          = "contact_center.task_exited_queue"
	RecordingStarted         = "contact_center.recording_started"
	RecordingPaused          = "contact_center.recording_paused"
	RecordingResumed         = "contact_center.recording_resumed"
	RecordingStopped         = "contact_center.recording_stopped"
	RecordingCompleted       = "contact_center.recording_completed"
)

// knownNames lists every constant above, in declaration order.
var knownNames = []string{
	UserSignedIn, UserSignedOut, UserPresenceStatusUpdated,
	TaskCreated, TaskCompleted, TaskCanceled, TaskUpdated, TaskDeleted,
	TaskReservationCreated, TaskReservationAccepted, TaskReservationCanceled,
	TaskReservationTimeout, TaskReservationCompleted, TaskReservationRejected,
	UserLogin, UserLogout, UserStatusChanged,
	EngagementStarted, EngagementConsumerNotified, EngagementUserAnswered,
	EngagementConsumerAnswered, EngagementUserEnded, EngagementConsumerEnded,
	EngagementUserHold, EngagementUserUnhold, EngagementWrapUpStarted,
	EngagementWrapUpEnded, EngagementEnded,
	EngagementTransferInitiated, EngagementTransferQueued, EngagementTransferReserved,
	EngagementTransferAccepted, EngagementTransferRejected, EngagementTransferCompleted,
	EngagementTransferCanceled, EngagementTransferTimeout,
	TaskReservationRescinded, TaskEnteredQueue, TaskExitedQueue,
	RecordingStarted, RecordingPaused, RecordingResumed, RecordingStopped, RecordingCompleted,
}

var knownSet = func() map[string]bool {
	m := make(map[string]bool, len(knownNames))
	for _, n := range knownNames {
		m[n] = true
	}
	return m
}()

// KnownNames returns every event name this package knows (the name constants),
// as a new slice the caller may modify.
func KnownNames() []string {
	return append([]string(nil), knownNames...)
}

// IsKnown reports whether name is one of the event name constants. Matching is
// exact (case-sensitive), as Zoom's names are.
func IsKnown(name string) bool { return knownSet[name] }

// group is the typed view a known event name gets.
type group int

const (
	groupNone group = iota
	groupEngagement
	groupTask
	groupReservation
	groupAgent
	groupUser
)

func groupOf(name string) group {
	if !knownSet[name] {
		return groupNone
	}
	switch {
	case strings.HasPrefix(name, "contact_center.engagement_"):
		return groupEngagement
	case strings.HasPrefix(name, "contact_center.task_reservation_"):
		return groupReservation
	case strings.HasPrefix(name, "contact_center.task_"):
		return groupTask
	case name == UserLogin || name == UserLogout || name == UserStatusChanged:
		return groupAgent
	case strings.HasPrefix(name, "user."):
		return groupUser
	}
	return groupNone
}

// needsUserID lists the engagement events that name one agent's leg and so
// must carry user_id.
var needsUserID = map[string]bool{
	EngagementUserAnswered: true,
	EngagementUserEnded:    true,
	EngagementUserHold:     true,
	EngagementUserUnhold:   true,
}
