package protocol

import "time"

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
