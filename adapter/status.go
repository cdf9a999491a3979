package adapter

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/zccadapter/zccadapter/events"
)

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
	// RecorderDown: as leader, the recorder answers nothing (a probe after
	// a command's attempts ran out failed); commands are retried. Unlike
	// DeadLetters, which are commands the recorder refuses while it
	// answers others.
	RecorderDown bool `json:"recorder_down"`
	// RecorderState sums the two up for an operator: "ok", "recorder down",
	// or "commands poisoned: N engagements" (suspended or dead-lettered).
	RecorderState string `json:"recorder_state"`
	// DeadLetters: engagements dead-lettered (as leader); Suspended:
	// engagements waiting behind a command whose attempts ran out, not yet
	// judged. DeadLettered counts commands and agent updates parked (or
	// dropped, for agent updates) since start; DeadLetterOverflow events
	// past an entry's bounds (kept in the handoff queue);
	// DeadLettersDropped entries an operator dropped.
	DeadLetters        int   `json:"deadletters"`
	Suspended          int   `json:"engagements_suspended"`
	DeadLettered       int64 `json:"commands_deadlettered"`
	DeadLetterOverflow int64 `json:"deadletter_overflow"`
	DeadLettersDropped int64 `json:"deadletters_dropped"`
	Degraded           bool  `json:"degraded"`
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

	// Recorder replies and refusals (an alert each): Refused counts the
	// commands the recorder refused (422, 400), by action; RecentRefused
	// lists the last MaxRecentRefused of them, oldest first. BadReplies and
	// FenceResets are the sink's counts (SinkCounts). ReconcileUnlisted
	// counts the segments the log showed open at a promotion that the
	// recorder did not list (kept open).
	Refused             map[string]int64 `json:"commands_refused,omitempty"`
	RecentRefused       []RefusedCommand `json:"commands_refused_recent,omitempty"`
	RecorderBadReplies  int64            `json:"recorder_bad_replies"`
	RecorderFenceResets int64            `json:"recorder_fence_resets"`
	ReconcileUnlisted   int64            `json:"reconcile_unlisted_open"`
	// Expired counts the engagements this node, as leader, closed after
	// EngagementIdleTimeout without an event (their end was lost).
	Expired int64 `json:"engagements_expired"`
	// Poison input (quarantine.go, promotion.go). Leader is the node that
	// held the election when this standby last looked (its own name as
	// leader); NoLeader is true when that look found none. PromotionFailures
	// counts promotions that failed (each followed by a backoff), and
	// LastPromotionError says why the last one did. Quarantine is what this
	// node put aside and the cluster's count.
	Leader             string           `json:"leader,omitempty"`
	NoLeader           bool             `json:"no_leader,omitempty"`
	PromotionFailures  int64            `json:"promotion_failures"`
	LastPromotionError string           `json:"last_promotion_error,omitempty"`
	Quarantine         QuarantineStatus `json:"quarantine"`
}

// MaxRecentRefused bounds NodeStatus.RecentRefused.
const MaxRecentRefused = 8

// RefusedCommand is a command the recorder refused (422 invalid
// transition, 400 malformed): nothing happened at the recorder. For a stop
// the recording may still be running. It carries no secret.
type RefusedCommand struct {
	At           time.Time `json:"at"`
	EngagementID string    `json:"engagement_id"`
	SegmentID    string    `json:"segment_id"`
	Action       string    `json:"action"`
	CommandID    string    `json:"command_id"`
	// Reason is the sink's error, scrubbed and truncated.
	Reason string `json:"reason"`
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

// Event outcomes counted per event name (EventCounts).
const (
	OutcomeReceived     = "received"
	OutcomeApplied      = "applied"
	OutcomeDeduplicated = "deduplicated"
	OutcomeHandedOff    = "handed_off"
	OutcomeStale        = "stale"
	OutcomeLate         = "late"
)

// Status returns a snapshot. Safe for concurrent use; it does no I/O
// beyond reading the source's and the sink's own snapshots.
func (n *Node) Status() NodeStatus {
	n.mu.Lock()
	s := n.st
	s.Refused, s.RecentRefused = maps.Clone(s.Refused), slices.Clone(s.RecentRefused)
	s.Quarantine = n.quar.snapshot()
	n.mu.Unlock()
	if c, ok := n.sink.(interface{ Counts() SinkCounts }); ok {
		sc := c.Counts()
		s.RecorderBadReplies, s.RecorderFenceResets = sc.BadReplies, sc.FenceResets
	}
	switch pl := n.pairLeader.Load(); {
	case s.Role == RoleLeader || s.Role == RolePromoting:
		s.Leader = n.cfg.Name
	case pl != nil:
		s.Leader, s.NoLeader = pl.node, pl.node == ""
	}
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
	switch {
	case s.RecorderDown:
		s.RecorderState = "recorder down"
	case s.DeadLetters+s.Suspended > 0:
		s.RecorderState = fmt.Sprintf("commands poisoned: %d engagements", s.DeadLetters+s.Suspended)
	default:
		s.RecorderState = "ok"
	}
	return s
}

// count changes the status under its lock.
func (n *Node) count(f func(*NodeStatus)) {
	n.mu.Lock()
	f(&n.st)
	n.mu.Unlock()
}

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
// [event name, outcome] (OutcomeReceived, …). Safe for concurrent use.
func (n *Node) EventCounts() map[[2]string]int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[[2]string]int64, len(n.byEvent))
	for k, v := range n.byEvent {
		out[k] = v
	}
	return out
}

// sinkHealth is the sink's view of the recorder (OK for sinks that do not
// report health).
func (n *Node) sinkHealth() SinkHealth {
	if h, ok := n.sink.(interface{ Health() SinkHealth }); ok {
		return h.Health()
	}
	return SinkHealth{OK: true}
}
