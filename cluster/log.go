package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Snapshot is the cluster's recording state read at one revision: what a
// newly elected leader starts from (DESIGN §4, promotion).
type Snapshot struct {
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

// Snapshot reads the dedup log, the state records and the handoff queue at
// one revision. ctx bounds the reads.
func (c *Cluster) Snapshot(ctx context.Context) (*Snapshot, error) {
	st, err := c.client.Get(ctx, c.keys.StatePrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	rev := st.Header.Revision
	dd, err := c.client.Get(ctx, c.keys.DedupPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read dedup log: %w", err)
	}
	ho, err := c.client.Get(ctx, c.keys.HandoffPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read handoffs: %w", err)
	}
	s := &Snapshot{Revision: rev, Applied: make(map[string]struct{}, len(dd.Kvs)),
		States: make(map[string][]byte, len(st.Kvs)), Handoffs: make(map[string][]byte, len(ho.Kvs))}
	for _, kv := range dd.Kvs {
		s.Applied[strings.TrimPrefix(string(kv.Key), c.keys.DedupPrefix())] = struct{}{}
	}
	for _, kv := range st.Kvs {
		s.States[strings.TrimPrefix(string(kv.Key), c.keys.StatePrefix())] = kv.Value
	}
	for _, kv := range ho.Kvs {
		s.Handoffs[strings.TrimPrefix(string(kv.Key), c.keys.HandoffPrefix())] = kv.Value
	}
	return s, nil
}

// HandOff gives an event that this node saw, and the leader's log does not
// show, to the leader: it writes handoff/<key> unless dedup/<key> exists.
// It reports whether the event was handed off (false: already applied).
func (c *Cluster) HandOff(ctx context.Context, key string, raw []byte) (bool, error) {
	resp, err := c.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(c.keys.Dedup(key)), "=", 0)).
		Then(clientv3.OpPut(c.keys.Handoff(key), string(raw))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("hand off event: %w", err)
	}
	return resp.Succeeded, nil
}

// Handoff is one event handed to the leader.
type Handoff struct {
	Key string
	Raw []byte
}

// WatchHandoffs sends every handoff written after revision rev to out, until
// ctx ends (then it returns ctx.Err()). It blocks on out: the leader loop is
// its only reader. A broken watch (the member it used lost its leader or
// went away) is resumed from the last revision seen, on whichever member
// the client reaches; after a compaction the queue is re-read whole, so a
// handoff may be delivered twice (the leader's dedup absorbs it). Only ctx
// ends it: whether the caller still leads is the term's business.
func (c *Cluster) WatchHandoffs(ctx context.Context, rev int64, out chan<- Handoff) error {
	send := func(key string, raw []byte) error {
		select {
		case out <- Handoff{Key: strings.TrimPrefix(key, c.keys.HandoffPrefix()), Raw: raw}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		wch := c.client.Watch(clientv3.WithRequireLeader(ctx), c.keys.HandoffPrefix(), clientv3.WithPrefix(),
			clientv3.WithRev(rev+1), clientv3.WithFilterDelete())
		var werr error
		for resp := range wch {
			if werr = resp.Err(); werr != nil {
				break
			}
			for _, ev := range resp.Events {
				if err := send(string(ev.Kv.Key), ev.Kv.Value); err != nil {
					return err
				}
			}
			rev = max(rev, resp.Header.Revision)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Debug().Err(werr).Int64("revision", rev).Msg("handoff watch broken; resuming")
		if errors.Is(werr, rpctypes.ErrCompacted) {
			resp, err := c.client.Get(ctx, c.keys.HandoffPrefix(), clientv3.WithPrefix())
			if err == nil {
				for _, kv := range resp.Kvs {
					if err := send(string(kv.Key), kv.Value); err != nil {
						return err
					}
				}
				rev = resp.Header.Revision
			}
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// DedupLease returns a lease for dedup records and closed engagements: it
// lives one DedupWindow from its grant. A new lease is granted when the
// current one is older than a quarter window, so a record lives between
// 3/4 and 1 window. ctx bounds a grant.
func (t *Term) DedupLease(ctx context.Context) (clientv3.LeaseID, error) {
	t.dedupMu.Lock()
	defer t.dedupMu.Unlock()
	w := t.c.cfg.DedupWindow
	if t.dedupID != clientv3.NoLease && time.Since(t.dedupAt) < w/4 {
		return t.dedupID, nil
	}
	g, err := t.c.client.Grant(ctx, int64(w/time.Second))
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("grant dedup lease: %w", err)
	}
	t.dedupID, t.dedupAt = g.ID, time.Now()
	return g.ID, nil
}

// ForgetDedupLease makes the next DedupLease grant a new lease (after a txn
// failed because the lease was gone).
func (t *Term) ForgetDedupLease() {
	t.dedupMu.Lock()
	t.dedupID = clientv3.NoLease
	t.dedupMu.Unlock()
}

// IsLeaseNotFound reports whether err says a lease no longer exists.
func IsLeaseNotFound(err error) bool { return errors.Is(err, rpctypes.ErrLeaseNotFound) }

// Mirror keeps a live copy of the dedup log, the state records and the keys
// of the handoff queue, fed by an etcd watch: the standby's hot view (G5).
// Safe for concurrent use.
type Mirror struct {
	c       *Cluster
	mu      sync.RWMutex
	applied map[string]struct{}
	states  map[string][]byte
	queued  map[string]struct{}
	rev     int64
	synced  bool
	broken  bool // the last read or watch failed and has not recovered
}

// NewMirror returns an empty mirror; Run fills it.
func (c *Cluster) NewMirror() *Mirror {
	return &Mirror{c: c, applied: map[string]struct{}{}, states: map[string][]byte{}, queued: map[string]struct{}{}}
}

// Run reads a snapshot and then follows the watch until ctx ends, re-reading
// after a compaction or a broken watch. It returns ctx.Err().
func (m *Mirror) Run(ctx context.Context) error {
	for {
		err := m.follow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.mu.Lock()
		m.broken = true
		m.mu.Unlock()
		m.c.log.Debug().Err(err).Msg("mirror watch restarts")
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Mirror) follow(ctx context.Context) error {
	s, err := m.c.Snapshot(ctx)
	if err != nil {
		return err
	}
	queued := make(map[string]struct{}, len(s.Handoffs))
	for key := range s.Handoffs {
		queued[key] = struct{}{}
	}
	m.mu.Lock()
	m.applied, m.states, m.queued, m.rev, m.synced, m.broken = s.Applied, s.States, queued, s.Revision, true, false
	m.mu.Unlock()
	k := m.c.keys
	wch := m.c.client.Watch(clientv3.WithRequireLeader(ctx), k.Root(), clientv3.WithPrefix(), clientv3.WithRev(s.Revision+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		m.mu.Lock()
		for _, ev := range resp.Events {
			key := string(ev.Kv.Key)
			switch {
			case strings.HasPrefix(key, k.DedupPrefix()):
				id := key[len(k.DedupPrefix()):]
				if ev.Type == mvccpb.DELETE {
					delete(m.applied, id)
				} else {
					m.applied[id] = struct{}{}
				}
			case strings.HasPrefix(key, k.StatePrefix()):
				id := key[len(k.StatePrefix()):]
				if ev.Type == mvccpb.DELETE {
					delete(m.states, id)
				} else {
					m.states[id] = ev.Kv.Value
				}
			case strings.HasPrefix(key, k.HandoffPrefix()):
				id := key[len(k.HandoffPrefix()):]
				if ev.Type == mvccpb.DELETE {
					delete(m.queued, id)
				} else {
					m.queued[id] = struct{}{}
				}
			}
		}
		m.rev = resp.Header.Revision
		m.mu.Unlock()
	}
	return errors.New("watch closed")
}

// Applied reports whether the dedup log holds key.
func (m *Mirror) Applied(key string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.applied[key]
	return ok
}

// Queued reports whether the handoff queue holds key: a standby handed the
// event off, or the leader holds it back. Either way the event is durable
// in etcd, and the leader (or its successor) applies it.
func (m *Mirror) Queued(key string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.queued[key]
	return ok
}

// Healthy reports whether the mirror has synced and its watch is not
// broken: the node reaches an etcd member that has a leader.
func (m *Mirror) Healthy() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.synced && !m.broken
}

// Revision is the last etcd revision the mirror has seen (0 before sync).
func (m *Mirror) Revision() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev
}

// Counts returns the number of dedup keys and state records held.
func (m *Mirror) Counts() (applied, states int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.applied), len(m.states)
}

// States returns a copy of the state records.
func (m *Mirror) States() map[string][]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string][]byte, len(m.states))
	for k, v := range m.states {
		out[k] = v
	}
	return out
}
