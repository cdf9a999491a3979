package kit

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TxnStats counts the write transactions through a client, their ops and
// the time each took, from the call of Commit to its reply. Safe for
// concurrent use.
type TxnStats struct {
	mu    sync.Mutex
	txns  int
	ops   int
	took  []time.Duration
	total time.Duration
}

// Snapshot returns the count of write txns, their ops, the distribution of
// their durations and the sum of the durations.
func (s *TxnStats) Snapshot() (txns, ops int, took Dist, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txns, s.ops, NewDist(s.took), s.total
}

// Reset forgets what was counted.
func (s *TxnStats) Reset() {
	s.mu.Lock()
	s.txns, s.ops, s.took, s.total = 0, 0, nil, 0
	s.mu.Unlock()
}

// CountTxns makes every write txn through cli count in stats. It replaces
// cli.KV (after TimeCommits, if both are used); call it before anything else
// uses the client.
func CountTxns(cli *clientv3.Client, stats *TxnStats) {
	cli.KV = &countKV{KV: cli.KV, stats: stats}
}

type countKV struct {
	clientv3.KV
	stats *TxnStats
}

func (k *countKV) Txn(ctx context.Context) clientv3.Txn {
	return &countTxn{Txn: k.KV.Txn(ctx), stats: k.stats}
}

type countTxn struct {
	clientv3.Txn
	stats *TxnStats
	ops   int
}

func (t *countTxn) If(cs ...clientv3.Cmp) clientv3.Txn { t.Txn = t.Txn.If(cs...); return t }

func (t *countTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	for _, op := range ops {
		if op.IsPut() || op.IsDelete() {
			t.ops++
		}
	}
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *countTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *countTxn) Commit() (*clientv3.TxnResponse, error) {
	start := time.Now()
	resp, err := t.Txn.Commit()
	if t.ops > 0 {
		d := time.Since(start)
		t.stats.mu.Lock()
		t.stats.txns++
		t.stats.ops += t.ops
		t.stats.took = append(t.stats.took, d)
		t.stats.total += d
		t.stats.mu.Unlock()
	}
	return resp, err
}
