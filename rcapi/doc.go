// Package rcapi is the Recording Control API v1: the contract between the
// adapter (the leader node) and a recorder (DESIGN §6). It holds the wire
// types and [Client], the one client of the API, which the adapter's
// recorder sink, doctor and the drill use; the reference recorder of package
// sim/recorder serves it.
//
// The normative spec is SPEC.md in this directory: every endpoint and body,
// every reply and what the sender must do on it, and the durability every
// recorder must keep (the epoch fence across restarts, command ids for at
// least 24 h).
//
// Endpoints (all JSON):
//
//	POST /v1/commands            Command      -> 200 Result{applied|duplicate}, 409 Error{stale_epoch}, 422 Error{invalid_transition}, 400 Error
//	POST /v1/agents              AgentUpdate  -> as /v1/commands (no transitions)
//	POST /v1/epoch               EpochClaim   -> 200 Result{applied|duplicate}, 409 Error{stale_epoch}
//	GET  /v1/recordings?state=open            -> 200 OpenRecordings
//	GET  /v1/ledger                           -> 200 Ledger (reference recorder only)
//
// The recorder treats a repeated command id as a no-op (G2) and rejects any
// message whose epoch is lower than the highest it has seen (G3), keeping
// both across restarts. 5xx replies and timeouts are retried by the sender
// with the same id; a 422 on a stop is an alert, not "applied"; a reply
// missing a required field or carrying an unknown result is an error.
//
// POST /v1/epoch is this project's addition to DESIGN §6: a newly promoted
// leader announces its epoch before it sends commands, so the recorder's fence
// rises at once instead of at the first command, and drills can time the
// takeover from the recorder's side.
//
// What this package does not guarantee: G2 and G3 hold only as long as the
// recorder keeps its side of the contract. A recorder that forgets the ids it
// applied, or its epoch fence (across a restart, say), applies a repeated
// command again or accepts a deposed leader; nothing on the sender's side can
// tell.
//
// It is a leaf: it imports nothing of this module but the leaves redact and
// wait (internal/archtest checks this).
package rcapi
