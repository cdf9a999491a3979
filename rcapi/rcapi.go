package rcapi

import "time"

// Actions of a Command.
const (
	ActionStart  = "start"
	ActionPause  = "pause"
	ActionResume = "resume"
	ActionStop   = "stop"
	ActionTag    = "tag"
)

// Results and error codes carried in replies.
const (
	ResultApplied   = "applied"
	ResultDuplicate = "duplicate"

	ErrCodeStaleEpoch        = "stale_epoch"
	ErrCodeInvalidTransition = "invalid_transition"
	ErrCodeMalformed         = "malformed"
)

// Segment states reported by GET /v1/recordings.
const (
	StateRecording = "recording"
	StatePaused    = "paused"
	StateStopped   = "stopped"
)

// Command is one recording-control command (POST /v1/commands).
//
// ID is deterministic: both nodes derive the same ID for the same recording
// fact, so a command re-sent after a failover is a duplicate, not a second
// effect. Epoch is the sender's fencing token (the create revision of its
// etcd election key). At is the time of the triggering Zoom event, in UTC with
// millisecond precision.
type Command struct {
	ID           string            `json:"id"`
	Epoch        int64             `json:"epoch"`
	Node         string            `json:"node"`
	Action       string            `json:"action"`
	EngagementID string            `json:"engagement_id"`
	SegmentID    string            `json:"segment_id"`
	At           time.Time         `json:"at"`
	Event        string            `json:"event"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// AgentUpdate is an agent roster update (POST /v1/agents).
type AgentUpdate struct {
	ID       string            `json:"id"`
	Epoch    int64             `json:"epoch"`
	Node     string            `json:"node"`
	AgentID  string            `json:"agent_id"`
	State    string            `json:"state"`
	At       time.Time         `json:"at"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EpochClaim announces a new leader's epoch (POST /v1/epoch).
type EpochClaim struct {
	Epoch int64  `json:"epoch"`
	Node  string `json:"node"`
}

// Result is the body of a 200 reply.
type Result struct {
	Result string `json:"result"`
}

// Error is the body of a non-200 reply. Epoch is set with stale_epoch: the
// highest epoch the recorder has seen.
type Error struct {
	Error   string `json:"error"`
	Epoch   int64  `json:"epoch,omitempty"`
	Message string `json:"message,omitempty"`
}

// OpenRecording is one open segment in GET /v1/recordings?state=open.
// Pauses counts the pause commands applied to the segment so far.
type OpenRecording struct {
	SegmentID    string    `json:"segment_id"`
	EngagementID string    `json:"engagement_id"`
	State        string    `json:"state"`
	Pauses       int       `json:"pauses"`
	StartedAt    time.Time `json:"started_at"`
	Epoch        int64     `json:"epoch"`
}

// OpenRecordings is the body of GET /v1/recordings?state=open.
type OpenRecordings struct {
	Recordings []OpenRecording `json:"recordings"`
}

// LedgerEntry is one message the recorder received, in arrival order.
// Kind is "command", "agent" or "epoch". Result is applied, duplicate,
// stale_epoch, invalid_transition or malformed. ReceivedAt is the recorder's
// clock when the request arrived.
type LedgerEntry struct {
	Seq        int64        `json:"seq"`
	Kind       string       `json:"kind"`
	Result     string       `json:"result"`
	ReceivedAt time.Time    `json:"received_at"`
	Command    *Command     `json:"command,omitempty"`
	Agent      *AgentUpdate `json:"agent,omitempty"`
	Claim      *EpochClaim  `json:"claim,omitempty"`
}

// Ledger is the body of GET /v1/ledger: every message received, in order,
// with the recorder's current highest epoch.
type Ledger struct {
	Epoch   int64         `json:"epoch"`
	Entries []LedgerEntry `json:"entries"`
}
