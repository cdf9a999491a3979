package protocol

import (
	"encoding/json"
	"time"
)

// Settings are the facts of the cluster's configuration that a node acts on,
// with defaults applied.
type Settings struct {
	// Node is this node's id, unique in the cluster (e.g. "a").
	Node string
	// SessionTTL is the lease TTL of a node's session, whole seconds: a
	// crashed leader is replaced after at most this long.
	SessionTTL time.Duration
	// DedupWindow is how long the cluster remembers an applied event's dedup
	// key and a closed engagement's state record (etcd forgets them by
	// lease, between 3/4 and 1 window after they were written).
	DedupWindow time.Duration
}

// Member is what a node registers under members/<node> for the life of its
// session. Two live members with one Subscription is a configuration error.
type Member struct {
	// Node is the node's id; Campaign sets it.
	Node string `json:"node"`
	// Subscription is the id of the node's Zoom event subscription.
	Subscription string `json:"subscription"`
	// Version is the node's build version.
	Version string `json:"version"`
	// Address is where the node serves its status (host:port).
	Address string `json:"address"`
	// Since is when the node registered (UTC); Campaign sets it when zero.
	Since time.Time `json:"since"`
}

// Health is what a node publishes about its own subscription socket under
// health/<node>, so the leader can tell whether a standby could do better
// (DESIGN §4; case C-05: a leader whose socket is dead hands over to a
// standby whose socket is healthy).
type Health struct {
	// Node is the publishing node; HealthPublisher.Publish sets it.
	Node string `json:"node"`
	// SocketUp reports whether the node's subscription socket is up.
	SocketUp bool `json:"socket_up"`
	// At is when the node observed it.
	At time.Time `json:"at"`
}

// Snapshot is the cluster's recording state read at one revision: what a
// newly elected leader starts from (DESIGN §4, promotion).
type Snapshot struct {
	// Revision is the etcd revision of the read; WatchHandoffs from it
	// misses nothing written after it.
	Revision int64
	// Applied holds the dedup keys of every applied event in the window.
	Applied map[string]struct{}
	// States maps engagement id to its state record (JSON, owned by the
	// adapter).
	States map[string][]byte
	// Handoffs is the queue of events owed to the log, keyed by dedup
	// key: events handed over by standbys, and events a leader holds back
	// or waits with (it queues them itself so that they outlive it). A new
	// leader applies them; none is in Applied for long (an applied event's
	// entry is deleted in the txn that logs it).
	Handoffs map[string][]byte
	// DeadLetters maps engagement id to its dead-letter entry (a
	// DeadLetter, JSON): engagements whose command the recorder kept
	// refusing while it took others. A new leader keeps them blocked.
	DeadLetters map[string][]byte
}

// Handoff is one event handed to the leader through the handoff queue.
type Handoff struct {
	// Key is the event's dedup key.
	Key string
	// Raw is the event as its node received it.
	Raw []byte
}

// Batch is what one leader write logs (Term.CommitBatch): the state records
// of the engagements it changed, the dedup keys of the events it applied,
// and its changes to the handoff queue. The cluster writes them in that
// order: state records, dedup keys, queue deletions, queue entries.
//
// The dead-letter puts go after the dedup keys and before the queue
// deletions (an event moved from the queue into an entry is never in
// neither), the dead-letter deletions last.
//
// etcd refuses a transaction that puts one key twice or deletes a key it
// puts ("duplicate key given in txn request", rpctypes.ErrDuplicateKey), so
// a key may not be both in Unqueue and in Queue, nor twice in Applied.
type Batch struct {
	// States holds state records by engagement id.
	States map[string]StateRecord
	// Applied holds the dedup keys of the events applied, in the order they
	// were applied. Each is written under the dedup lease, so the cluster
	// forgets it after the dedup window.
	Applied []string
	// Unqueue holds handoff-queue keys (dedup keys) to delete: entries of
	// events now applied, or no longer held.
	Unqueue []string
	// Queue holds handoff-queue entries to put, the raw event by dedup key:
	// events the leader holds back or waits with, queued so that they
	// outlive it. They are written under the dedup lease, so an entry that
	// no leader takes is forgotten after the dedup window.
	Queue map[string][]byte
	// DeadLetters holds dead-letter entries to put (a DeadLetter, JSON), by
	// engagement id. They have no lease: an entry stays until an operator
	// retries or drops it (cluster.RetryDeadLetter, DropDeadLetter).
	DeadLetters map[string][]byte
	// ClearDeadLetters holds engagement ids whose dead-letter entry to
	// delete (one an operator retried or dropped, which a put of this
	// leader may have written again). An id may not also be in DeadLetters.
	ClearDeadLetters []string
	// Observe, when not nil, is called after each transaction that
	// committed, with its latency (from sending it to its reply), on the
	// goroutine of CommitBatch, before the next transaction is sent. It is
	// not called for a transaction that failed.
	Observe func(took time.Duration)
}

// StateRecord is one engagement's state record in a Batch.
type StateRecord struct {
	// JSON is the record as stored: the adapter's encoding, opaque to the
	// cluster.
	JSON []byte
	// Closed marks a closed engagement: its record is written under the
	// dedup lease, so the cluster forgets it after the dedup window. An
	// open engagement's record has no lease and stays until overwritten.
	Closed bool
}

// Sources of a QuarantineEntry: where the input came from.
const (
	// QuarantineSocket: an event from a node's subscription socket that
	// did not parse or is implausible.
	QuarantineSocket = "socket"
	// QuarantineHandoff: a handoff-queue entry that did not parse, or an
	// event whose application failed through its own fault.
	QuarantineHandoff = "handoff"
	// QuarantineState: a state record that did not decode at promotion.
	QuarantineState = "state"
)

// Bounds of a QuarantineEntry as stored.
const (
	// MaxQuarantineRaw is the most bytes of Raw kept.
	MaxQuarantineRaw = 64 << 10
	// MaxQuarantineReason is the most bytes of Reason kept.
	MaxQuarantineReason = 512
)

// QuarantineEntry is one input put aside so that it never reaches the
// rules: a malformed or implausible event, an unreadable handoff entry or
// state record. It carries no secret: Reason is the parser's or decoder's
// error text (which names fields, never their values) and Raw is the input
// as received (an event or a record, never a credential).
type QuarantineEntry struct {
	// ID is the entry's key under quarantine/: its time, node and a random
	// suffix, so that ids sort by time. Set by Quarantine.
	ID string `json:"id,omitempty"`
	// At is when the node put it aside (UTC); Quarantine sets it when zero.
	At time.Time `json:"at"`
	// Node is the node that put it aside; Quarantine sets it when empty.
	Node string `json:"node"`
	// Source is where it came from: QuarantineSocket, QuarantineHandoff or
	// QuarantineState.
	Source string `json:"source"`
	// Key is the handoff key or engagement id it was stored under, when
	// there was one.
	Key string `json:"key,omitempty"`
	// Reason says why, e.g. the ParseError text.
	Reason string `json:"reason"`
	// Raw is the input, cut to MaxQuarantineRaw bytes.
	Raw []byte `json:"raw,omitempty"`
	// Truncated reports that Raw was cut.
	Truncated bool `json:"truncated,omitempty"`
}

// Bounds of a DeadLetter: past them an engagement's later events stay in
// the handoff queue (durable, held by the leader, counted in Overflow), so
// one entry stays well within one etcd transaction.
const (
	// MaxDeadLetterEvents is the most events one entry carries (a retry
	// puts them back in the queue in one txn, within etcd's 128 ops).
	MaxDeadLetterEvents = 100
	// MaxDeadLetterBytes bounds the raw events of one entry; the first
	// event (the one whose command was refused) is carried whatever its size.
	MaxDeadLetterBytes = 512 << 10
	// MaxDeadLetterReason bounds Reason, in bytes.
	MaxDeadLetterReason = 1024
)

// DeadLetter is one engagement's dead-letter entry, stored as JSON under
// <root>deadletter/<engagement> (DESIGN §4 "Dead letters"): a command of
// the engagement that the recorder kept refusing (after bounded attempts)
// while it answered other requests, with the engagement's later events
// behind it, in order. The leader applies none of them until an operator
// retries the entry (the events go back to the handoff queue) or drops it
// (they are abandoned).
type DeadLetter struct {
	// Engagement is the engagement id.
	Engagement string `json:"engagement"`
	// Reason says why the command was parked: the recorder's last answer
	// (HTTP status and the start of its body, redacted and truncated to
	// MaxDeadLetterReason) and the command (action, segment, id).
	Reason string `json:"reason"`
	// Status is the HTTP status of the recorder's last answer; 0 when it
	// was not an HTTP error (an unreadable 200, a transport error).
	Status int `json:"status,omitempty"`
	// FirstFailed is when the first attempt at the command failed (UTC).
	FirstFailed time.Time `json:"first_failed"`
	// Attempts counts the attempts made at the command.
	Attempts int `json:"attempts"`
	// Events are the raw events held, in the order they are to be applied:
	// the one whose command failed first.
	Events []json.RawMessage `json:"events"`
	// Keys are the dedup keys of Events, in the same order.
	Keys []string `json:"keys"`
	// Overflow counts the later events of the engagement past the bounds
	// (MaxDeadLetterEvents, MaxDeadLetterBytes): they wait in the handoff
	// queue, held by the leader, and are applied after Events on a retry.
	Overflow int `json:"overflow,omitempty"`
}
