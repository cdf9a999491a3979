package adapter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
)

// The node's work is split by role and step, one file each:
//
//	node.go       types, configuration, NewNode, Run and the role loop
//	status.go     NodeStatus, the /status document, counters
//	membership.go start-up membership check, socket health, degradation
//	standby.go    the standby role and its campaign
//	pending.go    intake of the node's own events, the pending set, handoff
//	leader.go     one term: wiring, the live loop, the stop protocol
//	promote.go    promotion: snapshot, epoch claim, reconciliation, backlog
//	hold.go       hold-back and parking of events that must wait
//	send.go       the fenced, retried send to the recorder
//	logwrite.go   the group-commit writer of the dedup log and state
//	stopkeep.go   keeping, at a shutdown, the events only this node holds

// Roles of a node.
const (
	RoleStarting  = "starting"
	RoleStandby   = "standby"
	RolePromoting = "promoting"
	RoleLeader    = "leader"
	RoleStopping  = "stopping"
)

// Source is the node's event subscription (an *events.Client in
// production). Node.Run runs it and receives its events: Run blocks until
// ctx ends and calls deliver for each event, on the source's read
// goroutine, never after it returned; deliver may block while the node's
// inbox is full. Status and SubscriptionID are safe for concurrent use.
type Source interface {
	Run(ctx context.Context, deliver func(*events.Event)) error
	Status() events.ClientStatus
	SubscriptionID() string
}

// Defaults of NodeConfig, applied to zero fields by NewNode.
const (
	defaultHandoffGrace  = 2 * time.Second
	defaultBatchSize     = 32
	defaultMaxPending    = 100000
	defaultDegradedAfter = 10 * time.Second
	defaultIdleTimeout   = 12 * time.Hour
	defaultMaxAttempts   = 6
	maxAttempts          = 100
	// maxBatchSize is the largest BatchSize: each event takes up to three
	// operations, and the cluster puts at most 120 in one txn (etcd
	// refuses more than 128), so a batch of this size is one txn.
	maxBatchSize = 40
)

// Errors of NewNode and Node.Run.
var (
	// ErrInvalidNodeConfig is wrapped by every NodeConfig.Validate error
	// and by NewNode's name check; the message names the field and its
	// value.
	ErrInvalidNodeConfig = errors.New("node: invalid config")
	// ErrNodeNameTaken is returned by Run when a live member of the
	// cluster already has this node's name (and did not go away within a
	// session TTL).
	ErrNodeNameTaken = errors.New("node: another live node has this name")
	// ErrSubscriptionShared is returned by Run when a live member with
	// another name uses this node's subscription; Zoom would kick one
	// socket for the other and events would be lost.
	ErrSubscriptionShared = errors.New("node: another live node uses this subscription")
)

// NodeConfig configures a Node. Zero fields take their defaults; NewNode
// applies them and validates the result (Validate).
type NodeConfig struct {
	// Name is the node id, e.g. "a". Required; it must equal the cluster
	// config's node.
	Name string
	// Rules are the recording rules.
	Rules Rules
	// HandoffGrace is how long a standby keeps an event the leader's log
	// does not show before handing it to the leader through etcd. Default
	// 2s; must not be negative.
	HandoffGrace time.Duration
	// HoldBack is how long a live leader holds an event that ends a leg
	// before applying it, so that an earlier event its own socket missed can
	// still arrive from a standby (handoff) and land before the stop.
	// Default HandoffGrace + 1s; negative disables it.
	HoldBack time.Duration
	// BatchSize is the most events one leader txn logs. Default 32; at most
	// 40 (each event takes up to three ops of etcd's 128-op txn limit); must
	// not be negative.
	BatchSize int
	// MaxPending bounds the events a node holds that the log does not show
	// yet; beyond it the oldest are dropped and counted. Default 100000;
	// must not be negative.
	MaxPending int
	// DegradedAfter: a node whose socket has been down this long is
	// degraded; a degraded leader hands over to a standby whose socket is
	// up, and a degraded standby does not campaign while such a peer
	// exists (C-05). Default 10s; must not be negative.
	DegradedAfter time.Duration
	// EngagementIdleTimeout: the leader closes an engagement that has had
	// no event for this long (its end was lost): each open segment gets a
	// stop with reason expired, the state record is closed (and then
	// forgotten after the dedup window, like every closed record), and the
	// expiry is counted (engagements_expired) and logged. It is measured
	// from the engagement's last applied event time (Engagement.LastEventAt)
	// on Now, and checked with the leader's prune, every 30s. Default 12h;
	// must not be negative; it should be at least Rules.MaxEventAge, so that
	// an answer arriving after the expiry is too old to start a recording.
	EngagementIdleTimeout time.Duration
	// Now is the clock of the leader's housekeeping: the idle timeout, and
	// the age of the dedup keys and closed engagements it forgets. nil
	// means time.Now. Tests set it to advance time without sleeping.
	Now func() time.Time
	// Limits bound the events the leader takes from the handoff queue
	// (events.ParseWith): an implausible or malformed entry is quarantined.
	// The zero value means the events package's defaults.
	Limits events.Limits
	// MaxAttempts bounds the attempts at one recorder command in a row
	// before the recorder is probed and, if it answers, the command's
	// engagement is suspended and possibly dead-lettered (deadletter.go).
	// Default 6; must be between 0 and 100.
	MaxAttempts int
	// Version and Address are published in the membership record.
	Version, Address string
	// Logger should already carry the node's id (key "node"): the node
	// adds only the epoch, as leader.
	Logger zerolog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c NodeConfig) withDefaults() NodeConfig {
	c.HandoffGrace = cmp.Or(c.HandoffGrace, defaultHandoffGrace)
	c.HoldBack = cmp.Or(c.HoldBack, c.HandoffGrace+time.Second)
	c.BatchSize = cmp.Or(c.BatchSize, defaultBatchSize)
	c.MaxPending = cmp.Or(c.MaxPending, defaultMaxPending)
	c.DegradedAfter = cmp.Or(c.DegradedAfter, defaultDegradedAfter)
	c.EngagementIdleTimeout = cmp.Or(c.EngagementIdleTimeout, defaultIdleTimeout)
	if c.Now == nil {
		c.Now = time.Now
	}
	c.MaxAttempts = cmp.Or(c.MaxAttempts, defaultMaxAttempts)
	return c
}

// Validate reports the first field out of range, naming it and its value
// (wrapping ErrInvalidNodeConfig); nil when c is usable. Zero fields are
// valid: they mean the default.
func (c NodeConfig) Validate() error {
	bad := func(field string, v any, why string) error {
		return fmt.Errorf("%w: %s %v %s", ErrInvalidNodeConfig, field, v, why)
	}
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: Name is required", ErrInvalidNodeConfig)
	case c.HandoffGrace < 0:
		return bad("HandoffGrace", c.HandoffGrace, "must not be negative")
	case c.BatchSize < 0 || c.BatchSize > maxBatchSize:
		return bad("BatchSize", c.BatchSize, fmt.Sprintf("must be between 1 and %d (0: default %d)", maxBatchSize, defaultBatchSize))
	case c.MaxPending < 0:
		return bad("MaxPending", c.MaxPending, "must not be negative")
	case c.DegradedAfter < 0:
		return bad("DegradedAfter", c.DegradedAfter, "must not be negative")
	case c.EngagementIdleTimeout < 0:
		return bad("EngagementIdleTimeout", c.EngagementIdleTimeout, "must not be negative")
	case c.MaxAttempts < 0 || c.MaxAttempts > maxAttempts:
		return bad("MaxAttempts", c.MaxAttempts, fmt.Sprintf("must be between 1 and %d (0: default %d)", maxAttempts, defaultMaxAttempts))
	}
	return nil
}

// Node is one RIS node: it keeps its subscription and mirror hot, campaigns
// for leadership, and as leader turns events into recorder commands. Run
// drives it (and its Source, whose events it receives); Status reads it.
// Safe for concurrent use.
type Node struct {
	cfg     NodeConfig
	cl      protocol.Cluster
	mirror  protocol.Mirror
	sink    Sink
	source  Source
	log     zerolog.Logger
	inbox   chan *events.Event
	stopped chan struct{}
	// srcDone is closed once the source's Run has returned (at once
	// without a source): no event reaches the inbox after it.
	srcDone chan struct{}

	// Owned by the run loop.
	pending  map[string]*pendingEvent
	seq      uint64
	health   protocol.HealthPublisher
	healthUp bool
	healthAt time.Time

	downSince atomic.Int64 // unix nanos the socket was first seen down; 0 while up
	// staleUntil (unix nanos) holds campaigning back after the recorder
	// refused this cluster's epoch; staleRefusals counts such refusals in a
	// row (run loop), the attempt number of staleEpochBackoff.
	staleUntil    atomic.Int64
	staleRefusals int

	// Hardening against poison input (quarantine.go, promotion.go): the
	// quarantine (guarded by mu but for its channel); the hold after a
	// failed promotion (unix nanos) and the failures in a row (run loop);
	// the election holder this node last saw (nil: not looked yet).
	quar            quarantineState
	promoteUntil    atomic.Int64
	promoteFailures int
	pairLeader      atomic.Pointer[pairLeader]
	leaderCheckedAt time.Time

	// txn times the leader's etcd transactions (safe for concurrent use).
	txn prometheus.Histogram

	mu sync.Mutex
	st NodeStatus
	// byEvent counts events by (event name, outcome). Guarded by mu.
	byEvent map[[2]string]int64
}

// inboxSize is how many delivered events wait for the run loop before
// Deliver blocks.
const inboxSize = 65536

// NewNode returns a node. cfg is validated (Validate, wrapping
// ErrInvalidNodeConfig) after its defaults are applied; cfg.Name must equal
// the cluster's node. sink may not be nil; source may be nil in tests that
// call Deliver directly. It does no I/O.
func NewNode(cfg NodeConfig, cl protocol.Cluster, sink Sink, source Source) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name != cl.Settings().Node {
		return nil, fmt.Errorf("%w: Name %q differs from the cluster node %q", ErrInvalidNodeConfig, cfg.Name, cl.Settings().Node)
	}
	if sink == nil {
		return nil, errors.New("node: a recorder sink is required")
	}
	return &Node{
		cfg:     cfg,
		cl:      cl,
		mirror:  cl.NewMirror(),
		sink:    sink,
		source:  source,
		log:     cfg.Logger,
		inbox:   make(chan *events.Event, inboxSize),
		stopped: make(chan struct{}),
		srcDone: make(chan struct{}),
		pending: map[string]*pendingEvent{},
		health:  cl.NewHealthPublisher(),
		txn:     newTxnHistogram(cfg.Name),
		st:      NodeStatus{Node: cfg.Name, Role: RoleStarting},
		quar:    newQuarantineState(),
	}, nil
}

// Deliver hands the node one event as if its source had: Run passes it to
// Source.Run as the delivery function, and tests without a socket call it
// directly. It blocks while the node's inbox (65536 events) is full, and
// returns at once after Run has returned (the event is then dropped and
// counted). Safe for concurrent use.
func (n *Node) Deliver(ev *events.Event) {
	select {
	case n.inbox <- ev:
	case <-n.stopped:
		n.count(func(s *NodeStatus) { s.Dropped++ })
	}
}

// Run runs the node until ctx ends: the subscription (whose events it
// receives through Deliver), the mirror, and the role loop. On return every
// goroutine it started has ended; a leader has stopped sending, logged what
// it sent, queued what it received and had not applied, and resigned,
// within a budget of about 3.5s; a standby has handed off what the leader's
// log did not show, within about 1.3s (stopkeep.go). An event the source
// delivered too late for that is counted as dropped. It returns nil after a
// shutdown by ctx, and ErrNodeNameTaken or ErrSubscriptionShared when it
// refuses to start. Run once.
func (n *Node) Run(ctx context.Context) error {
	defer close(n.stopped)
	if err := n.checkMembership(ctx); err != nil {
		n.setRole(RoleStopping, 0)
		return err
	}
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(1)
	go func() { defer wg.Done(); n.mirror.Run(bg) }() //nolint:errcheck // returns bg's error
	wg.Add(1)
	go n.runQuarantine(bg, &wg)
	if n.source != nil {
		wg.Add(1)
		go func() { defer wg.Done(); defer close(n.srcDone); n.source.Run(ctx, n.Deliver) }() //nolint:errcheck // returns ctx's error
	} else {
		close(n.srcDone)
	}
	n.loop(ctx)
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
	n.health.Close(hctx)
	cancel()
	stopBG()
	wg.Wait()
	if left := len(n.inbox); left > 0 {
		n.count(func(s *NodeStatus) { s.Dropped += int64(left) })
		n.log.Warn().Int("events", left).Msg("events delivered after the stop had kept the others are dropped; the peer's socket is their only copy")
	}
	n.setRole(RoleStopping, 0)
	return nil
}

// loop is the role loop: standby (campaigning) until a term is won, then
// that term, until ctx ends. One goroutine owns the role.
func (n *Node) loop(ctx context.Context) {
	for ctx.Err() == nil {
		term := n.standby(ctx)
		if term == nil {
			return
		}
		n.lead(ctx, term)
	}
}

// now reads the node's clock (NodeConfig.Now).
func (n *Node) now() time.Time { return n.cfg.Now() }

func (n *Node) setRole(role string, epoch int64) {
	n.count(func(s *NodeStatus) {
		s.Role, s.Epoch = role, epoch
		switch role {
		case RolePromoting:
			s.ElectedAt = time.Now().UTC()
			s.Terms++
		case RoleLeader:
			s.LeaderSince = time.Now().UTC()
		case RoleStandby:
			s.ElectedAt, s.LeaderSince = time.Time{}, time.Time{}
		}
	})
	n.log.Info().Str("role", role).Int64("epoch", epoch).Msg("role changed")
}
