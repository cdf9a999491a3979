package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/wait"
)

// Mirror keeps a live copy of the dedup log, the state records and the keys
// of the handoff queue, fed by an etcd watch: the standby's hot view (G5).
// It implements protocol.Mirror. Safe for concurrent use.
type Mirror struct {
	c       *Cluster
	mu      sync.RWMutex
	applied map[string]struct{}
	states  map[string][]byte
	queued  map[string]struct{}
	synced  bool
	broken  bool // the last read or watch failed and has not recovered
}

// NewMirror returns an empty mirror; Run fills it. It does no I/O.
func (c *Cluster) NewMirror() *Mirror {
	return &Mirror{c: c, applied: map[string]struct{}{}, states: map[string][]byte{}, queued: map[string]struct{}{}}
}

// Run reads a snapshot and then follows the watch until ctx ends, re-reading
// after a compaction or a broken watch. It blocks until ctx ends and returns
// ctx.Err().
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
		if err := wait.Sleep(ctx, mirrorWatchRetry); err != nil {
			return err
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
	m.applied, m.states, m.queued, m.synced, m.broken = s.Applied, s.States, queued, true, false
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
			case strings.HasPrefix(key, k.statePrefix()):
				id := key[len(k.statePrefix()):]
				if ev.Type == mvccpb.DELETE {
					delete(m.states, id)
				} else {
					m.states[id] = ev.Kv.Value
				}
			case strings.HasPrefix(key, k.handoffPrefix()):
				id := key[len(k.handoffPrefix()):]
				if ev.Type == mvccpb.DELETE {
					delete(m.queued, id)
				} else {
					m.queued[id] = struct{}{}
				}
			}
		}
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

// Counts returns the number of dedup keys and state records held.
func (m *Mirror) Counts() (applied, states int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.applied), len(m.states)
}
