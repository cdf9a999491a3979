// Package traffic is the traffic model of the simulated Zoom Contact Center: agents who log
// in, inbound calls arriving at Poisson times into a FIFO queue, outbound calls, holds, warm
// transfers, hang-ups and wrap-up. It emits each call's Zoom events in real time through an
// Emitter and keeps the ground truth (Truth) of the recording segments those events imply,
// following the recording rules of DESIGN.md §5.
//
// Determinism: the same Config (Seed included) gives the same agents, IDs, arrival schedule
// and per-call stories (talk time, hold, transfer, who ends the call), because each call's
// story comes from a random stream derived from (Seed, call index). Which agent takes which
// call, whether a planned transfer finds a free agent, and whether an outbound arrival finds
// one depend on timing and are not reproducible.
//
// What it does not do or guarantee:
//   - It does not model rejected or timed-out reservations, rejected/canceled/timed-out
//     transfers, agent status changes during calls, or logouts; only the events of the stories
//     listed below.
//   - Event times are wall-clock times at millisecond resolution, forced strictly increasing
//     within an engagement; a burst of events may carry times a few milliseconds ahead of the
//     wall clock.
//   - It never reorders, delays, duplicates or drops events: fault injection belongs to the
//     server that owns the subscriptions.
//   - Truth marks a segment Undelivered from the Emitter's return value only; it cannot know
//     whether a delivered event was later lost.
//
// The call stories, in emit order (all names with the "contact_center." prefix):
//
//	inbound:   engagement_started, task_created, (queue wait) task_reservation_created,
//	           task_reservation_accepted, task_updated, engagement_user_answered [start],
//	           talk with optional engagement_user_hold [pause] / engagement_user_unhold [resume],
//	           optional warm transfer: engagement_transfer_initiated, _queued, _reserved,
//	           _accepted, engagement_user_answered (new agent) [start],
//	           engagement_transfer_completed, engagement_user_ended (old agent) [stop],
//	           engagement_wrap_up_started (old agent) ... later engagement_wrap_up_ended,
//	           task_completed, task_reservation_completed of the original task;
//	           end: [engagement_user_ended [stop]] engagement_consumer_ended [stop all open],
//	           engagement_ended, engagement_wrap_up_started, engagement_wrap_up_ended,
//	           task_completed, task_reservation_completed (the agent is then free).
//	abandoned: engagement_started, task_created, engagement_consumer_ended (no user_id),
//	           engagement_ended, task_canceled.
//	outbound:  engagement_started, engagement_consumer_notified,
//	           engagement_consumer_answered [start], talk with optional hold,
//	           engagement_user_ended [stop], engagement_consumer_ended, engagement_ended,
//	           engagement_wrap_up_started, engagement_wrap_up_ended.
//
// Drain cuts every story short: queued callers abandon, connected calls end with
// engagement_consumer_ended and engagement_ended (a held call without unhold) and wrap up at
// once.
//
// It is test support: production code never imports it. Like every sim
// package, it imports of this module only the wire vocabulary (events, auth,
// rcapi), other sim packages and the leaves redact and wait; never the
// node's or the cluster's packages. internal/archtest checks both.
package traffic
