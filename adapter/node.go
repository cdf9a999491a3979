package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
)

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

// NodeConfig configures a Node.
type NodeConfig struct {
	// Name is the node id, e.g. "a". Required; it must equal the cluster
	// config's node.
	Name string
	// Rules are the recording rules.
	Rules Rules
	// HandoffGrace is how long a standby keeps an event the leader's log
	// does not show before handing it to the leader through etcd. Default
	// 2s.
	HandoffGrace time.Duration
	// HoldBack is how long a live leader holds an event that ends a leg
	// before applying it, so that an earlier event its own socket missed can
	// still arrive from a standby (handoff) and land before the stop.
	// Default HandoffGrace + 1s; negative disables it.
	HoldBack time.Duration
	// BatchSize is the most events one leader txn logs. Default 32 (each
	// event takes up to three ops of etcd's 128-op txn limit).
	BatchSize int
	// MaxPending bounds the events a node holds that the log does not show
	// yet; beyond it the oldest are dropped and counted. Default 100000.
	MaxPending int
	// DegradedAfter: a node whose socket has been down this long is
	// degraded; a degraded leader hands over to a standby whose socket is
	// up, and a degraded standby does not campaign while such a peer
	// exists (C-05). Default 10s.
	DegradedAfter time.Duration
	// Version and Address are published in the membership record.
	Version, Address string
	// Logger should already carry the node's id (key "node"): the node
	// adds only the epoch, as leader.
	Logger zerolog.Logger
}

// Node is one RIS node: it keeps its subscription and mirror hot, campaigns
// for leadership, and as leader turns events into recorder commands. Run
// drives it (and its Source, whose events it receives); Status reads it.
// Safe for concurrent use.
type Node struct {
	cfg     NodeConfig
	cl      *cluster.Cluster
	mirror  *cluster.Mirror
	sink    Sink
	source  Source
	log     zerolog.Logger
	inbox   chan *events.Event
	stopped chan struct{}

	// Owned by the run loop.
	pending  map[string]*pendingEvent
	seq      uint64
	health   *cluster.HealthPublisher
	healthUp bool
	healthAt time.Time

	downSince atomic.Int64 // unix nanos the socket was first seen down; 0 while up
	// staleUntil (unix nanos) holds campaigning back after the recorder
	// refused this cluster's epoch; staleBackoff is the loop's next wait.
	staleUntil   atomic.Int64
	staleBackoff time.Duration

	// txn times the leader's etcd transactions (safe for concurrent use).
	txn prometheus.Histogram

	mu sync.Mutex
	st NodeStatus
	// byEvent counts events by (event name, outcome). Guarded by mu.
	byEvent map[[2]string]int64
}

// Event outcomes counted per event name (EventCounts).
const (
	OutcomeReceived     = "received"
	OutcomeApplied      = "applied"
	OutcomeDeduplicated = "deduplicated"
	OutcomeHandedOff    = "handed_off"
	OutcomeStale        = "stale"
	OutcomeLate         = "late"
)

// countEvent counts one event outcome by event name; unknown names share
// one label so a flood of odd names cannot grow the metrics.
func (n *Node) countEvent(ev *events.Event, outcome string) {
	name := ev.Name
	if !ev.Known {
		name = "unknown"
	}
	n.mu.Lock()
	if n.byEvent == nil {
		n.byEvent = map[[2]string]int64{}
	}
	n.byEvent[[2]string{name, outcome}]++
	n.mu.Unlock()
}

// EventCounts returns the per-event-name outcome counts, keyed by
// [event name, outcome] (OutcomeReceived, …).
func (n *Node) EventCounts() map[[2]string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[[2]string]int64, len(n.byEvent))
	for k, v := range n.byEvent {
		out[k] = v
	}
	return out
}

type pendingEvent struct {
	ev        *events.Event
	seq       uint64
	arrived   time.Time
	handedOff bool
}

// NodeStatus is a snapshot of a node (Node.Status); /status serves it in a
// StatusDoc.
type NodeStatus struct {
	Node         string    `json:"node"`
	Role         string    `json:"role"`
	Epoch        int64     `json:"epoch,omitempty"`
	ElectedAt    time.Time `json:"elected_at,omitzero"`
	LeaderSince  time.Time `json:"leader_since,omitzero"`
	Subscription string    `json:"subscription"`
	SocketUp     bool      `json:"socket_up"`
	// Malformed and BadSignatures count what the subscription dropped:
	// frames or events that did not parse, and message frames whose
	// x-zm-signature did not match zoom.secret_token.
	Malformed     int64 `json:"events_malformed"`
	BadSignatures int64 `json:"events_bad_signature"`
	// Recorder is the recorder's reachability as the leader last saw it
	// (always OK on a standby, which does not talk to it).
	Recorder SinkHealth `json:"recorder"`
	Degraded bool       `json:"degraded"`
	// EtcdOK: the node's view of etcd is live (its mirror's watch runs on a
	// member with a leader).
	EtcdOK        bool      `json:"etcd_ok"`
	LastEventAt   time.Time `json:"last_event_at,omitzero"`
	Pending       int       `json:"pending"`
	HandedOff     int64     `json:"handed_off"`
	Received      int64     `json:"events_received"`
	Deduplicated  int64     `json:"events_deduplicated"`
	Applied       int64     `json:"events_applied"`
	Late          int64     `json:"events_late"`
	Parked        int       `json:"events_parked"`
	Stale         int64     `json:"events_stale"`
	Dropped       int64     `json:"events_dropped"`
	Commands      int64     `json:"commands_sent"`
	Duplicates    int64     `json:"commands_duplicate"`
	Invalid       int64     `json:"commands_invalid"`
	AgentUpdates  int64     `json:"agent_updates_sent"`
	Terms         int64     `json:"terms"`
	MirrorApplied int       `json:"mirror_dedup_keys"`
	MirrorStates  int       `json:"mirror_engagements"`
	LastError     string    `json:"last_error,omitempty"`
}

// StatusDoc is the JSON body of GET /status: the NodeStatus fields (inline)
// plus the build's version, which `zccadapter status` shows. It is the one
// wire type of /status: the node encodes it, doctor and the drill decode
// it. It carries no secret (G8).
type StatusDoc struct {
	NodeStatus
	// Version is the node's build version; empty when not set.
	Version string `json:"version,omitempty"`
}

// NewNode returns a node. sink may not be nil; source may be nil in tests
// that call Deliver directly.
func NewNode(cfg NodeConfig, cl *cluster.Cluster, sink Sink, source Source) (*Node, error) {
	if cfg.Name == "" {
		return nil, errors.New("node: name is required")
	}
	if cfg.Name != cl.Config().Node {
		return nil, fmt.Errorf("node: name %q differs from the cluster node %q", cfg.Name, cl.Config().Node)
	}
	if sink == nil {
		return nil, errors.New("node: a recorder sink is required")
	}
	if cfg.HandoffGrace == 0 {
		cfg.HandoffGrace = 2 * time.Second
	}
	if cfg.HoldBack == 0 {
		cfg.HoldBack = cfg.HandoffGrace + time.Second
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > 40 {
		cfg.BatchSize = 32
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100000
	}
	if cfg.DegradedAfter <= 0 {
		cfg.DegradedAfter = 10 * time.Second
	}
	n := &Node{cfg: cfg, cl: cl, mirror: cl.NewMirror(), sink: sink, source: source,
		log:     cfg.Logger,
		inbox:   make(chan *events.Event, 65536),
		stopped: make(chan struct{}),
		pending: map[string]*pendingEvent{}, health: cl.NewHealthPublisher(),
		txn: newTxnHistogram(cfg.Name)}
	n.st = NodeStatus{Node: cfg.Name, Role: RoleStarting}
	return n, nil
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

// Status returns a snapshot.
func (n *Node) Status() NodeStatus {
	n.mu.Lock()
	s := n.st
	n.mu.Unlock()
	if n.source != nil {
		cs := n.source.Status()
		s.Subscription = n.source.SubscriptionID()
		s.SocketUp = cs.Connected
		s.Malformed, s.BadSignatures = cs.Malformed, cs.BadSignatures
	}
	s.MirrorApplied, s.MirrorStates = n.mirror.Counts()
	s.Degraded = n.degraded()
	s.EtcdOK = n.mirror.Healthy()
	s.Recorder = SinkHealth{OK: true}
	if s.Role == RoleLeader || s.Role == RolePromoting {
		s.Recorder = n.sinkHealth()
	}
	return s
}

// checkHealth tracks the socket and publishes this node's health when it
// changes, and every 5s. Called from the run loop.
func (n *Node) checkHealth(ctx context.Context) {
	if n.source == nil {
		return
	}
	up := n.source.Status().Connected
	now := time.Now()
	if up {
		n.downSince.Store(0)
	} else if n.downSince.Load() == 0 {
		n.downSince.Store(now.UnixNano())
	}
	if up == n.healthUp && now.Sub(n.healthAt) < 5*time.Second {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := n.health.Publish(hctx, cluster.Health{SocketUp: up, At: now.UTC()}); err == nil {
		n.healthUp, n.healthAt = up, now
	}
}

// Errors of Node.Run at start-up.
var (
	// ErrNodeNameTaken: a live member of the cluster already has this
	// node's name (and did not go away within a session TTL).
	ErrNodeNameTaken = errors.New("node: another live node has this name")
	// ErrSubscriptionShared: a live member with another name uses this
	// node's subscription; Zoom would kick one socket for the other and
	// events would be lost.
	ErrSubscriptionShared = errors.New("node: another live node uses this subscription")
)

// checkMembership refuses to start beside a live node with the same name or
// the same subscription. A record of this node's own previous run (a crash)
// is waited out: it vanishes with its lease within the session TTL.
func (n *Node) checkMembership(ctx context.Context) error {
	sub := ""
	if n.source != nil {
		sub = n.source.SubscriptionID()
	}
	deadline := time.Now().Add(n.cl.Config().SessionTTL + 2*time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		members, err := n.cl.Members(cctx)
		cancel()
		if err != nil {
			return err
		}
		sameName := false
		for _, m := range members {
			switch {
			case m.Node == n.cfg.Name:
				sameName = true
			case sub != "" && m.Subscription == sub:
				return fmt.Errorf("%w: node %q is connected to subscription %s; give each node its own event subscription", ErrSubscriptionShared, m.Node, sub)
			}
		}
		if !sameName {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q is registered and alive; give each node its own name (node:)", ErrNodeNameTaken, n.cfg.Name)
		}
		n.log.Info().Msg("a previous run of this node is still registered; waiting for its session to expire")
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}

// sinkHealth is the sink's view of the recorder (OK for sinks that do not
// report health).
func (n *Node) sinkHealth() SinkHealth {
	if h, ok := n.sink.(interface{ Health() SinkHealth }); ok {
		return h.Health()
	}
	return SinkHealth{OK: true}
}

// staleEpochWait returns how long to hold campaigning back after a stale
// epoch refusal (doubling from 2s to 1m) and arms the hold.
func (n *Node) staleEpochWait() time.Duration {
	n.staleBackoff = min(max(2*n.staleBackoff, 2*time.Second), time.Minute)
	n.staleUntil.Store(time.Now().Add(n.staleBackoff).UnixNano())
	return n.staleBackoff
}

// degraded reports whether the socket has been down for DegradedAfter.
func (n *Node) degraded() bool {
	since := n.downSince.Load()
	return since != 0 && time.Since(time.Unix(0, since)) >= n.cfg.DegradedAfter
}

// healthyPeer reports whether another live node's socket is up.
func (n *Node) healthyPeer(ctx context.Context) bool {
	hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	peers, err := n.cl.PeersHealth(hctx)
	if err != nil {
		return false
	}
	for name, h := range peers {
		if name != n.cfg.Name && h.SocketUp && time.Since(h.At) < 15*time.Second {
			return true
		}
	}
	return false
}

func (n *Node) count(f func(*NodeStatus)) {
	n.mu.Lock()
	f(&n.st)
	n.mu.Unlock()
}

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

// Run runs the node until ctx ends: the subscription (whose events it
// receives through Deliver), the mirror, and the role loop. On return every goroutine it started has ended; a leader has
// stopped sending, logged what it sent and resigned, within a budget of
// about 2s. It returns nil after a shutdown by ctx.
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
	if n.source != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.source.Run(ctx, n.Deliver) }() //nolint:errcheck // returns ctx's error
	}
	n.loop(ctx)
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
	n.health.Close(hctx)
	cancel()
	stopBG()
	wg.Wait()
	n.setRole(RoleStopping, 0)
	return nil
}

func (n *Node) loop(ctx context.Context) {
	for ctx.Err() == nil {
		term := n.standby(ctx)
		if term == nil {
			return
		}
		n.lead(ctx, term)
	}
}

// standby keeps intake and handoff going while it campaigns; it returns the
// won term, or nil when ctx ended.
func (n *Node) standby(ctx context.Context) *cluster.Term {
	n.setRole(RoleStandby, 0)
	cctx, cancel := context.WithCancel(ctx)
	won := make(chan *cluster.Term, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		won <- n.campaign(cctx)
	}()
	defer wg.Wait()
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case ev := <-n.inbox:
			n.intake(ev)
		case <-tick.C:
			n.sweep(ctx)
			n.checkHealth(ctx)
		case t := <-won:
			return t
		case <-ctx.Done():
			// The campaign may have won just as the node stops: resign
			// that term now, or the peer waits a session TTL for it.
			cancel()
			wg.Wait()
			select {
			case t := <-won:
				if t != nil {
					rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
					if err := t.Resign(rctx); err != nil {
						n.log.Warn().Err(err).Msg("resigning the term won while stopping failed; it expires after its TTL")
					}
					rcancel()
				}
			default:
			}
			return nil
		}
	}
}

// campaign retries Campaign until it wins or ctx ends (nil).
func (n *Node) campaign(ctx context.Context) *cluster.Term {
	m := cluster.Member{Version: n.cfg.Version, Address: n.cfg.Address}
	if n.source != nil {
		m.Subscription = n.source.SubscriptionID()
	}
	backoff := 100 * time.Millisecond
	for {
		if wait := time.Until(time.Unix(0, n.staleUntil.Load())); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil
			}
		}
		// A node whose socket is dead leaves leadership to a healthy peer.
		for n.degraded() && n.healthyPeer(ctx) {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
		}
		t, err := n.cl.Campaign(ctx, m)
		if err == nil {
			return t
		}
		if ctx.Err() != nil {
			return nil
		}
		n.log.Warn().Err(err).Dur("backoff", backoff).Msg("campaign failed; campaigning again with a new session")
		n.count(func(s *NodeStatus) { s.LastError = err.Error() })
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// intake records an event from the node's own socket.
func (n *Node) intake(ev *events.Event) *pendingEvent {
	n.count(func(s *NodeStatus) {
		s.Received++
		if ev.Time.After(s.LastEventAt) {
			s.LastEventAt = ev.Time
		}
	})
	n.countEvent(ev, OutcomeReceived)
	if n.mirror.Applied(ev.Key) {
		n.count(func(s *NodeStatus) { s.Deduplicated++ })
		n.countEvent(ev, OutcomeDeduplicated)
		return nil
	}
	if p, ok := n.pending[ev.Key]; ok {
		n.count(func(s *NodeStatus) { s.Deduplicated++ })
		n.countEvent(ev, OutcomeDeduplicated)
		return p
	}
	n.seq++
	p := &pendingEvent{ev: ev, seq: n.seq, arrived: time.Now()}
	n.pending[ev.Key] = p
	if len(n.pending) > n.cfg.MaxPending {
		n.dropOldest()
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
	return p
}

func (n *Node) dropOldest() {
	var oldest *pendingEvent
	for _, p := range n.pending {
		if oldest == nil || p.seq < oldest.seq {
			oldest = p
		}
	}
	delete(n.pending, oldest.ev.Key)
	n.count(func(s *NodeStatus) { s.Dropped++ })
	n.log.Error().Str("event", oldest.ev.Name).Int("max_pending", n.cfg.MaxPending).Msg("pending events over the limit; oldest dropped")
}

// sweep drops pending events the leader has logged and hands off those
// older than the grace period.
func (n *Node) sweep(ctx context.Context) {
	now := time.Now()
	maxAge := n.cl.Config().DedupWindow / 2
	var due []*pendingEvent
	for k, p := range n.pending {
		if n.mirror.Applied(k) {
			delete(n.pending, k)
			continue
		}
		if now.Sub(p.arrived) > maxAge {
			// Older than the dedup log remembers: handing it over now
			// could apply it twice. Counted and dropped.
			delete(n.pending, k)
			n.count(func(s *NodeStatus) { s.Dropped++ })
			n.log.Warn().Str("event", p.ev.Name).Str("engagement_id", EngagementID(p.ev)).Msg("pending event older than half the dedup window dropped")
			continue
		}
		if !p.handedOff && now.Sub(p.arrived) >= n.cfg.HandoffGrace {
			if n.mirror.Queued(k) {
				// Already in the queue: the leader holds it back or waits
				// with it, or another node handed it off. It is durable;
				// handing it off again would only cost a txn.
				p.handedOff = true
				continue
			}
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].seq < due[j].seq })
	for _, p := range due {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := n.cl.HandOff(hctx, p.ev.Key, p.ev.Raw)
		cancel()
		if err != nil {
			n.log.Debug().Err(err).Msg("handoff failed; will retry")
			break
		}
		p.handedOff = true
		if ok {
			n.count(func(s *NodeStatus) { s.HandedOff++ })
			n.countEvent(p.ev, OutcomeHandedOff)
			n.log.Debug().Str("event", p.ev.Name).Str("engagement_id", EngagementID(p.ev)).Msg("event handed off to the leader")
		}
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
}

// leader is the state of one term, owned by the run loop.
type leader struct {
	n       *Node
	term    *cluster.Term
	ctx     context.Context
	applied map[string]time.Time // dedup key → when this node learnt it
	engs    map[string]*Engagement
	batch   batch
	// Early events waiting for an earlier fact, by engagement, and when
	// each was parked, by dedup key.
	parked   map[string][]*events.Event
	parkedAt map[string]parkInfo
	// live is false while the promotion backlog is applied (no hold-back
	// then: the backlog is applied in event time order at once).
	live bool
	// inflight is the batch being written, if any (flushAsync).
	inflight *inflight
	// unlogged are the keys of events applied whose write has not landed
	// yet; queued the keys of held events whose queue entry has.
	unlogged map[string]struct{}
	queued   map[string]struct{}
	// writeFailed: a write of this term failed (etcd did not take it).
	writeFailed bool
}

// batch is what the next write logs.
type batch struct {
	// keys are the dedup keys of the events applied, in order.
	keys []string
	// engs are the engagements those events changed.
	engs map[string]*Engagement
	// unqueue are handoff queue entries to delete: events applied, or
	// unreadable.
	unqueue map[string]struct{}
	// queue are events the leader holds (held back or Early), to put in the
	// handoff queue so that they outlive this term: raw event by dedup key.
	queue map[string][]byte
}

func newBatch() batch {
	return batch{engs: map[string]*Engagement{}, unqueue: map[string]struct{}{}, queue: map[string][]byte{}}
}

// size counts the events a batch logs or queues.
func (b *batch) size() int { return len(b.keys) + len(b.queue) }

func (b *batch) empty() bool {
	return len(b.keys) == 0 && len(b.engs) == 0 && len(b.unqueue) == 0 && len(b.queue) == 0
}

// lead runs one term: promotion, then live processing until the term or
// ctx ends; it always returns with leader work stopped and the term
// resigned.
func (n *Node) lead(ctx context.Context, term *cluster.Term) {
	epoch := term.Epoch()
	n.setRole(RolePromoting, epoch)
	log := n.log.With().Int64("epoch", epoch).Logger()
	lctx, cancel := context.WithCancel(term.Context())
	stopOnShutdown := context.AfterFunc(ctx, cancel)
	L := &leader{n: n, term: term, ctx: lctx}
	var watchers sync.WaitGroup
	defer func() {
		// Stop all leader work, join it, then log what was sent, then resign.
		cancel()
		stopOnShutdown()
		watchers.Wait()
		// The write in flight gets 500 ms more.
		etcdFailed := L.writeFailed
		if f := L.inflight; f != nil {
			abort := time.AfterFunc(500*time.Millisecond, f.cancel)
			if err := L.waitFlush(); err != nil {
				// etcd did not take it in time: a final write would fare
				// no better; the successor replays those events.
				etcdFailed = true
				if term.Valid() {
					log.Warn().Err(err).Msg("log write failed at stop; the successor replays those events")
				}
			}
			abort.Stop()
		}
		// Events still held back or waiting go into the handoff queue with
		// the final write, if they are not there yet: the successor applies
		// them in event time order together with what its own socket
		// received, which is better than applying them here.
		if term.Valid() && !etcdFailed {
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 500*time.Millisecond)
			if err := L.flush(fctx); err != nil {
				log.Warn().Err(err).Msg("final log write failed; the successor replays those events")
			}
			fcancel()
		}
		// Unless etcd failed: then a held event that is not in the queue
		// may exist nowhere else (a standby that was not connected when it
		// came). Apply those now, while the term and the recorder allow,
		// within a budget that keeps the stop bounded (C-11); the
		// successor finds their effect on the recorder when it reconciles.
		if ids := L.unqueuedHeld(); len(ids) > 0 && term.Valid() && n.sinkHealth().OK {
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 120*time.Millisecond)
			L.ctx = dctx
			for _, id := range ids {
				if err := L.retryParked(id, true); err != nil {
					log.Warn().Err(err).Msg("applying held-back events at stop failed")
					break
				}
			}
			dcancel()
		}
		n.count(func(s *NodeStatus) { s.Parked = 0 })
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		if err := term.Resign(rctx); err != nil {
			log.Warn().Err(err).Msg("resign incomplete; the lease expires after its TTL")
		}
		rcancel()
		if err := term.Err(); err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("leadership ended")
		}
	}()

	// stepDown logs why promotion stopped, quietly when the node is
	// shutting down or lost the term anyway.
	stepDown := func(err error, what string) {
		if lctx.Err() != nil {
			log.Debug().Err(err).Msg("promotion abandoned: " + what)
			return
		}
		log.Error().Err(err).Msg("promotion: " + what + "; stepping down")
	}
	snap, err := n.cl.Snapshot(lctx)
	if err != nil {
		stepDown(err, "cannot read state")
		return
	}
	if err := L.load(snap); err != nil {
		stepDown(err, "state unreadable")
		return
	}
	if err := n.sink.ClaimEpoch(lctx, rcapi.EpochClaim{Epoch: epoch, Node: n.cfg.Name}); err != nil {
		var se *StaleEpochError
		if errors.As(err, &se) {
			// Not a race with our own successor (that one would hold a
			// newer term in etcd): the recorder knows a higher epoch than
			// this cluster has issued. Campaigning again at once would only
			// spin etcd's revision; wait, say why, and let the operator act.
			wait := n.staleEpochWait()
			log.Error().Int64("recorder_epoch", se.Epoch).Int64("epoch", epoch).Dur("retry_in", wait).
				Msg("the recorder has seen a higher epoch than this cluster issues: another cluster drives this recorder " +
					"(give each pair its own recorder), or etcd was rebuilt (reset the recorder's epoch); not leading until then")
		} else {
			stepDown(err, "recorder did not take the epoch")
		}
		term.Lose(err)
		return
	}
	n.staleBackoff = 0
	L.reconcile()
	// Apply what this node holds that the log does not show, in event time
	// order, before going live (C-16).
	var backlog []*pendingEvent
	for key, raw := range snap.Handoffs {
		if _, done := L.applied[key]; done {
			L.batch.unqueue[key] = struct{}{}
			continue
		}
		ev, err := events.Parse(raw)
		if err != nil {
			log.Warn().Err(err).Msg("handoff unreadable; dropped")
			L.batch.unqueue[key] = struct{}{}
			continue
		}
		if ev.Key != key {
			L.batch.unqueue[key] = struct{}{}
		}
		if p := n.intakeQuiet(ev); p != nil {
			p.handedOff = true
		}
	}
	for _, p := range n.pending {
		backlog = append(backlog, p)
	}
	sort.Slice(backlog, func(i, j int) bool {
		if !backlog[i].ev.Time.Equal(backlog[j].ev.Time) {
			return backlog[i].ev.Time.Before(backlog[j].ev.Time)
		}
		return backlog[i].seq < backlog[j].seq
	})
	for _, p := range backlog {
		if err := L.process(p.ev); err != nil {
			log.Warn().Err(err).Msg("promotion: applying the backlog failed; stepping down")
			return
		}
		if L.batch.size() >= n.cfg.BatchSize {
			if err := L.flush(lctx); err != nil {
				log.Warn().Err(err).Msg("promotion: log write failed; stepping down")
				return
			}
		}
	}
	if err := L.flush(lctx); err != nil {
		log.Warn().Err(err).Msg("promotion: log write failed; stepping down")
		return
	}
	n.setRole(RoleLeader, epoch)
	L.live = true
	log.Info().Int("backlog", len(backlog)).Int("engagements", len(L.engs)).Msg("leader is live")

	handoffs := make(chan cluster.Handoff, 256)
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		if err := n.cl.WatchHandoffs(lctx, snap.Revision, handoffs); err != nil && lctx.Err() == nil {
			log.Error().Err(err).Msg("handoff watch failed; stepping down")
			term.Lose(err)
		}
	}()
	prune := time.NewTicker(30 * time.Second)
	defer prune.Stop()
	expire := time.NewTicker(100 * time.Millisecond)
	defer expire.Stop()
	for {
		var err error
		select {
		case ev := <-n.inbox:
			err = L.own(ev)
		case h := <-handoffs:
			err = L.handoff(h)
		case <-expire.C:
			err = L.releaseParked(3 * n.cfg.HandoffGrace)
			n.checkHealth(lctx)
			if err == nil && n.degraded() && n.healthyPeer(lctx) {
				log.Warn().Dur("socket_down", time.Since(time.Unix(0, n.downSince.Load()))).
					Msg("subscription socket down while a standby's is up: handing over leadership")
				if ferr := L.flush(lctx); ferr != nil {
					log.Warn().Err(ferr).Msg("log write before handover failed")
				}
				return
			}
		case <-prune.C:
			L.prune()
			continue
		case <-lctx.Done():
			return
		}
		// Group commit: take what is already waiting, then write once.
		for more := true; more && err == nil && L.batch.size() < n.cfg.BatchSize; {
			select {
			case ev := <-n.inbox:
				err = L.own(ev)
			case h := <-handoffs:
				err = L.handoff(h)
			default:
				more = false
			}
		}
		if err == nil {
			// On the term's context, not lctx: a shutdown lets the write
			// in flight land (the deferred stop waits for it); losing the
			// term stops it (and its guard would refuse it anyway).
			err = L.flushLive(term.Context())
		}
		if err != nil {
			if lctx.Err() == nil {
				log.Warn().Err(err).Msg("leader stops")
			}
			return
		}
	}
}

// intakeQuiet adds an event to pending without counting it as received.
func (n *Node) intakeQuiet(ev *events.Event) *pendingEvent {
	if p, ok := n.pending[ev.Key]; ok {
		return p
	}
	n.seq++
	p := &pendingEvent{ev: ev, seq: n.seq, arrived: time.Now()}
	n.pending[ev.Key] = p
	return p
}

func (L *leader) load(s *cluster.Snapshot) error {
	now := time.Now()
	L.applied = make(map[string]time.Time, len(s.Applied))
	for k := range s.Applied {
		L.applied[k] = now
	}
	L.engs = make(map[string]*Engagement, len(s.States))
	for id, raw := range s.States {
		var e Engagement
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("state of engagement %q: %w", id, err)
		}
		L.engs[id] = &e
	}
	L.batch = newBatch()
	L.unlogged, L.queued = map[string]struct{}{}, map[string]struct{}{}
	L.n.count(func(s *NodeStatus) { s.Parked = 0 })
	L.parked, L.parkedAt = map[string][]*events.Event{}, map[string]parkInfo{}
	return nil
}

// reconcile compares the recorder's open segments with the state and
// adopts what the recorder knows that the log does not: a command the old
// leader sent but had not logged. It sends nothing.
func (L *leader) reconcile() {
	open, err := L.n.sink.OpenRecordings(L.ctx)
	if err != nil {
		L.n.log.Warn().Err(err).Msg("promotion: recorder open recordings unavailable; continuing from the log")
		return
	}
	adopted := 0
	for _, o := range open {
		eng := L.engs[o.EngagementID]
		if eng == nil {
			eng = &Engagement{ID: o.EngagementID}
			L.engs[o.EngagementID] = eng
		}
		var seg *Segment
		for _, s := range eng.Segments {
			if s.ID == o.SegmentID {
				seg = s
			}
		}
		if seg == nil {
			user, leg := splitSegmentID(o.EngagementID, o.SegmentID)
			seg = &Segment{ID: o.SegmentID, UserID: user, Leg: leg, StartedAt: o.StartedAt}
			eng.Segments = append(eng.Segments, seg)
		}
		if seg.State != o.State || seg.Pauses != o.Pauses {
			seg.State = o.State
			seg.Pauses = o.Pauses
			seg.Resumes = o.Pauses
			if o.State == rcapi.StatePaused {
				seg.Resumes = o.Pauses - 1
			}
			L.batch.engs[eng.ID] = eng
			adopted++
		}
	}
	// A segment the log shows open that the recorder has closed: the old
	// leader's stop reached the recorder but not the log.
	openAt := make(map[string]bool, len(open))
	for _, o := range open {
		openAt[o.SegmentID] = true
	}
	for _, eng := range L.engs {
		for _, seg := range eng.Segments {
			if seg.open() && !openAt[seg.ID] {
				seg.State = rcapi.StateStopped
				if seg.StoppedAt.IsZero() {
					seg.StoppedAt = seg.StartedAt
				}
				L.batch.engs[eng.ID] = eng
				adopted++
			}
		}
	}
	if adopted > 0 {
		L.n.log.Info().Int("segments", adopted).Msg("promotion: adopted recorder state the log did not show")
	}
}

func splitSegmentID(engID, segID string) (string, int) {
	rest := segID
	if len(segID) > len(engID)+1 && segID[:len(engID)+1] == engID+"/" {
		rest = segID[len(engID)+1:]
	}
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '/' {
			leg := 0
			if _, err := fmt.Sscanf(rest[i+1:], "%d", &leg); err == nil && leg > 1 {
				return rest[:i], leg
			}
			break
		}
	}
	return rest, 1
}

func (L *leader) own(ev *events.Event) error {
	if p := L.n.intake(ev); p == nil {
		return nil
	}
	return L.process(ev)
}

// handoff takes one entry of the handoff queue: an event a standby handed
// over, or this leader's own queue entry of an event it holds (the watch
// echoes its writes). An event held stays queued until it is applied; one
// already applied has its entry deleted.
func (L *leader) handoff(h cluster.Handoff) error {
	if _, held := L.parkedAt[h.Key]; held {
		return nil
	}
	if _, done := L.applied[h.Key]; done {
		L.batch.unqueue[h.Key] = struct{}{}
		return nil
	}
	ev, err := events.Parse(h.Raw)
	if err != nil {
		L.n.log.Warn().Err(err).Msg("handoff unreadable; dropped")
		L.batch.unqueue[h.Key] = struct{}{}
		return nil
	}
	if ev.Key != h.Key {
		// Queued under another key (another version's key function):
		// the event's own key is what it is logged and queued under.
		L.batch.unqueue[h.Key] = struct{}{}
	}
	L.n.intakeQuiet(ev)
	return L.process(ev)
}

// process applies one event as leader: rules, commands (sent before the
// event is logged, so a crash between the two replays the event and the
// recorder answers duplicate), then the batch.
//
// Two kinds of event wait instead (unlogged, and written to the handoff
// queue with the next batch, so that a successor applies them even if no
// standby received them): an Early event, until the fact it needs arrives
// (typically through a handoff); and, when live, an event that ends a leg
// (user_ended, consumer_ended, engagement_ended), for the hold-back time, so
// that an earlier event this node's socket missed — a resume, another
// agent's answer — can still arrive from a standby and be applied before
// the stop. Stops carry the event's own time, so the delay changes no
// recording boundary.
func (L *leader) process(ev *events.Event) error {
	n := L.n
	if _, done := L.applied[ev.Key]; done {
		if _, unlogged := L.unlogged[ev.Key]; !unlogged {
			delete(n.pending, ev.Key) // else forgotten once its write lands
		}
		n.count(func(s *NodeStatus) { s.Deduplicated++; s.Pending = len(n.pending) })
		n.countEvent(ev, OutcomeDeduplicated)
		return nil
	}
	if _, parked := L.parkedAt[ev.Key]; parked {
		return nil
	}
	id := EngagementID(ev)
	if L.live && n.cfg.HoldBack > 0 && endsLeg(ev) {
		L.park(id, ev, time.Now().Add(n.cfg.HoldBack))
		return nil
	}
	eng, cmds, outcome := n.cfg.Rules.Apply(L.engs[id].Clone(), ev)
	if outcome == Early {
		L.park(id, ev, time.Time{})
		return nil
	}
	if err := L.apply(ev, id, eng, cmds, outcome); err != nil {
		return err
	}
	if outcome == Applied && len(L.parked[id]) > 0 {
		return L.retryParked(id, false)
	}
	return nil
}

// endsLeg reports whether an event stops segments.
func endsLeg(ev *events.Event) bool {
	switch strings.TrimPrefix(ev.Name, "contact_center.") {
	case "engagement_user_ended", "engagement_consumer_ended", "engagement_ended":
		return true
	}
	return false
}

// parked is a waiting event: since when, and until when it is held back
// (zero: not held, only Early).
type parkInfo struct{ at, until time.Time }

func (L *leader) park(id string, ev *events.Event, until time.Time) {
	L.parked[id] = append(L.parked[id], ev)
	L.parkedAt[ev.Key] = parkInfo{at: time.Now(), until: until}
	// Queue it in etcd with the next write: if this term ends before the
	// event is applied, the successor applies it (Snapshot.Handoffs), even
	// when no standby received it; and a standby that did does not hand it
	// off again (Mirror.Queued).
	delete(L.batch.unqueue, ev.Key)
	if len(ev.Raw) > maxQueuedEventBytes {
		L.n.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Int("bytes", len(ev.Raw)).
			Msg("event too large for the handoff queue: held in memory only")
		return
	}
	L.batch.queue[ev.Key] = ev.Raw
	L.n.count(func(s *NodeStatus) { s.Parked = len(L.parkedAt) })
}

// retryParked applies, in event time order, the parked events of one
// engagement that are neither held back (unless force) nor Early any more,
// until none changes.
func (L *leader) retryParked(id string, force bool) error {
	now := time.Now()
	for progress := true; progress; {
		progress = false
		list := L.parked[id]
		sort.SliceStable(list, func(i, j int) bool { return list[i].Time.Before(list[j].Time) })
		for i, ev := range list {
			if !force && now.Before(L.parkedAt[ev.Key].until) {
				continue
			}
			eng, cmds, outcome := L.n.cfg.Rules.Apply(L.engs[id].Clone(), ev)
			if outcome == Early {
				continue
			}
			L.unpark(id, i)
			if err := L.apply(ev, id, eng, cmds, outcome); err != nil {
				return err
			}
			progress = true
			break
		}
	}
	return nil
}

func (L *leader) unpark(id string, i int) {
	list := L.parked[id]
	delete(L.parkedAt, list[i].Key)
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(L.parked, id)
	} else {
		L.parked[id] = list
	}
	L.n.count(func(s *NodeStatus) { s.Parked = len(L.parkedAt) })
}

// releaseParked applies held-back events whose time has come, and gives up
// waiting for Early events parked longer than limit.
func (L *leader) releaseParked(limit time.Duration) error {
	now := time.Now()
	for id, list := range L.parked {
		for _, ev := range list {
			if u := L.parkedAt[ev.Key].until; !u.IsZero() && !now.Before(u) {
				if err := L.retryParked(id, false); err != nil {
					return err
				}
				break
			}
		}
	}
	for id, list := range L.parked {
		for i := len(list) - 1; i >= 0; i-- {
			ev := list[i]
			if p := L.parkedAt[ev.Key]; now.Before(p.until) || now.Sub(p.at) < limit {
				continue
			}
			L.unpark(id, i)
			eng, outcome := L.n.cfg.Rules.ApplyExpired(L.engs[id].Clone(), ev)
			L.n.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Msg("the earlier event this one waited for never came")
			if err := L.apply(ev, id, eng, nil, outcome); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply sends an applied event's commands and adds it to the batch.
func (L *leader) apply(ev *events.Event, id string, eng *Engagement, cmds []rcapi.Command, outcome Outcome) error {
	n := L.n
	for _, c := range cmds {
		c.Epoch, c.Node = L.term.Epoch(), n.cfg.Name
		if err := L.send(c); err != nil {
			return err
		}
	}
	if u, ok := AgentUpdate(ev); ok {
		u.Epoch, u.Node = L.term.Epoch(), n.cfg.Name
		if err := L.sendAgent(u); err != nil {
			return err
		}
	}
	n.countEvent(ev, OutcomeApplied)
	switch outcome {
	case Late:
		n.count(func(s *NodeStatus) { s.Late++ })
		n.countEvent(ev, OutcomeLate)
	case Stale:
		n.count(func(s *NodeStatus) { s.Stale++ })
		n.countEvent(ev, OutcomeStale)
		n.log.Warn().Str("event", ev.Name).Str("engagement_id", id).Time("event_time", ev.Time).Msg("stale event starts no recording")
	}
	L.applied[ev.Key] = time.Now()
	L.unlogged[ev.Key] = struct{}{}
	L.batch.keys = append(L.batch.keys, ev.Key)
	if id != "" && eng != nil {
		L.engs[id] = eng
		L.batch.engs[id] = eng
	}
	delete(L.batch.queue, ev.Key)
	L.batch.unqueue[ev.Key] = struct{}{}
	n.count(func(s *NodeStatus) { s.Applied++ })
	return nil
}

// send delivers one command, re-deriving the fencing deadline on each try.
func (L *leader) send(c rcapi.Command) error {
	n := L.n
	for {
		if !L.term.Valid() {
			return cluster.ErrFenced
		}
		sctx, cancel := context.WithDeadline(L.ctx, L.term.Deadline())
		res, err := n.sink.Send(sctx, c)
		cancel()
		switch {
		case err == nil:
			n.count(func(s *NodeStatus) {
				s.Commands++
				if res == rcapi.ResultDuplicate {
					s.Duplicates++
				}
			})
			return nil
		case errors.Is(err, ErrStaleEpoch):
			L.term.Lose(err)
			return err
		case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrRejected):
			n.count(func(s *NodeStatus) { s.Invalid++ })
			n.log.Error().Err(err).Str("action", c.Action).Str("segment_id", c.SegmentID).Str("command_id", c.ID).Msg("recorder refused a command")
			return nil
		case errors.Is(err, context.DeadlineExceeded) && L.ctx.Err() == nil:
			continue // the deadline moved on, or the term is fenced: checked above
		default:
			return err
		}
	}
}

// sendAgent delivers one roster update under the same fencing rules as
// commands.
func (L *leader) sendAgent(u rcapi.AgentUpdate) error {
	for {
		if !L.term.Valid() {
			return cluster.ErrFenced
		}
		sctx, cancel := context.WithDeadline(L.ctx, L.term.Deadline())
		_, err := L.n.sink.SendAgent(sctx, u)
		cancel()
		switch {
		case err == nil:
			L.n.count(func(s *NodeStatus) { s.AgentUpdates++ })
			return nil
		case errors.Is(err, ErrStaleEpoch):
			L.term.Lose(err)
			return err
		case errors.Is(err, ErrRejected), errors.Is(err, ErrInvalidTransition):
			L.n.log.Error().Err(err).Str("agent_id", u.AgentID).Msg("recorder refused an agent update")
			return nil
		case errors.Is(err, context.DeadlineExceeded) && L.ctx.Err() == nil:
			continue
		default:
			return err
		}
	}
}

// Limits of one leader txn: etcd refuses more than 128 operations
// (--max-txn-ops) or a request over 1.5 MiB (--max-request-bytes), and the
// client sends at most 2 MiB. maxQueuedEventBytes keeps an oversized event
// (frames may reach the 1 MiB read limit) out of the handoff queue.
const (
	maxTxnOps           = 120
	maxTxnBytes         = 1 << 20
	maxQueuedEventBytes = 512 << 10
)

// flush writes the batch and waits for it (and for a write already in
// flight): the synchronous form, for promotion and the end of a term.
func (L *leader) flush(ctx context.Context) error {
	if err := L.flushAsync(ctx); err != nil {
		return err
	}
	return L.waitFlush()
}

// flushAsync waits for the write in flight, if any, and then starts writing
// the batch in the background: the loop applies the next events (and sends
// their commands) while etcd commits these. At most one write is in flight,
// so writes land in the loop's order and a state record is never overwritten
// by an older one. Every event of a batch was applied (its commands
// answered) before the batch is handed over, so the log never runs ahead of
// the recorder. ctx bounds the write. The error is that of the write in
// flight: the term ends, and that batch goes back in front of the current
// one, so a final write (or the successor, from its own pending events and
// the recorder's state) still logs it.
func (L *leader) flushAsync(ctx context.Context) error {
	if err := L.waitFlush(); err != nil {
		return err
	}
	if L.batch.empty() {
		return nil
	}
	b := L.batch
	L.batch = newBatch()
	wctx, cancel := context.WithCancel(ctx)
	f := &inflight{b: b, done: make(chan error, 1), landed: make(chan struct{}), cancel: cancel}
	L.inflight = f
	go func() {
		f.done <- L.write(wctx, b)
		close(f.landed)
	}()
	return nil
}

// flushLive is flushAsync for the live loop: waiting for the write in
// flight, it also returns when the term or the node stops (L.ctx), leaving
// that write to the stop, which bounds it.
func (L *leader) flushLive(ctx context.Context) error {
	if f := L.inflight; f != nil {
		select {
		case <-f.landed:
		case <-L.ctx.Done():
			return L.ctx.Err()
		}
	}
	return L.flushAsync(ctx)
}

// waitFlush waits for the write in flight. When it landed, the events it
// logged are forgotten from pending and the queue entries it wrote are
// known to be durable; when it failed, its batch is put back in front of
// the current one (restore).
func (L *leader) waitFlush() error {
	f := L.inflight
	if f == nil {
		return nil
	}
	L.inflight = nil
	err := <-f.done
	f.cancel()
	if err != nil {
		L.restore(f.b)
		// Cancelled (a stop, a lost term) is not etcd failing: a final
		// write may still land.
		L.writeFailed = L.writeFailed || !errors.Is(err, context.Canceled)
		return err
	}
	n := L.n
	for _, key := range f.b.keys {
		delete(n.pending, key)
		delete(L.unlogged, key)
	}
	for key := range f.b.unqueue {
		delete(n.pending, key)
		delete(L.queued, key)
	}
	for key := range f.b.queue {
		L.queued[key] = struct{}{}
	}
	n.count(func(s *NodeStatus) { s.Pending = len(n.pending) })
	return nil
}

// restore merges a batch whose write failed back into the current batch as
// its older part: its events are logged before the current ones, an
// engagement's newer record wins, and its queue entries stay only for
// events still held.
func (L *leader) restore(old batch) {
	cur := L.batch
	nb := newBatch()
	nb.keys = append(append(nb.keys, old.keys...), cur.keys...)
	for id, e := range old.engs {
		nb.engs[id] = e
	}
	for id, e := range cur.engs {
		nb.engs[id] = e
	}
	for key := range old.unqueue {
		nb.unqueue[key] = struct{}{}
	}
	for key := range cur.unqueue {
		nb.unqueue[key] = struct{}{}
	}
	for key, raw := range old.queue {
		if _, held := L.parkedAt[key]; held {
			nb.queue[key] = raw
		}
	}
	for key, raw := range cur.queue {
		nb.queue[key] = raw
	}
	for key := range nb.queue {
		delete(nb.unqueue, key)
	}
	L.batch = nb
}

// unqueuedHeld returns the engagements with an event held back or waiting
// whose handoff queue entry is not known to have landed.
func (L *leader) unqueuedHeld() []string {
	var ids []string
	for id, list := range L.parked {
		for _, ev := range list {
			if _, ok := L.queued[ev.Key]; !ok {
				ids = append(ids, id)
				break
			}
		}
	}
	sort.Strings(ids)
	return ids
}

// inflight is a batch being written: done carries the write's result,
// landed is closed once it is there, cancel aborts the write.
type inflight struct {
	b      batch
	done   chan error
	landed chan struct{}
	cancel context.CancelFunc
}

// write commits one batch in guarded txns of at most maxTxnOps operations
// and maxTxnBytes of keys and values: the state records, then the dedup
// keys, the queue deletions of applied events and the queue entries of
// held events, in that order. A batch of the usual size (BatchSize events
// or queue entries, ≤ 96 ops) fits one txn, so state and log land
// together; a larger one (the promotion's reconciliation, a burst of
// held-back events released at once) is split, and a crash between its
// txns leaves state ahead of the log, where replaying those events yields
// no command that was not already sent. It runs beside the loop: it reads
// only b, whose engagements are never changed once batched (the rules apply
// events to a clone).
func (L *leader) write(ctx context.Context, b batch) error {
	k := L.n.cl.Keys()
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	lease, err := L.term.DedupLease(gctx)
	gcancel()
	if err != nil {
		return err
	}
	type op struct {
		op    clientv3.Op
		bytes int
	}
	build := func(lease clientv3.LeaseID) [][]clientv3.Op {
		ops := make([]op, 0, len(b.engs)+len(b.keys)+len(b.unqueue)+len(b.queue))
		for id, e := range b.engs {
			raw, _ := json.Marshal(e)
			key := k.State(id)
			if e.Closed && !e.Open() {
				ops = append(ops, op{clientv3.OpPut(key, string(raw), clientv3.WithLease(lease)), len(key) + len(raw)})
			} else {
				ops = append(ops, op{clientv3.OpPut(key, string(raw)), len(key) + len(raw)})
			}
		}
		for _, key := range b.keys {
			dk := k.Dedup(key)
			ops = append(ops, op{clientv3.OpPut(dk, L.n.cfg.Name, clientv3.WithLease(lease)), len(dk) + len(L.n.cfg.Name)})
		}
		for key := range b.unqueue {
			hk := k.Handoff(key)
			ops = append(ops, op{clientv3.OpDelete(hk), len(hk)})
		}
		for key, raw := range b.queue {
			hk := k.Handoff(key)
			ops = append(ops, op{clientv3.OpPut(hk, string(raw)), len(hk) + len(raw)})
		}
		var chunks [][]clientv3.Op
		var cur []clientv3.Op
		size := 0
		for _, o := range ops {
			if len(cur) > 0 && (len(cur) == maxTxnOps || size+o.bytes > maxTxnBytes) {
				chunks, cur, size = append(chunks, cur), nil, 0
			}
			cur = append(cur, o.op)
			size += o.bytes
		}
		if len(cur) > 0 {
			chunks = append(chunks, cur)
		}
		return chunks
	}
	chunks, redone := build(lease), false
	for i := 0; i < len(chunks); i++ {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		began := time.Now()
		_, err := L.term.Commit(cctx, chunks[i]...)
		took := time.Since(began)
		cancel()
		if err == nil {
			L.n.txn.Observe(took.Seconds())
		}
		if err != nil && cluster.IsLeaseNotFound(err) && !redone {
			redone = true
			// The dedup lease expired under us: take a new one and redo
			// the whole batch (puts and deletes are idempotent).
			L.term.ForgetDedupLease()
			gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
			lease, err = L.term.DedupLease(gctx)
			gcancel()
			if err != nil {
				return err
			}
			chunks, i = build(lease), -1
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prune forgets closed engagements and applied keys older than the dedup
// window (etcd forgets them by lease at the same age).
func (L *leader) prune() {
	cutoff := time.Now().Add(-L.n.cl.Config().DedupWindow)
	for id, e := range L.engs {
		if e.Closed && !e.Open() && e.ClosedAt.Before(cutoff) {
			delete(L.engs, id)
		}
	}
	for k, at := range L.applied {
		if at.Before(cutoff) {
			delete(L.applied, k)
		}
	}
}
