package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// maxQueuedEventBytes keeps an oversized event (frames may reach the 1 MiB
// read limit) out of the handoff queue: the cluster writes a batch in txns
// of at most 1 MiB of keys and values (etcd refuses a request over
// 1.5 MiB).
const maxQueuedEventBytes = 512 << 10

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
	maps.Copy(nb.engs, old.engs)
	maps.Copy(nb.engs, cur.engs)
	maps.Copy(nb.unqueue, old.unqueue)
	maps.Copy(nb.unqueue, cur.unqueue)
	for key, raw := range old.queue {
		_, parked := L.parkedAt[key]
		if held, inEntry := L.held(key); parked || held && !inEntry {
			nb.queue[key] = raw
		}
	}
	maps.Copy(nb.queue, cur.queue)
	for key := range nb.queue {
		delete(nb.unqueue, key)
	}
	// Dead letters: the current batch's entry is the newer one; an entry
	// of an engagement no longer dead-lettered is not written again.
	for id, raw := range old.deadLetters {
		if b := L.blocked[id]; b != nil && b.dead {
			nb.deadLetters[id] = raw
		}
	}
	maps.Copy(nb.deadLetters, cur.deadLetters)
	maps.Copy(nb.clearDead, old.clearDead)
	maps.Copy(nb.clearDead, cur.clearDead)
	for id := range nb.deadLetters {
		delete(nb.clearDead, id)
	}
	L.batch = nb
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
	// deadLetters are dead-letter entries to put (protocol.DeadLetter,
	// JSON) by engagement id; clearDead those to delete (never both).
	deadLetters map[string][]byte
	clearDead   map[string]struct{}
}

func newBatch() batch {
	return batch{engs: map[string]*Engagement{}, unqueue: map[string]struct{}{}, queue: map[string][]byte{},
		deadLetters: map[string][]byte{}, clearDead: map[string]struct{}{}}
}

// size counts the events a batch logs or queues, and its dead letters.
func (b *batch) size() int { return len(b.keys) + len(b.queue) + len(b.deadLetters) }

// empty reports whether a write of b would change nothing.
func (b *batch) empty() bool {
	return len(b.keys) == 0 && len(b.engs) == 0 && len(b.unqueue) == 0 && len(b.queue) == 0 &&
		len(b.deadLetters) == 0 && len(b.clearDead) == 0
}

// inflight is a batch being written: done carries the write's result,
// landed is closed once it is there, cancel aborts the write.
type inflight struct {
	b      batch
	done   chan error
	landed chan struct{}
	cancel context.CancelFunc
}

// write commits one batch through the term's CommitBatch: the state
// records (a closed engagement's under the dedup lease), then the dedup
// keys, the queue deletions of applied events and the queue entries of held
// events, in that order, each txn guarded by the term's epoch. A batch of
// the usual size (BatchSize events or queue entries, ≤ 96 ops) fits one
// txn, so state and log land together; a larger one (the promotion's
// reconciliation, a burst of held-back events released at once) is split
// by the cluster, and a crash between its txns leaves state ahead of the
// log, where replaying those events yields no command that was not already
// sent. Each committed txn's latency goes to the node's txn histogram. It
// returns an engagement's encoding error without writing, else
// CommitBatch's error. It runs beside the loop: it reads only b, whose
// engagements are never changed once batched (the rules apply events to a
// clone).
func (L *leader) write(ctx context.Context, b batch) error {
	pb := protocol.Batch{
		States:  make(map[string]protocol.StateRecord, len(b.engs)),
		Applied: b.keys,
		Unqueue: make([]string, 0, len(b.unqueue)),
		Queue:   b.queue,
		// An entry is put whole; the map is not changed once batched.
		DeadLetters: b.deadLetters,
		Observe:     func(took time.Duration) { L.n.txn.Observe(took.Seconds()) },
	}
	for id, e := range b.engs {
		raw, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode the state of engagement %s: %w", id, err)
		}
		pb.States[id] = protocol.StateRecord{JSON: raw, Closed: e.Closed && !e.Open()}
	}
	for key := range b.unqueue {
		pb.Unqueue = append(pb.Unqueue, key)
	}
	for id := range b.clearDead {
		pb.ClearDeadLetters = append(pb.ClearDeadLetters, id)
	}
	return L.term.CommitBatch(ctx, pb)
}

// prune forgets closed engagements and applied keys older than the dedup
// window at now (etcd forgets them by lease at about the same age). A
// closed engagement's age runs from ClosedAt (its end event's time, or the
// expiry's), an applied key's from when this node learnt it; both on the
// node's clock (NodeConfig.Now) when this node set them.
func (L *leader) prune(now time.Time) {
	cutoff := now.Add(-L.n.cl.Settings().DedupWindow)
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
