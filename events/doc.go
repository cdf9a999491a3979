// Package events is Zoom Contact Center's vocabulary as the adapter sees it,
// and the client of one event-subscription WebSocket.
//
// It has four parts, one file each:
//
//   - events.go: [Parse] turns one event JSON (the envelope of PROTOCOL.md §3)
//     into an [Event] with typed views ([Engagement], [Task], [Reservation],
//     [Agent], [UserActivity]) and precise [*ParseError]s.
//   - dedup.go: [DedupKey], the key under which the two subscriptions' copies
//     of one event are recognised as the same event (PROTOCOL.md §1, DESIGN §4).
//   - frame.go: the WebSocket frame kinds of PROTOCOL.md §1 ([Frame],
//     [ParseFrame], [HeartbeatFrame]).
//   - client.go: [Client], which dials one subscription URL with a token in the
//     query string, sends heartbeats, watches liveness, reconnects with backoff
//     and hands each parsed event to a callback.
//
// What this package does not guarantee:
//
//   - Delivery. Zoom keeps nothing for a closed socket (PROTOCOL.md §1); events
//     sent while a [Client] is reconnecting are gone. Covering that gap is the
//     job of the second subscription and the cluster's handoff.
//   - Uniqueness. A [Client] hands over every event it reads, duplicates
//     included; callers deduplicate with [Event.Key].
//   - Order across subscriptions or relative to when events happened. One
//     [Client] delivers events in arrival order; Zoom may send them late or out
//     of order.
//   - Authenticity. The message frames' x-zm-signature header is not verified.
//
// Nothing in this package logs or returns an access token or a subscription URL
// carrying one: errors, log lines and [ClientStatus.LastError] pass through
// package redact.
package events
