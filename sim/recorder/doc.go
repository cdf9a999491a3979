// Package recorder is the reference recorder: an in-memory implementation of
// the Recording Control API v1 (package rcapi, DESIGN §6) that tests, drills
// and `zccadapter sim recorder` run against.
//
// It keeps a per-segment state machine, a set of applied message ids (G2), an
// epoch fence (G3) and a ledger of every message it received, accepted or not,
// in arrival order, so that a drill can verify G1–G6 after the fact. Faults
// (FailNext) make it answer with an error status without applying anything, to
// exercise a sender's retries.
//
// Durability: with Options.StateFile (NewWithOptions; `zccadapter sim
// recorder --state FILE`) the fence, the applied ids, the segments and the
// ledger survive a restart, as rcapi/SPEC.md requires of every recorder: an
// append-only journal, each entry fsynced before its reply. Without it (New)
// a new Recorder starts empty.
//
// What it does not do: bound the ledger, the id set or the journal (they
// grow with traffic; the spec's minimum retention is kept by keeping
// everything), or authenticate its callers. It is a test fixture, not a
// production recorder.
//
// # Semantics of POST /v1/commands
//
// Checks run in this order; the first that fails decides the reply:
//
//  0. the state file failed or the recorder was closed → 503
//     state_unavailable (ErrCodeStateUnavailable), not in the ledger;
//  1. an injected fault is pending (FailNext) → that status, nothing applied;
//  2. body over 1 MiB, not JSON, or a required field missing (id, epoch > 0,
//     node, action one of rcapi.Action*, engagement_id, and segment_id unless
//     the action is tag) → 400 malformed;
//  3. epoch lower than the highest seen → 409 stale_epoch with that epoch;
//  4. id already applied → 200 duplicate;
//  5. invalid transition → 422 invalid_transition;
//  6. otherwise → applied.
//
// A message that passes check 3 raises the fence to its epoch even when it is
// then a duplicate or an invalid transition: it proves that a sender with that
// epoch exists, so nothing older may be applied after it.
//
// Segment states: (none) -start-> recording -pause-> paused -resume->
// recording; recording|paused -stop-> stopped. A tag is valid on a recording
// or paused segment, or with an empty segment_id (an engagement-level tag).
// Every other pair is invalid, including start on a stopped segment and any
// command naming a segment under a different engagement_id.
//
// POST /v1/agents follows checks 1–4 (required: id, epoch > 0, node,
// agent_id); there are no transitions. POST /v1/epoch (rcapi.EpochClaim,
// required: epoch > 0, node) answers 409 stale_epoch below the fence, 200
// duplicate at it, and 200 applied above it, raising the fence; it is not
// subject to FailNext.
//
// It is test support: the command serves it as `zccadapter sim recorder`,
// and production code never imports it. Like every sim package, it imports
// of this module only the wire vocabulary (events, auth, rcapi), other sim
// packages and the leaves redact and wait; never the node's or the cluster's
// packages. internal/archtest checks both.
package recorder
