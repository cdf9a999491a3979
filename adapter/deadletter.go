package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/events"
	"github.com/zccadapter/zccadapter/rcapi"
	"github.com/zccadapter/zccadapter/redact"
	"github.com/zccadapter/zccadapter/wait"
)

// Dead letters (DESIGN §4). A command the recorder keeps refusing with a
// retryable answer (5xx, an unreadable 200) is tried at most MaxAttempts
// times in a row. Then the recorder is probed (GET /v1/recordings): if it
// answers nothing, it is down and the command is tried again, round after
// round, as long as the term lasts (nothing can be recorded anyway, and
// order matters more). If it answers, the command's engagement is
// suspended: its event and every later event of the engagement wait behind
// it, in order, queued in etcd (the handoff queue), while the other
// engagements go on. A suspended engagement is tried again after
// suspendRetry; if that round fails too while a command or agent update of
// another engagement succeeded in between, the command is poisoned and the
// engagement is dead-lettered: its events move from the handoff queue into
// its entry <root>deadletter/<engagement> (protocol.DeadLetter), which
// outlives the term, until an operator retries or drops it.
//
// The cost to the other engagements: one round of a poisoned command holds
// the loop for MaxAttempts attempts, each answered at once or cut by the
// recorder request timeout, with the sink's backoff between them (50 ms
// doubling, full jitter, at most 2 s): with 6 attempts answered 503 at
// once, at most 1.55 s per round; a recorder that times out every attempt,
// 6 × 2 s + 1.55 s. A poisoned engagement costs two rounds, then nothing.

// suspendRetry is when a suspended engagement is tried again: 2 s after
// its first round ran out, doubling up to 30 s while no verdict comes.
var suspendRetry = wait.Backoff{Min: 2 * time.Second, Max: 30 * time.Second}

// probeBudget bounds the recorder probe after a round ran out.
const probeBudget = 2 * time.Second

// maxDeadLetterBody bounds the recorder's reply body in a reason and a log.
const maxDeadLetterBody = 256

// attemptsKey is the context key of WithAttemptLimit.
type attemptsKey struct{}

// WithAttemptLimit returns ctx carrying a bound on the attempts a Sink makes
// at one call (HTTPSink honours it): past n attempts whose outcome was
// unknown or transient it returns an *ExhaustedError. n ≤ 0 means no bound.
func WithAttemptLimit(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptsKey{}, n)
}

// attemptLimit returns ctx's attempt limit (0: none).
func attemptLimit(ctx context.Context) int {
	n, _ := ctx.Value(attemptsKey{}).(int)
	return n
}

// ExhaustedError says that a call's attempts ran out (WithAttemptLimit):
// every one was answered with a retryable failure. Last is the last one's
// error (an *rcapi.StatusError, an *rcapi.ReplyError, a transport error).
type ExhaustedError struct {
	Attempts int
	Last     error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("recorder: %d attempts failed: %v", e.Attempts, e.Last)
}

func (e *ExhaustedError) Unwrap() error { return e.Last }

// errSuspended is returned by send when the command's engagement was
// suspended (its attempts ran out while the recorder answers).
type errSuspended struct {
	x     *ExhaustedError
	since time.Time // the first attempt of the rounds
}

func (e *errSuspended) Error() string { return "engagement suspended: " + e.x.Error() }

// reasonOf describes an exhausted command for the entry and the log:
// status (0 when not an HTTP error) and text, redacted and bounded.
func reasonOf(c rcapi.Command, x *ExhaustedError) (int, string) {
	what := fmt.Sprintf("%s on segment %s (command %s)", c.Action, c.SegmentID, c.ID)
	var se *rcapi.StatusError
	if errors.As(x.Last, &se) {
		body := redact.Truncate(redact.Text(se.Body), maxDeadLetterBody)
		return se.Status, redact.Truncate(fmt.Sprintf("%s: HTTP %d: %s", what, se.Status, body), protocol.MaxDeadLetterReason)
	}
	msg := redact.Error(x.Last).Error()
	return 0, redact.Truncate(fmt.Sprintf("%s: %s", what, msg), protocol.MaxDeadLetterReason)
}

// heldEvent is one event a blocked engagement holds.
type heldEvent struct {
	key string
	raw []byte
	ev  *events.Event // nil when raw no longer parses (loaded from etcd)
}

// blocked is an engagement whose events wait behind a command the recorder
// kept refusing: suspended (in memory and the handoff queue) or dead
// (dead-lettered in etcd).
type blocked struct {
	dead   bool
	events []heldEvent // in order; the first is the one whose command failed
	// inEntry counts the events the dead-letter entry carries (a prefix of
	// events); the others wait in the handoff queue (overflow).
	inEntry     int
	bytes       int
	status      int
	reason      string
	firstFailed time.Time
	attempts    int
	rounds      int
	exhausted   time.Time // when the last round ran out
	retryAt     time.Time // when a suspended engagement is tried again
}

// held reports whether key is an event a blocked engagement holds, and
// whether the dead-letter entry carries it.
func (L *leader) held(key string) (held, inEntry bool) {
	id, ok := L.blockedKeys[key]
	if !ok {
		return false, false
	}
	b := L.blocked[id]
	for i := 0; i < b.inEntry; i++ {
		if b.events[i].key == key {
			return true, true
		}
	}
	return true, false
}

// suspend blocks engagement id behind ev, whose command c ran out of
// attempts while the recorder answers; on a second round that failed while
// another engagement's command succeeded, it dead-letters the engagement.
func (L *leader) suspend(id string, ev *events.Event, c rcapi.Command, s *errSuspended) {
	now := time.Now()
	b := &blocked{events: []heldEvent{{key: ev.Key, raw: ev.Raw, ev: ev}}, firstFailed: s.since, attempts: s.x.Attempts}
	if prev := L.retrying[id]; prev != nil {
		b.firstFailed, b.attempts, b.rounds = prev.firstFailed, prev.attempts+s.x.Attempts, prev.rounds+1
		b.exhausted = prev.exhausted
	}
	b.status, b.reason = reasonOf(c, s.x)
	poisoned := b.rounds > 0 && L.lastOK.After(b.exhausted)
	b.exhausted = now
	b.retryAt = now.Add(suspendRetry.Delay(b.rounds))
	L.blocked[id] = b
	L.blockedKeys[ev.Key] = id
	L.queueHeld(ev.Key, ev.Raw)
	if poisoned {
		L.deadLetter(id, b)
	} else {
		L.log.Warn().Str("engagement_id", id).Int("attempts", b.attempts).Str("reason", b.reason).Dur("retry_in", b.retryAt.Sub(now)).
			Msg("recorder keeps refusing a command while it answers: engagement suspended, its later events wait behind it")
	}
	L.countBlocked()
}

// queueHeld puts a held event in the handoff queue with the next write
// (unless too large: then it is held in memory only).
func (L *leader) queueHeld(key string, raw []byte) {
	delete(L.batch.unqueue, key)
	if len(raw) > maxQueuedEventBytes {
		L.log.Warn().Int("bytes", len(raw)).Msg("event too large for the handoff queue: held in memory only")
		return
	}
	L.batch.queue[key] = raw
}

// unqueueHeld deletes a held event's handoff entry with the next write.
func (L *leader) unqueueHeld(key string) {
	delete(L.batch.queue, key)
	L.batch.unqueue[key] = struct{}{}
}

// holdBehind puts ev behind its blocked engagement, in order.
func (L *leader) holdBehind(id string, ev *events.Event) {
	b := L.blocked[id]
	if _, dup := L.blockedKeys[ev.Key]; dup {
		return
	}
	b.events = append(b.events, heldEvent{key: ev.Key, raw: ev.Raw, ev: ev})
	L.blockedKeys[ev.Key] = id
	if !b.dead {
		L.queueHeld(ev.Key, ev.Raw)
		return
	}
	if L.fitsEntry(b, len(ev.Raw)) {
		b.inEntry++
		b.bytes += len(ev.Raw)
		L.unqueueHeld(ev.Key)
		L.putEntry(id, b)
		return
	}
	L.queueHeld(ev.Key, ev.Raw)
	L.n.count(func(s *NodeStatus) { s.DeadLetterOverflow++ })
	L.log.Error().Str("engagement_id", id).Str("event", ev.Name).Int("events", len(b.events)).
		Msg("dead letter full: a later event of the engagement waits in the handoff queue behind it")
}

// fitsEntry reports whether one more event of size bytes goes into b's
// entry (after an overflow none does: the entry stays a prefix).
func (L *leader) fitsEntry(b *blocked, size int) bool {
	return b.inEntry == len(b.events)-1 && b.inEntry < protocol.MaxDeadLetterEvents &&
		b.bytes+size <= protocol.MaxDeadLetterBytes
}

// deadLetter turns suspended b into a dead letter: its events (within the
// bounds) move from the handoff queue into its entry, with the next write.
func (L *leader) deadLetter(id string, b *blocked) {
	b.dead, b.inEntry, b.bytes = true, 0, 0
	for i, h := range b.events {
		if i > 0 && (b.inEntry >= protocol.MaxDeadLetterEvents || b.bytes+len(h.raw) > protocol.MaxDeadLetterBytes) {
			break // the rest stay in the handoff queue
		}
		b.inEntry++
		b.bytes += len(h.raw)
		L.unqueueHeld(h.key)
	}
	L.putEntry(id, b)
	L.n.count(func(s *NodeStatus) { s.DeadLettered++ })
	L.log.Error().Str("engagement_id", id).Int("status", b.status).Str("reason", b.reason).Int("attempts", b.attempts).
		Int("events", len(b.events)).Time("first_failed", b.firstFailed).
		Msg("the recorder refuses a command while it takes others: engagement dead-lettered, its events wait behind it " +
			"(zccadapter deadletter list; retry or drop)")
}

// putEntry writes b's entry with the next write.
func (L *leader) putEntry(id string, b *blocked) {
	d := protocol.DeadLetter{Engagement: id, Reason: b.reason, Status: b.status, FirstFailed: b.firstFailed.UTC(),
		Attempts: b.attempts, Overflow: len(b.events) - b.inEntry}
	for _, h := range b.events[:b.inEntry] {
		d.Events = append(d.Events, json.RawMessage(h.raw))
		d.Keys = append(d.Keys, h.key)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		// Every held event parsed as JSON; keep the engagement blocked
		// in memory and in the queue.
		L.log.Error().Err(err).Str("engagement_id", id).Msg("dead letter not encodable; its events stay in the handoff queue")
		for _, h := range b.events[:b.inEntry] {
			L.queueHeld(h.key, h.raw)
		}
		return
	}
	delete(L.batch.clearDead, id)
	L.batch.deadLetters[id] = raw
}

// countBlocked publishes the number of suspended and dead-lettered
// engagements.
func (L *leader) countBlocked() {
	dead := 0
	for _, b := range L.blocked {
		if b.dead {
			dead++
		}
	}
	L.n.count(func(s *NodeStatus) { s.DeadLetters, s.Suspended = dead, len(L.blocked)-dead })
}

// unblock forgets engagement id's block and returns its events.
func (L *leader) unblock(id string) *blocked {
	b := L.blocked[id]
	if b == nil {
		return nil
	}
	delete(L.blocked, id)
	for _, h := range b.events {
		delete(L.blockedKeys, h.key)
	}
	L.countBlocked()
	return b
}

// retrySuspended tries again, in order, the events of every suspended
// engagement whose time has come.
func (L *leader) retrySuspended() error {
	now := time.Now()
	for id, b := range L.blocked {
		if b.dead || now.Before(b.retryAt) {
			continue
		}
		if err := L.replay(id, b); err != nil {
			return err
		}
	}
	return nil
}

// replay unblocks engagement id and processes its events in order; one that
// fails again blocks the engagement anew (with b's history when b is a
// suspension being retried).
func (L *leader) replay(id string, b *blocked) error {
	L.unblock(id)
	if !b.dead {
		L.retrying[id] = b
		defer delete(L.retrying, id)
	}
	for _, h := range b.events {
		if h.ev == nil {
			L.log.Error().Str("engagement_id", id).Str("key", h.key).Msg("dead-lettered event no longer parses; abandoned")
			L.abandon(h.key)
			continue
		}
		if err := L.process(h.ev); err != nil {
			return err
		}
	}
	return nil
}

// abandon logs key as applied without applying it (a dropped dead letter):
// it is never applied later.
func (L *leader) abandon(key string) {
	if _, done := L.applied[key]; done {
		return
	}
	L.applied[key] = time.Now()
	L.unlogged[key] = struct{}{}
	L.batch.keys = append(L.batch.keys, key)
	L.unqueueHeld(key)
}

// deadLetterRemoved acts on an operator's retry or drop of an entry.
func (L *leader) deadLetterRemoved(r protocol.DeadLetterRemoved) error {
	b := L.blocked[r.Engagement]
	if b == nil || !b.dead {
		return nil
	}
	// A put of this leader may have written the entry again after the
	// operator's txn: delete it once more.
	delete(L.batch.deadLetters, r.Engagement)
	L.batch.clearDead[r.Engagement] = struct{}{}
	if r.Retried {
		L.log.Warn().Str("engagement_id", r.Engagement).Int("events", len(b.events)).Msg("dead letter retried by an operator")
		return L.replay(r.Engagement, b)
	}
	L.unblock(r.Engagement)
	for _, h := range b.events {
		L.abandon(h.key)
	}
	L.n.count(func(s *NodeStatus) { s.DeadLettersDropped++ })
	L.log.Error().Str("engagement_id", r.Engagement).Int("events", len(b.events)).Str("reason", b.reason).
		Msg("dead letter dropped by an operator: its events are abandoned; check the recorder for a recording left open")
	return nil
}

// loadDeadLetters takes the snapshot's dead-letter set as this term's
// blocked engagements. An entry that does not decode is left in etcd and
// reported (the operator drops it); its engagement is not blocked.
func (L *leader) loadDeadLetters(set map[string][]byte) {
	L.blocked, L.blockedKeys, L.retrying = map[string]*blocked{}, map[string]string{}, map[string]*blocked{}
	for id, raw := range set {
		var d protocol.DeadLetter
		if err := json.Unmarshal(raw, &d); err != nil || len(d.Keys) != len(d.Events) || len(d.Events) == 0 {
			L.log.Error().Str("engagement_id", id).Msg("dead letter unreadable; not blocking its engagement (zccadapter deadletter drop)")
			continue
		}
		b := &blocked{dead: true, reason: d.Reason, status: d.Status, firstFailed: d.FirstFailed, attempts: d.Attempts}
		for i, e := range d.Events {
			h := heldEvent{key: d.Keys[i], raw: []byte(e)}
			if ev, err := events.Parse(h.raw); err == nil {
				h.ev = ev
			}
			b.events = append(b.events, h)
			b.bytes += len(h.raw)
			L.blockedKeys[h.key] = id
		}
		b.inEntry = len(b.events)
		L.blocked[id] = b
	}
	L.countBlocked()
}
