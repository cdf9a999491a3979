package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// Defaults of the quarantine (Config.QuarantineTTL, Config.QuarantineMax).
const (
	DefaultQuarantineTTL = 7 * 24 * time.Hour
	DefaultQuarantineMax = 1000
	// maxQuarantineKey bounds an entry's Key (an untrusted dedup key).
	maxQuarantineKey = 256
	// quarantineTrimChunk is the most deletions in one trim txn.
	quarantineTrimChunk = 100
)

// Quarantine puts e under quarantine/<id>; see protocol.Cluster.Quarantine
// for the contract. The entry lives under a shared lease of
// Config.QuarantineTTL, renewed every quarter TTL (so an entry lives
// between 3/4 and 1 TTL); after the put, entries beyond
// Config.QuarantineMax are deleted, oldest first. ctx bounds the calls.
func (c *Cluster) Quarantine(ctx context.Context, e protocol.QuarantineEntry) error {
	e.Node = cmp.Or(e.Node, c.cfg.Node)
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if len(e.Raw) > protocol.MaxQuarantineRaw {
		e.Raw, e.Truncated = e.Raw[:protocol.MaxQuarantineRaw], true
	}
	e.Reason = cut(e.Reason, protocol.MaxQuarantineReason)
	e.Key = cut(e.Key, maxQuarantineKey)
	// Ids sort by time; the suffix keeps two entries of one instant apart.
	e.ID = fmt.Sprintf("%019d-%s-%08x", e.At.UnixNano(), e.Node, rand.Uint32())
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("quarantine: encode entry: %w", err)
	}
	for attempt := 0; ; attempt++ {
		lease, err := c.quarantineLease.get(ctx, c.client, c.cfg.QuarantineTTL)
		if err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		_, err = c.client.Put(ctx, c.keys.Quarantine(e.ID), string(val), clientv3.WithLease(lease))
		if isLeaseNotFound(err) && attempt == 0 {
			c.quarantineLease.forget()
			continue
		}
		if err != nil {
			return fmt.Errorf("quarantine: put entry: %w", err)
		}
		break
	}
	return c.trimQuarantine(ctx)
}

// trimQuarantine deletes the oldest entries beyond Config.QuarantineMax.
func (c *Cluster) trimQuarantine(ctx context.Context) error {
	prefix := c.keys.QuarantinePrefix()
	resp, err := c.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("quarantine: count entries: %w", err)
	}
	over := resp.Count - int64(c.cfg.QuarantineMax)
	if over <= 0 {
		return nil
	}
	old, err := c.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend), clientv3.WithLimit(over))
	if err != nil {
		return fmt.Errorf("quarantine: list old entries: %w", err)
	}
	for i := 0; i < len(old.Kvs); i += quarantineTrimChunk {
		var ops []clientv3.Op
		for _, kv := range old.Kvs[i:min(i+quarantineTrimChunk, len(old.Kvs))] {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
		if _, err := c.client.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("quarantine: delete old entries: %w", err)
		}
	}
	return nil
}

// Quarantined returns the number of quarantine entries and the newest
// (newest first, at most newest); see protocol.Cluster.Quarantined. ctx
// bounds the reads.
func (c *Cluster) Quarantined(ctx context.Context, newest int) (int, []protocol.QuarantineEntry, error) {
	prefix := c.keys.QuarantinePrefix()
	resp, err := c.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, nil, fmt.Errorf("quarantine: count entries: %w", err)
	}
	if newest <= 0 || resp.Count == 0 {
		return int(resp.Count), nil, nil
	}
	list, err := c.client.Get(ctx, prefix, clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(newest)))
	if err != nil {
		return 0, nil, fmt.Errorf("quarantine: read entries: %w", err)
	}
	out := make([]protocol.QuarantineEntry, 0, len(list.Kvs))
	for _, kv := range list.Kvs {
		var e protocol.QuarantineEntry
		if json.Unmarshal(kv.Value, &e) == nil {
			out = append(out, e)
		}
	}
	return int(resp.Count), out, nil
}

// cut returns s cut to at most n bytes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
