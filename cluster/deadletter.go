package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/wait"
)

// Errors of the dead-letter operations.
var (
	// ErrNoDeadLetter: the engagement has no dead-letter entry.
	ErrNoDeadLetter = errors.New("cluster: no dead letter for this engagement")
	// ErrDeadLetterChanged: the leader changed the entry (another event
	// parked behind it) between the read and the write; nothing was done.
	// Run the operation again.
	ErrDeadLetterChanged = errors.New("cluster: dead letter changed meanwhile; try again")
)

// DeadLetterEntry is one dead-letter entry as stored.
type DeadLetterEntry struct {
	protocol.DeadLetter
	// Engagement is the entry's engagement id (from its key).
	Engagement string
	// Revision is the entry's mod revision.
	Revision int64
	// Err is why the entry does not decode (then only Engagement and
	// Revision are set).
	Err error
}

// DeadLetters lists the dead-letter entries, by engagement id. An entry that
// does not decode is listed with Err set. ctx bounds the read.
func (c *Cluster) DeadLetters(ctx context.Context) ([]DeadLetterEntry, error) {
	resp, err := c.client.Get(ctx, c.keys.DeadLetterPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	out := make([]DeadLetterEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, c.decodeDeadLetter(kv))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Engagement < out[j].Engagement })
	return out, nil
}

func (c *Cluster) decodeDeadLetter(kv *mvccpb.KeyValue) DeadLetterEntry {
	e := DeadLetterEntry{Engagement: strings.TrimPrefix(string(kv.Key), c.keys.DeadLetterPrefix()), Revision: kv.ModRevision}
	if err := json.Unmarshal(kv.Value, &e.DeadLetter); err != nil {
		e.Err = fmt.Errorf("dead letter of engagement %q: %w", e.Engagement, err)
	} else if len(e.Keys) != len(e.Events) {
		e.Err = fmt.Errorf("dead letter of engagement %q: %d keys for %d events", e.Engagement, len(e.Keys), len(e.Events))
	}
	return e
}

// deadLetter reads one entry; ErrNoDeadLetter when there is none, and the
// entry's decoding error when it does not decode.
func (c *Cluster) deadLetter(ctx context.Context, engagement string) (DeadLetterEntry, error) {
	resp, err := c.client.Get(ctx, c.keys.DeadLetter(engagement))
	if err != nil {
		return DeadLetterEntry{}, fmt.Errorf("read dead letter: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return DeadLetterEntry{}, fmt.Errorf("%w: %q", ErrNoDeadLetter, engagement)
	}
	e := c.decodeDeadLetter(resp.Kvs[0])
	return e, e.Err
}

// RetryDeadLetter moves the engagement's parked events back to the handoff
// queue (handoff/<key>, in the entry's order) and deletes the entry, in one
// txn guarded by the entry's mod revision, so the leader applies them
// through its handoff path, in order, and unblocks the engagement (it
// watches the dead-letter set). Events past the entry's bounds (Overflow)
// are in the queue already. It returns the number of events moved;
// ErrNoDeadLetter, ErrDeadLetterChanged (run it again), an entry's decoding
// error (drop it instead) or etcd's error. ctx bounds the calls.
func (c *Cluster) RetryDeadLetter(ctx context.Context, engagement string) (int, error) {
	e, err := c.deadLetter(ctx, engagement)
	if err != nil {
		return 0, err
	}
	key := c.keys.DeadLetter(engagement)
	ops := make([]clientv3.Op, 0, len(e.Events)+1)
	for i, raw := range e.Events {
		ops = append(ops, clientv3.OpPut(c.keys.Handoff(e.Keys[i]), string(raw)))
	}
	ops = append(ops, clientv3.OpDelete(key))
	resp, err := c.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", e.Revision)).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("retry dead letter: %w", err)
	}
	if !resp.Succeeded {
		return 0, ErrDeadLetterChanged
	}
	return len(e.Events), nil
}

// DropDeadLetter deletes the engagement's entry, guarded by its mod
// revision: its events are abandoned (the leader logs them as applied
// without sending their commands, and forgets the later events it held
// past the entry's bounds). A stop among them may then never reach the
// recorder. It returns the entry dropped; ErrNoDeadLetter,
// ErrDeadLetterChanged or etcd's error. An entry that does not decode is
// dropped too. ctx bounds the calls.
func (c *Cluster) DropDeadLetter(ctx context.Context, engagement string) (DeadLetterEntry, error) {
	e, err := c.deadLetter(ctx, engagement)
	if e.Revision == 0 { // not read; an entry that does not decode has one
		return e, err
	}
	key := c.keys.DeadLetter(engagement)
	resp, err := c.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", e.Revision)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return e, fmt.Errorf("drop dead letter: %w", err)
	}
	if !resp.Succeeded {
		return e, ErrDeadLetterChanged
	}
	return e, nil
}

// deadLetterWatchRetry is how long a broken dead-letter watch waits before
// it is resumed.
const deadLetterWatchRetry = 200 * time.Millisecond

// WatchDeadLetters sends every removal of a dead-letter entry after
// revision rev to out, until ctx ends (then it returns ctx.Err()). A removal
// is a retry when the first of the entry's events is in the handoff queue at
// the removal's revision (RetryDeadLetter puts it there in the same txn),
// else a drop. It blocks on out; a broken watch is resumed from the last
// revision seen; after a compaction it goes on from the current revision
// (a retry or drop missed then is seen by the next leader, which loads the
// set at promotion).
func (c *Cluster) WatchDeadLetters(ctx context.Context, rev int64, out chan<- protocol.DeadLetterRemoved) error {
	prefix := c.keys.DeadLetterPrefix()
	for {
		wch := c.client.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(),
			clientv3.WithRev(rev+1), clientv3.WithFilterPut(), clientv3.WithPrevKV())
		var werr error
		for resp := range wch {
			if werr = resp.Err(); werr != nil {
				break
			}
			for _, ev := range resp.Events {
				r, err := c.removal(ctx, ev)
				if err != nil {
					return err
				}
				select {
				case out <- r:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			rev = max(rev, resp.Header.Revision)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Debug().Err(werr).Int64("revision", rev).Msg("dead-letter watch broken; resuming")
		if errors.Is(werr, rpctypes.ErrCompacted) {
			if resp, err := c.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err == nil {
				c.log.Warn().Int64("revision", rev).Msg("dead-letter watch compacted: a retry or drop in between is seen by the next leader")
				rev = resp.Header.Revision
			}
		}
		if err := wait.Sleep(ctx, deadLetterWatchRetry); err != nil {
			return err
		}
	}
}

// removal tells a retry from a drop (see WatchDeadLetters); it reads the
// handoff queue at the deletion's revision, retrying until it can or ctx
// ends.
func (c *Cluster) removal(ctx context.Context, ev *clientv3.Event) (protocol.DeadLetterRemoved, error) {
	r := protocol.DeadLetterRemoved{Engagement: strings.TrimPrefix(string(ev.Kv.Key), c.keys.DeadLetterPrefix())}
	if ev.PrevKv == nil {
		return r, nil
	}
	var d protocol.DeadLetter
	if json.Unmarshal(ev.PrevKv.Value, &d) != nil || len(d.Keys) == 0 {
		return r, nil
	}
	for {
		resp, err := c.client.Get(ctx, c.keys.Handoff(d.Keys[0]), clientv3.WithRev(ev.Kv.ModRevision), clientv3.WithCountOnly())
		if err == nil {
			r.Retried = resp.Count > 0
			return r, nil
		}
		if err := wait.Sleep(ctx, deadLetterWatchRetry); err != nil {
			return r, err
		}
	}
}
