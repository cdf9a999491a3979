// Package events is Zoom Contact Center's vocabulary as the adapter sees it,
// and the client of one event-subscription WebSocket.
//
// Its parts, one concern per file:
//
//   - events.go: [Parse] turns one event JSON (the envelope of PROTOCOL.md §3)
//     into an [Event] with typed views ([Engagement], [Task], [Reservation],
//     [Agent], [UserActivity]), its dedup key ([Event.Key]) and precise
//     [*ParseError]s; limits.go bounds what it accepts ([Limits]: plausible
//     and consistent times, nesting), shape.go checks depth and UTF-8 before
//     decoding, jsonvalue.go reads raw JSON values, parseerror.go holds
//     [ParseError] with its bounded metric labels.
//   - names.go: the event names Zoom sends ([KnownNames], [IsKnown]); an
//     unknown name still parses, with [Event.Known] false.
//   - dedup.go: [DedupKey], the key under which the two subscriptions' copies
//     of one event are recognised as the same event (PROTOCOL.md §1, DESIGN §4):
//     a hash of the event's name, its account and the canonical JSON of
//     payload.object without volatile fields (event_ts only when the object
//     has no time of its own), never of the raw bytes or the arrival time.
//   - frame.go: the WebSocket frame kinds of PROTOCOL.md §1 ([Frame],
//     [ParseFrame], [HeartbeatFrame]).
//   - signature.go: the x-zm-signature of a message frame ([Signature],
//     [VerifySignature]).
//   - client.go: [Client], which dials one subscription URL with a fresh token
//     in the query string, sends heartbeats, watches liveness, reconnects with
//     backoff, and hands each parsed event to the deliver function passed to
//     its Run, on its read goroutine, in arrival order; read.go reads and
//     dispatches frames (oversize frames dropped without closing the
//     socket), conns.go tracks the raw connections for a bounded close,
//     clientstatus.go keeps [ClientStatus] (socket gaps included),
//     clientlog.go limits repeated log lines.
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
//   - Authenticity, unless asked. Only with ClientConfig.SecretToken set does
//     the client verify each message frame's x-zm-signature (and drop and count
//     a mismatch); without it, frames are taken as they come.
//
// Nothing in this package logs or returns an access token or a subscription URL
// carrying one: errors, log lines and [ClientStatus.LastError] pass through
// package redact.
//
// It imports nothing of this module but auth (the [auth.TokenSource] of each
// dial) and the leaves redact and wait: never cluster, adapter, config or
// rcapi, and nothing of etcd (internal/archtest checks this).
package events
