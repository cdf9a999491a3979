package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/wait"
)

// Snapshot reads the dedup log, the state records, the handoff queue and the
// dead-letter set at one revision. ctx bounds the reads.
func (c *Cluster) Snapshot(ctx context.Context) (*protocol.Snapshot, error) {
	st, err := c.client.Get(ctx, c.keys.statePrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	rev := st.Header.Revision
	dd, err := c.client.Get(ctx, c.keys.DedupPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read dedup log: %w", err)
	}
	ho, err := c.client.Get(ctx, c.keys.handoffPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read handoffs: %w", err)
	}
	dl, err := c.client.Get(ctx, c.keys.DeadLetterPrefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	s := &protocol.Snapshot{Revision: rev, Applied: make(map[string]struct{}, len(dd.Kvs)),
		States: make(map[string][]byte, len(st.Kvs)), Handoffs: make(map[string][]byte, len(ho.Kvs)),
		DeadLetters: make(map[string][]byte, len(dl.Kvs))}
	for _, kv := range dd.Kvs {
		s.Applied[strings.TrimPrefix(string(kv.Key), c.keys.DedupPrefix())] = struct{}{}
	}
	for _, kv := range st.Kvs {
		s.States[strings.TrimPrefix(string(kv.Key), c.keys.statePrefix())] = kv.Value
	}
	for _, kv := range ho.Kvs {
		s.Handoffs[strings.TrimPrefix(string(kv.Key), c.keys.handoffPrefix())] = kv.Value
	}
	for _, kv := range dl.Kvs {
		s.DeadLetters[strings.TrimPrefix(string(kv.Key), c.keys.DeadLetterPrefix())] = kv.Value
	}
	return s, nil
}

// HandOff gives an event that this node saw, and the leader's log does not
// show, to the leader: it writes handoff/<key> unless dedup/<key> exists,
// in one txn. The entry is put under a lease of one dedup window (shared
// by this node's handoffs, renewed every quarter window), so an entry no
// leader takes — one no leader can read — is forgotten with the dedup log
// instead of staying for ever. It reports whether the event was handed off
// (false: already applied). ctx bounds the call.
func (c *Cluster) HandOff(ctx context.Context, key string, raw []byte) (bool, error) {
	for attempt := 0; ; attempt++ {
		lease, err := c.handoffLease.get(ctx, c.client, c.cfg.DedupWindow)
		if err != nil {
			return false, fmt.Errorf("hand off event: %w", err)
		}
		resp, err := c.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(c.keys.Dedup(key)), "=", 0)).
			Then(clientv3.OpPut(c.keys.Handoff(key), string(raw), clientv3.WithLease(lease))).
			Commit()
		if isLeaseNotFound(err) && attempt == 0 {
			c.handoffLease.forget()
			continue
		}
		if err != nil {
			return false, fmt.Errorf("hand off event: %w", err)
		}
		return resp.Succeeded, nil
	}
}

// handoffWatchRetry and mirrorWatchRetry are how long a broken watch (handoffs, mirror) waits before it
// is resumed.
const (
	handoffWatchRetry = 100 * time.Millisecond
	mirrorWatchRetry  = 200 * time.Millisecond
)

// WatchHandoffs sends every handoff written after revision rev to out, until
// ctx ends (then it returns ctx.Err()). It blocks on out: the leader loop is
// its only reader. A broken watch (the member it used lost its leader or
// went away) is resumed from the last revision seen, on whichever member
// the client reaches; after a compaction the queue is re-read whole, so a
// handoff may be delivered twice (the leader's dedup absorbs it). Only ctx
// ends it: whether the caller still leads is the term's business.
func (c *Cluster) WatchHandoffs(ctx context.Context, rev int64, out chan<- protocol.Handoff) error {
	prefix := c.keys.handoffPrefix()
	send := func(key string, raw []byte) error {
		select {
		case out <- protocol.Handoff{Key: strings.TrimPrefix(key, prefix), Raw: raw}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		wch := c.client.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(),
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
			resp, err := c.client.Get(ctx, prefix, clientv3.WithPrefix())
			if err == nil {
				for _, kv := range resp.Kvs {
					if err := send(string(kv.Key), kv.Value); err != nil {
						return err
					}
				}
				rev = resp.Header.Revision
			}
		}
		if err := wait.Sleep(ctx, handoffWatchRetry); err != nil {
			return err
		}
	}
}
