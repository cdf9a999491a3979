package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The epoch generation.
//
// A term's epoch is the epoch base (the integer under <root>epoch-base, 0 when
// the key is absent) plus the create revision of the leader's election key.
// The etcd write guard keeps comparing the create revision itself; only the
// recorder sees the sum.
//
// The base exists for one recovery: an etcd restored from a backup (or
// rebuilt) has revisions lower than the epochs the recorder has already
// seen, and would otherwise be refused for good as stale (G3). BumpEpoch
// raises the base above the recorder's fence. The base only ever rises, and
// a term reads it in the same read that verifies its leadership, so epochs
// stay monotonic across terms: term k+1's verifying read comes after term
// k's key was deleted, which comes after term k's verifying read, so it sees
// a base at least as high, and a higher create revision.

// maxEpochAbove bounds BumpEpoch's argument (and so the base), far from
// int64 overflow when revisions are added to it.
const maxEpochAbove = math.MaxInt64 / 4

// errEpochBase is returned when the epoch base in etcd is not a
// non-negative decimal integer.
var errEpochBase = errors.New("cluster: epoch base unreadable")

// parseEpochBase decodes the base from the key's kvs (none: 0).
func parseEpochBase(kvs []*mvccpb.KeyValue) (int64, error) {
	if len(kvs) == 0 {
		return 0, nil
	}
	b, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
	if err != nil || b < 0 || b > maxEpochAbove {
		return 0, fmt.Errorf("%w: %q", errEpochBase, kvs[0].Value)
	}
	return b, nil
}

// EpochBase returns the current epoch base (0 when never raised). ctx
// bounds the read.
func (c *Cluster) EpochBase(ctx context.Context) (int64, error) {
	resp, err := c.client.Get(ctx, c.keys.epochBase())
	if err != nil {
		return 0, fmt.Errorf("read epoch base: %w", err)
	}
	return parseEpochBase(resp.Kvs)
}

// BumpEpoch raises the epoch base, if needed, so that every term of a
// Campaign that begins after BumpEpoch returns has an epoch above `above`
// (and above every earlier epoch: the base never falls). Use it when the
// recorder refuses the cluster's epochs as stale because etcd was restored
// from a backup: `above` is the recorder's fence (the epoch in its 409
// stale_epoch reply). A term that already leads keeps its epoch; the
// recorder refuses it and the node campaigns again.
//
// It returns the base in force afterwards and whether it wrote it. It is a
// compare-and-swap, safe beside running nodes and another BumpEpoch. ctx
// bounds the calls. above must be in [0, MaxInt64/4].
func (c *Cluster) BumpEpoch(ctx context.Context, above int64) (base int64, raised bool, err error) {
	if above < 0 || above > maxEpochAbove {
		return 0, false, fmt.Errorf("cluster: bump epoch: %d is out of range [0, %d]", above, int64(maxEpochAbove))
	}
	key := c.keys.epochBase()
	for {
		resp, err := c.client.Get(ctx, key)
		if err != nil {
			return 0, false, fmt.Errorf("read epoch base: %w", err)
		}
		cur, err := parseEpochBase(resp.Kvs)
		if err != nil {
			return 0, false, err
		}
		// Every key created after this read has a create revision above
		// the read's revision h, so an epoch of at least base + h + 1.
		h := resp.Header.Revision
		need := above - h
		if cur >= need {
			return cur, false, nil
		}
		var mod int64
		if len(resp.Kvs) > 0 {
			mod = resp.Kvs[0].ModRevision
		}
		tr, err := c.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", mod)).
			Then(clientv3.OpPut(key, strconv.FormatInt(need, 10))).
			Commit()
		if err != nil {
			return 0, false, fmt.Errorf("write epoch base: %w", err)
		}
		if tr.Succeeded {
			c.log.Info().Int64("epoch_base", need).Int64("previous_base", cur).Int64("above", above).Msg("epoch base raised")
			return need, true, nil
		}
		// Someone else changed it between our read and write: read again.
	}
}
