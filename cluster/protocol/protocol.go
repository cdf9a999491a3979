package protocol

import (
	"context"
	"time"

	"github.com/zccadapter/zccadapter/auth"
)

// Cluster is a node's connection to the cluster: election, replicated
// state, handoff, membership and health. Implemented on etcd by package
// cluster (cluster.Cluster.Protocol). Safe for concurrent use.
type Cluster interface {
	// Settings returns the effective timing facts and node id of the
	// cluster's configuration (defaults applied). It does no I/O.
	Settings() Settings

	// Campaign registers m as a member (Node set to this node, Since to now
	// when zero) and blocks until this node is elected leader, returning its
	// Term. Each call uses a new session (a new lease): a new term never
	// reuses the session of an old one.
	//
	// ctx ends the wait; Campaign then returns ctx.Err() and revokes the
	// session. If the session is lost while waiting (etcd unreachable longer
	// than the TTL) Campaign returns ErrSessionLost (or ErrFenced). If etcd
	// reports success but the node's key or session is gone (the etcd trap
	// of DESIGN §4, case C-08), Campaign returns ErrPhantomLeader. After any
	// error the caller may simply call Campaign again.
	Campaign(ctx context.Context, m Member) (Term, error)

	// Snapshot reads the dedup log, the state records, the handoff queue and
	// the dead-letter set at one revision. ctx bounds the reads.
	Snapshot(ctx context.Context) (*Snapshot, error)

	// HandOff gives an event that this node saw, and the leader's log does
	// not show, to the leader: it queues raw under key unless the dedup log
	// holds key, in one atomic step. It reports whether the event was handed
	// off (false: already applied). ctx bounds the call.
	HandOff(ctx context.Context, key string, raw []byte) (bool, error)

	// WatchHandoffs sends every handoff written after revision rev to out,
	// until ctx ends (then it returns ctx.Err()). It blocks on out: the
	// leader loop is its only reader. A broken watch (the member it used
	// lost its leader or went away) is resumed from the last revision seen,
	// on whichever member the client reaches; after a compaction the queue
	// is re-read whole, so a handoff may be delivered twice (the leader's
	// dedup absorbs it). Only ctx ends it: whether the caller still leads is
	// the term's business.
	WatchHandoffs(ctx context.Context, rev int64, out chan<- Handoff) error

	// WatchDeadLetters sends every removal of a dead-letter entry after
	// revision rev to out, until ctx ends (then it returns ctx.Err()): an
	// operator retried the engagement (its events are back in the handoff
	// queue) or dropped it. It blocks on out, and resumes a broken watch
	// like WatchHandoffs; a removal lost to a compaction is seen by the next
	// leader (Snapshot.DeadLetters).
	WatchDeadLetters(ctx context.Context, rev int64, out chan<- DeadLetterRemoved) error

	// NewMirror returns an empty Mirror of the dedup log, the state records
	// and the handoff queue's keys; its Run fills it. It does no I/O.
	NewMirror() Mirror

	// NewHealthPublisher returns a publisher of this node's Health; its
	// Close revokes what it published. It does no I/O.
	NewHealthPublisher() HealthPublisher

	// PeersHealth returns the published Health of every live node, by node
	// id. ctx bounds the read.
	PeersHealth(ctx context.Context) (map[string]Health, error)

	// Members lists the live members of the cluster (records that do not
	// decode are skipped). ctx bounds the read.
	Members(ctx context.Context) ([]Member, error)

	// Leader returns the node id and epoch of the node that holds the
	// election now (it may still be promoting), or "" and 0 when no node
	// holds it. ctx bounds the read.
	Leader(ctx context.Context) (node string, epoch int64, err error)

	// Quarantine puts e in the cluster's bounded quarantine of inputs that
	// must never reach the rules (DESIGN §4): under a lease (the cluster's
	// quarantine TTL, default 7 days), the newest entries kept up to the
	// cluster's quarantine limit (default 1000; older ones are deleted).
	// Node and At are set when empty, Raw is cut to MaxQuarantineRaw and
	// Reason to MaxQuarantineReason. ctx bounds the calls; callers treat it
	// as best effort (a failure loses the evidence, never an event).
	Quarantine(ctx context.Context, e QuarantineEntry) error

	// Quarantined returns how many entries the quarantine holds and the
	// newest of them, newest first, at most newest (0: none). Entries that
	// do not decode are skipped in the list, not in the count. ctx bounds
	// the reads.
	Quarantined(ctx context.Context, newest int) (count int, entries []QuarantineEntry, err error)

	// NewTokenStore returns the cluster's shared store of the OAuth token
	// for a client secret: the token is sealed with a key derived from the
	// secret, so only nodes holding it can read it, and updates are
	// single-flight across the cluster. It does no I/O; the store lives as
	// long as the cluster connection.
	NewTokenStore(clientSecret string) (auth.Store, error)
}

// DeadLetterRemoved says that an operator removed an engagement's
// dead-letter entry.
type DeadLetterRemoved struct {
	// Engagement is the engagement id.
	Engagement string
	// Retried: the entry's events were put back in the handoff queue in
	// the same transaction (a retry); false: they were abandoned (a drop).
	Retried bool
}

// Term is one period of leadership, with its epoch. All leader work must
// derive from Context() and stop when it is cancelled. Safe for concurrent
// use.
//
// A Term is a belief, not a proof: a leader partitioned from etcd keeps its
// Term until its self-fencing deadline, and the recorder's epoch check is
// the second line of defence (G3).
type Term interface {
	// Epoch is the fencing token of this term, higher than every earlier
	// term's (on etcd: an epoch base plus the create revision of the
	// leader's election key). Every recorder command carries it.
	Epoch() int64

	// Context is cancelled when the term ends, for any reason: the session
	// was lost, the fencing deadline passed, Lose was called or Resign
	// began.
	Context() context.Context

	// Err says why the term ended (nil while it lasts): ErrSessionLost,
	// ErrFenced, ErrNotLeader, the error given to Lose, or, after Resign, an
	// error of its own.
	Err() error

	// Deadline is the self-fencing deadline: the send time of the last
	// acknowledged keepalive + TTL − fence margin, on the monotonic clock
	// (the value carries a monotonic reading). It moves forward with every
	// ack. Bound every recorder command by it.
	Deadline() time.Time

	// Valid reports whether the term has not ended and the fencing deadline
	// has not passed. Check it before every recorder command.
	Valid() bool

	// Lose ends the term with err, e.g. when the recorder answered
	// stale_epoch. The caller then stops leader work and calls Resign.
	Lose(err error)

	// Resign ends the term and gives up leadership: it deletes the election
	// key (guarded by the epoch) and revokes the session lease, so a
	// standby's Campaign returns at once. The caller must have stopped every
	// piece of leader work before calling it (C-10). ctx bounds the etcd
	// calls; if they fail, the lease expires by itself after the TTL. Safe
	// to call more than once.
	Resign(ctx context.Context) error

	// CommitBatch writes b as leader: state records, then dedup keys, then
	// queue deletions, then queue entries, in transactions each guarded by
	// the term (on etcd: CreateRevision(leader key) == the create revision
	// the term began with, DESIGN §4).
	// Dedup keys and closed engagements' records are written under the
	// dedup lease (a lease of one dedup window, renewed every quarter
	// window).
	//
	// A batch of the usual size (≤ 120 operations and 1 MiB of keys and
	// values) is one transaction, so state and log land together; a larger
	// one is split at those limits, and a crash between its transactions
	// leaves state ahead of the log (replaying those events yields no
	// command that was not already sent). If the dedup lease has expired,
	// CommitBatch takes a new one and writes the whole batch again, once
	// (puts and deletes are idempotent).
	//
	// It returns ErrFenced without writing when the fencing deadline has
	// passed or the term has ended, and ErrNotLeader (ending the term) when
	// the guard fails; other errors are etcd's. ctx bounds the call; taking
	// the dedup lease and each transaction have 2 s budgets of their own
	// within it. On an error some transactions may have committed; writing
	// the batch again is safe.
	CommitBatch(ctx context.Context, b Batch) error
}

// Mirror keeps a live copy of the dedup log, the state records and the keys
// of the handoff queue, fed by a watch: the standby's hot view (G5). Safe
// for concurrent use.
type Mirror interface {
	// Run reads a snapshot and then follows the watch until ctx ends,
	// re-reading after a compaction or a broken watch. It blocks until ctx
	// ends and returns ctx.Err().
	Run(ctx context.Context) error

	// Applied reports whether the dedup log holds key.
	Applied(key string) bool

	// Queued reports whether the handoff queue holds key: a standby handed
	// the event off, or the leader holds it back. Either way the event is
	// durable in etcd, and the leader (or its successor) applies it.
	Queued(key string) bool

	// Healthy reports whether the mirror has synced and its watch is not
	// broken: the node reaches an etcd member that has a leader.
	Healthy() bool

	// Counts returns the number of dedup keys and state records held.
	Counts() (applied, states int)
}

// HealthPublisher publishes this node's Health under a lease of its own
// (TTL = the session TTL, kept alive in the background), so a dead node's
// record vanishes. Safe for concurrent use.
type HealthPublisher interface {
	// Publish writes h with Node set to this node. It takes a lease on
	// first use and again after the old one was lost. ctx bounds the calls.
	Publish(ctx context.Context, h Health) error

	// Close stops the keepalive and revokes the lease (bounded by ctx; the
	// lease expires by itself if that fails). Publish may be called again
	// afterwards.
	Close(ctx context.Context)
}
