package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// Limits of one leader txn. etcd refuses a txn of more than 128 operations
// (--max-txn-ops, default 128) and a request over 1.5 MiB
// (--max-request-bytes, default 1.5 MiB); the client sends at most 2 MiB
// (clientv3.Config.MaxCallSendMsgSize, default 2 MiB). maxTxnBytes counts
// keys and values only, so it stays well below the request limit with the
// txn's own overhead.
const (
	maxTxnOps   = 120
	maxTxnBytes = 1 << 20
)

// Budgets within CommitBatch's ctx: taking the dedup lease, and each txn.
const (
	dedupLeaseBudget = 2 * time.Second
	txnBudget        = 2 * time.Second
)

// CommitBatch writes b as leader, in txns guarded by the term's epoch; see
// protocol.Term.CommitBatch for the contract. The txns hold the state records
// (closed ones under the dedup lease), then the dedup keys (under the dedup
// lease, their value this node's id), then the dead-letter entries, then the
// deletions of queue entries, then the queue entries (under the dedup lease
// too), then the dead-letter deletions, in that order, split at maxTxnOps operations or
// maxTxnBytes of keys and values. A lease-not-found error takes a new dedup
// lease and writes the whole batch again, once.
func (t *Term) CommitBatch(ctx context.Context, b protocol.Batch) error {
	lease, err := t.grantDedupLease(ctx)
	if err != nil {
		return err
	}
	chunks, redone := t.batchTxns(b, lease), false
	for i := 0; i < len(chunks); i++ {
		cctx, cancel := context.WithTimeout(ctx, txnBudget)
		began := time.Now()
		_, err := t.commit(cctx, chunks[i]...)
		took := time.Since(began)
		cancel()
		if err == nil {
			if b.Observe != nil {
				b.Observe(took)
			}
			continue
		}
		if isLeaseNotFound(err) && !redone {
			redone = true
			// The dedup lease expired under us: take a new one and redo
			// the whole batch (puts and deletes are idempotent).
			t.forgetDedupLease()
			if lease, err = t.grantDedupLease(ctx); err != nil {
				return err
			}
			chunks, i = t.batchTxns(b, lease), -1
			continue
		}
		return err
	}
	return nil
}

// batchTxns turns b into the ops of its txns, in b's order, each txn within
// maxTxnOps and maxTxnBytes (an op larger than maxTxnBytes goes alone).
func (t *Term) batchTxns(b protocol.Batch, lease clientv3.LeaseID) [][]clientv3.Op {
	type op struct {
		op    clientv3.Op
		bytes int
	}
	k, node := t.c.keys, t.c.cfg.Node
	ops := make([]op, 0, len(b.States)+len(b.Applied)+len(b.DeadLetters)+len(b.Unqueue)+len(b.Queue)+len(b.ClearDeadLetters))
	for id, s := range b.States {
		key := k.State(id)
		if s.Closed {
			ops = append(ops, op{clientv3.OpPut(key, string(s.JSON), clientv3.WithLease(lease)), len(key) + len(s.JSON)})
		} else {
			ops = append(ops, op{clientv3.OpPut(key, string(s.JSON)), len(key) + len(s.JSON)})
		}
	}
	for _, key := range b.Applied {
		dk := k.Dedup(key)
		ops = append(ops, op{clientv3.OpPut(dk, node, clientv3.WithLease(lease)), len(dk) + len(node)})
	}
	for id, raw := range b.DeadLetters {
		dk := k.DeadLetter(id)
		ops = append(ops, op{clientv3.OpPut(dk, string(raw)), len(dk) + len(raw)})
	}
	for _, key := range b.Unqueue {
		hk := k.Handoff(key)
		ops = append(ops, op{clientv3.OpDelete(hk), len(hk)})
	}
	for key, raw := range b.Queue {
		hk := k.Handoff(key)
		ops = append(ops, op{clientv3.OpPut(hk, string(raw), clientv3.WithLease(lease)), len(hk) + len(raw)})
	}
	for _, id := range b.ClearDeadLetters {
		dk := k.DeadLetter(id)
		ops = append(ops, op{clientv3.OpDelete(dk), len(dk)})
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

// commit runs ops in one etcd transaction guarded by
// CreateRevision(leaderKey) == the term's create revision (DESIGN §4; the
// epoch less its base). It returns
// protocol.ErrFenced without writing when the term is no longer Valid, and
// protocol.ErrNotLeader (ending the term) when the guard fails. ctx bounds
// the call.
func (t *Term) commit(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	if !t.Valid() {
		return nil, protocol.ErrFenced
	}
	resp, err := t.c.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.rev)).
		Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("leader txn: %w", err)
	}
	if !resp.Succeeded {
		t.end(protocol.ErrNotLeader)
		return nil, protocol.ErrNotLeader
	}
	return resp, nil
}

// grantDedupLease is dedupLease within dedupLeaseBudget.
func (t *Term) grantDedupLease(ctx context.Context) (clientv3.LeaseID, error) {
	gctx, cancel := context.WithTimeout(ctx, dedupLeaseBudget)
	defer cancel()
	return t.dedupLease(gctx)
}

// dedupLease returns a lease for dedup records and closed engagements: it
// lives one DedupWindow from its grant, renewed as a sharedLease (a record
// lives between 3/4 and 1 window). ctx bounds a grant.
func (t *Term) dedupLease(ctx context.Context) (clientv3.LeaseID, error) {
	id, err := t.dedup.get(ctx, t.c.client, t.c.cfg.DedupWindow)
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("dedup lease: %w", err)
	}
	return id, nil
}

// forgetDedupLease makes the next dedupLease grant a new lease (after a txn
// failed because the lease was gone).
func (t *Term) forgetDedupLease() { t.dedup.forget() }

// isLeaseNotFound reports whether err says a lease no longer exists.
func isLeaseNotFound(err error) bool { return errors.Is(err, rpctypes.ErrLeaseNotFound) }
