package recorder

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/rcapi"
)

// MaxBodyBytes is the largest request body the recorder reads; a larger body
// is answered 400 malformed (and recorded in the ledger as malformed).
const MaxBodyBytes = 1 << 20

// Ledger entry kinds (rcapi.LedgerEntry.Kind).
const (
	KindCommand = "command"
	KindAgent   = "agent"
	KindEpoch   = "epoch"
)

// ResultFault is the ledger result of a message answered with an injected
// fault status (FailNext): it was received but neither checked nor applied.
// It is this package's addition to the results listed in rcapi.LedgerEntry.
const ResultFault = "fault"

// ErrCodeFault is the error code in the body of an injected fault reply.
const ErrCodeFault = "injected_fault"

// Recorder is the reference recorder. The zero value is not usable; call New.
// All methods are safe for concurrent use, and every request is applied
// atomically: concurrent requests are serialised in ledger order.
type Recorder struct {
	log     zerolog.Logger
	now     func() time.Time // the recorder clock; time.Now outside tests
	handler http.Handler

	mu         sync.Mutex
	epoch      int64               // highest epoch seen (the fence)
	commandIDs map[string]struct{} // ids of applied commands
	agentIDs   map[string]struct{} // ids of applied agent updates
	segments   map[string]*segment // by segment id; stopped ones stay
	ledger     []rcapi.LedgerEntry // arrival order; entries never change once appended
	failLeft   int                 // pending injected faults
	failStatus int                 // their HTTP status
	failEngs   map[string]int      // engagement id → status every command of it gets (FailEngagement)
	journal    *journal            // the state file (journal.go); nil: memory only
	broken     error               // why the state file can no longer be trusted; then every request gets 503
}

// segment is the recorder's state of one segment.
type segment struct {
	engagementID string
	state        string // rcapi.StateRecording, StatePaused or StateStopped
	pauses       int
	startedAt    time.Time
	epoch        int64 // epoch of the last command applied to the segment
}

// New returns an empty recorder: no segments, fence at epoch 0, empty ledger,
// no pending faults. log receives one Debug line per message and an Info line
// each time the fence rises.
func New(log zerolog.Logger) *Recorder {
	r := &Recorder{
		log:        log.With().Str("component", "recorder").Logger(),
		now:        time.Now,
		commandIDs: make(map[string]struct{}),
		agentIDs:   make(map[string]struct{}),
		segments:   make(map[string]*segment),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/commands", r.handleCommand)
	mux.HandleFunc("POST /v1/agents", r.handleAgent)
	mux.HandleFunc("POST /v1/epoch", r.handleEpoch)
	mux.HandleFunc("GET /v1/recordings", r.handleRecordings)
	mux.HandleFunc("GET /v1/ledger", r.handleLedger)
	mux.HandleFunc("POST /sim/faults", r.handleFaults)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	r.handler = mux
	return r
}

// Handler returns the HTTP handler serving the rcapi endpoints (see package
// rcapi), POST /sim/faults {"fail_next":n,"status":s} (FailNext over HTTP;
// replies with the setting now in force) and GET /healthz. A wrong method
// gets 405, an unknown path 404. The same handler is returned on every call.
func (r *Recorder) Handler() http.Handler { return r.handler }

// Ledger returns a copy of every message received so far, in arrival order,
// with the current fence. The copy shares no memory with the recorder.
func (r *Recorder) Ledger() rcapi.Ledger {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := rcapi.Ledger{Epoch: r.epoch, Entries: make([]rcapi.LedgerEntry, len(r.ledger))}
	for i, e := range r.ledger {
		l.Entries[i] = cloneEntry(e)
	}
	return l
}

// Open returns the open segments (recording or paused), oldest start first
// (ties by segment id). Never nil.
func (r *Recorder) Open() []rcapi.OpenRecording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.openLocked()
}

// FailNext makes the next n POSTs to /v1/commands or /v1/agents fail with the
// given HTTP status, without being checked or applied (they are recorded in
// the ledger with result ResultFault). A status outside 400–599, including 0,
// means 503. n ≤ 0 cancels pending faults. Each call replaces the previous
// setting; it does not add to it.
func (r *Recorder) FailNext(n int, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setFaultsLocked(n, status)
}

// FailEngagement makes every command of engagement id fail, until called
// again with status 0: with that HTTP status (400–599) and an
// injected-fault error body, or, with status 200, a 200 whose body is not a
// result (an unreadable reply). Such a command is neither checked nor
// applied, and is recorded in the ledger with result ResultFault. Other
// engagements' commands, agent updates and GETs are not affected. A status
// outside 200 and 400–599 means 503.
func (r *Recorder) FailEngagement(id string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if status == 0 {
		delete(r.failEngs, id)
		r.log.Info().Str("engagement_id", id).Msg("engagement fault cleared")
		return
	}
	if status != http.StatusOK && (status < 400 || status > 599) {
		status = http.StatusServiceUnavailable
	}
	if r.failEngs == nil {
		r.failEngs = map[string]int{}
	}
	r.failEngs[id] = status
	r.log.Info().Str("engagement_id", id).Int("status", status).Msg("engagement fault set")
}

// engagementFaultLocked is the injected reply to cmd, if its engagement is
// failed (FailEngagement).
func (r *Recorder) engagementFaultLocked(cmd *rcapi.Command) (reply, bool) {
	if cmd == nil {
		return reply{}, false
	}
	status, ok := r.failEngs[cmd.EngagementID]
	if !ok {
		return reply{}, false
	}
	if status == http.StatusOK {
		return reply{http.StatusOK, map[string]string{"outcome": "maybe"}}, true
	}
	return reply{status, rcapi.Error{Error: ErrCodeFault, Message: "injected fault for engagement " + cmd.EngagementID}}, true
}

func (r *Recorder) setFaultsLocked(n, status int) {
	if n < 0 {
		n = 0
	}
	if status < 400 || status > 599 {
		status = http.StatusServiceUnavailable
	}
	r.failLeft, r.failStatus = n, status
	r.log.Info().Int("fail_next", n).Int("status", status).Msg("fault injection set")
}

func (r *Recorder) handleCommand(w http.ResponseWriter, req *http.Request) {
	cmd, err := decodeBody[rcapi.Command](w, req)
	writeJSON(w, r.applyCommand(cmd, err))
}

func (r *Recorder) applyCommand(cmd *rcapi.Command, bodyErr error) reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return r.unavailableLocked()
	}
	entry := rcapi.LedgerEntry{Kind: KindCommand, Command: cmd}
	rep, result := r.decideCommandLocked(cmd, bodyErr)
	entry.Result = result
	if err := r.appendLocked(entry); err != nil {
		return r.unavailableLocked()
	}
	ev := r.log.Debug().Str("result", result)
	if cmd != nil {
		ev = ev.Str("id", cmd.ID).Int64("epoch", cmd.Epoch).Str("node", cmd.Node).
			Str("action", cmd.Action).Str("engagement_id", cmd.EngagementID).Str("segment_id", cmd.SegmentID)
	}
	ev.Msg("command")
	return rep
}

func (r *Recorder) decideCommandLocked(cmd *rcapi.Command, bodyErr error) (reply, string) {
	if rep, ok := r.takeFaultLocked(); ok {
		return rep, ResultFault
	}
	if rep, ok := r.engagementFaultLocked(cmd); ok {
		return rep, ResultFault
	}
	if bodyErr != nil {
		return malformed(bodyErr.Error()), rcapi.ErrCodeMalformed
	}
	if err := validateCommand(cmd); err != nil {
		return malformed(err.Error()), rcapi.ErrCodeMalformed
	}
	if rep, stale := r.fenceLocked(cmd.Epoch, cmd.Node); stale {
		return rep, rcapi.ErrCodeStaleEpoch
	}
	if _, dup := r.commandIDs[cmd.ID]; dup {
		return okReply(rcapi.ResultDuplicate), rcapi.ResultDuplicate
	}
	if err := r.transitionLocked(cmd); err != nil {
		return reply{http.StatusUnprocessableEntity, rcapi.Error{
			Error: rcapi.ErrCodeInvalidTransition, Message: err.Error(),
		}}, rcapi.ErrCodeInvalidTransition
	}
	r.commandIDs[cmd.ID] = struct{}{}
	return okReply(rcapi.ResultApplied), rcapi.ResultApplied
}

func validateCommand(c *rcapi.Command) error {
	var missing []string
	if c.ID == "" {
		missing = append(missing, "id")
	}
	if c.Epoch <= 0 {
		missing = append(missing, "epoch")
	}
	if c.Node == "" {
		missing = append(missing, "node")
	}
	if c.Action == "" {
		missing = append(missing, "action")
	}
	if c.EngagementID == "" {
		missing = append(missing, "engagement_id")
	}
	if c.SegmentID == "" && c.Action != rcapi.ActionTag {
		missing = append(missing, "segment_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing or zero: %s", strings.Join(missing, ", "))
	}
	switch c.Action {
	case rcapi.ActionStart, rcapi.ActionPause, rcapi.ActionResume, rcapi.ActionStop, rcapi.ActionTag:
		return nil
	}
	return fmt.Errorf("unknown action %q", c.Action)
}

// transitionLocked applies cmd to its segment, or returns why it cannot.
func (r *Recorder) transitionLocked(c *rcapi.Command) error {
	if c.Action == rcapi.ActionTag && c.SegmentID == "" {
		return nil // engagement-level tag
	}
	seg, ok := r.segments[c.SegmentID]
	if !ok {
		if c.Action != rcapi.ActionStart {
			return fmt.Errorf("%s on segment %q that was never started", c.Action, c.SegmentID)
		}
		r.segments[c.SegmentID] = &segment{
			engagementID: c.EngagementID,
			state:        rcapi.StateRecording,
			startedAt:    c.At,
			epoch:        c.Epoch,
		}
		return nil
	}
	if seg.engagementID != c.EngagementID {
		return fmt.Errorf("segment %q belongs to engagement %q, not %q", c.SegmentID, seg.engagementID, c.EngagementID)
	}
	next := ""
	switch {
	case c.Action == rcapi.ActionPause && seg.state == rcapi.StateRecording:
		next = rcapi.StatePaused
		seg.pauses++
	case c.Action == rcapi.ActionResume && seg.state == rcapi.StatePaused:
		next = rcapi.StateRecording
	case c.Action == rcapi.ActionStop && seg.state != rcapi.StateStopped:
		next = rcapi.StateStopped
	case c.Action == rcapi.ActionTag && seg.state != rcapi.StateStopped:
		next = seg.state
	default:
		return fmt.Errorf("%s on segment %q in state %s", c.Action, c.SegmentID, seg.state)
	}
	seg.state = next
	seg.epoch = c.Epoch
	return nil
}

func (r *Recorder) handleAgent(w http.ResponseWriter, req *http.Request) {
	au, err := decodeBody[rcapi.AgentUpdate](w, req)
	writeJSON(w, r.applyAgent(au, err))
}

func (r *Recorder) applyAgent(au *rcapi.AgentUpdate, bodyErr error) reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return r.unavailableLocked()
	}
	rep, result := r.decideAgentLocked(au, bodyErr)
	if err := r.appendLocked(rcapi.LedgerEntry{Kind: KindAgent, Result: result, Agent: au}); err != nil {
		return r.unavailableLocked()
	}
	ev := r.log.Debug().Str("result", result)
	if au != nil {
		ev = ev.Str("id", au.ID).Int64("epoch", au.Epoch).Str("node", au.Node).
			Str("agent_id", au.AgentID).Str("state", au.State)
	}
	ev.Msg("agent update")
	return rep
}

func (r *Recorder) decideAgentLocked(au *rcapi.AgentUpdate, bodyErr error) (reply, string) {
	if rep, ok := r.takeFaultLocked(); ok {
		return rep, ResultFault
	}
	if bodyErr != nil {
		return malformed(bodyErr.Error()), rcapi.ErrCodeMalformed
	}
	var missing []string
	if au.ID == "" {
		missing = append(missing, "id")
	}
	if au.Epoch <= 0 {
		missing = append(missing, "epoch")
	}
	if au.Node == "" {
		missing = append(missing, "node")
	}
	if au.AgentID == "" {
		missing = append(missing, "agent_id")
	}
	if len(missing) > 0 {
		return malformed("missing or zero: " + strings.Join(missing, ", ")), rcapi.ErrCodeMalformed
	}
	if rep, stale := r.fenceLocked(au.Epoch, au.Node); stale {
		return rep, rcapi.ErrCodeStaleEpoch
	}
	if _, dup := r.agentIDs[au.ID]; dup {
		return okReply(rcapi.ResultDuplicate), rcapi.ResultDuplicate
	}
	r.agentIDs[au.ID] = struct{}{}
	return okReply(rcapi.ResultApplied), rcapi.ResultApplied
}

func (r *Recorder) handleEpoch(w http.ResponseWriter, req *http.Request) {
	claim, err := decodeBody[rcapi.EpochClaim](w, req)
	writeJSON(w, r.applyClaim(claim, err))
}

func (r *Recorder) applyClaim(claim *rcapi.EpochClaim, bodyErr error) reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken != nil {
		return r.unavailableLocked()
	}
	rep, result := r.decideClaimLocked(claim, bodyErr)
	if err := r.appendLocked(rcapi.LedgerEntry{Kind: KindEpoch, Result: result, Claim: claim}); err != nil {
		return r.unavailableLocked()
	}
	ev := r.log.Debug().Str("result", result)
	if claim != nil {
		ev = ev.Int64("epoch", claim.Epoch).Str("node", claim.Node)
	}
	ev.Msg("epoch claim")
	return rep
}

func (r *Recorder) decideClaimLocked(claim *rcapi.EpochClaim, bodyErr error) (reply, string) {
	if bodyErr != nil {
		return malformed(bodyErr.Error()), rcapi.ErrCodeMalformed
	}
	if claim.Epoch <= 0 || claim.Node == "" {
		return malformed("epoch > 0 and node are required"), rcapi.ErrCodeMalformed
	}
	if claim.Epoch == r.epoch {
		return okReply(rcapi.ResultDuplicate), rcapi.ResultDuplicate
	}
	if rep, stale := r.fenceLocked(claim.Epoch, claim.Node); stale {
		return rep, rcapi.ErrCodeStaleEpoch
	}
	return okReply(rcapi.ResultApplied), rcapi.ResultApplied
}

// fenceLocked rejects an epoch below the fence, else raises the fence to it.
func (r *Recorder) fenceLocked(epoch int64, node string) (reply, bool) {
	if epoch < r.epoch {
		return reply{http.StatusConflict, rcapi.Error{
			Error:   rcapi.ErrCodeStaleEpoch,
			Epoch:   r.epoch,
			Message: fmt.Sprintf("epoch %d is below %d", epoch, r.epoch),
		}}, true
	}
	if epoch > r.epoch {
		r.log.Info().Int64("epoch", epoch).Int64("previous_epoch", r.epoch).Str("node", node).Msg("fence raised")
		r.epoch = epoch
	}
	return reply{}, false
}

// takeFaultLocked consumes one pending fault, if any.
func (r *Recorder) takeFaultLocked() (reply, bool) {
	if r.failLeft <= 0 {
		return reply{}, false
	}
	r.failLeft--
	return reply{r.failStatus, rcapi.Error{
		Error:   ErrCodeFault,
		Message: fmt.Sprintf("injected fault (%d more pending)", r.failLeft),
	}}, true
}

// appendLocked adds e to the ledger, and first to the state file if there
// is one. If that write fails, the recorder is broken from then on (its
// memory holds e's effect, its file does not) and e is not in the ledger.
func (r *Recorder) appendLocked(e rcapi.LedgerEntry) error {
	e.Seq = int64(len(r.ledger)) + 1
	e.ReceivedAt = r.now().UTC()
	if r.journal != nil {
		if err := r.journal.append(e); err != nil {
			r.broken = err
			r.log.Error().Err(err).Msg("state file write failed; answering 503 until restarted")
			return err
		}
	}
	r.ledger = append(r.ledger, e)
	return nil
}

// unavailableLocked is the reply of a recorder whose state file failed or
// was closed.
func (r *Recorder) unavailableLocked() reply {
	return reply{http.StatusServiceUnavailable, rcapi.Error{
		Error: ErrCodeStateUnavailable, Message: "recorder state unavailable: " + r.broken.Error(),
	}}
}

func (r *Recorder) openLocked() []rcapi.OpenRecording {
	out := make([]rcapi.OpenRecording, 0, len(r.segments))
	for id, s := range r.segments {
		if s.state == rcapi.StateStopped {
			continue
		}
		out = append(out, rcapi.OpenRecording{
			SegmentID:    id,
			EngagementID: s.engagementID,
			State:        s.state,
			Pauses:       s.pauses,
			StartedAt:    s.startedAt,
			Epoch:        s.epoch,
		})
	}
	slices.SortFunc(out, func(a, b rcapi.OpenRecording) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.SegmentID, b.SegmentID)
	})
	return out
}

func cloneEntry(e rcapi.LedgerEntry) rcapi.LedgerEntry {
	if e.Command != nil {
		c := *e.Command
		c.Metadata = maps.Clone(c.Metadata)
		e.Command = &c
	}
	if e.Agent != nil {
		a := *e.Agent
		a.Metadata = maps.Clone(a.Metadata)
		e.Agent = &a
	}
	if e.Claim != nil {
		c := *e.Claim
		e.Claim = &c
	}
	return e
}
