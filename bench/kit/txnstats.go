package kit

import (
	"context"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TxnStats counts the write transactions through a client, their ops and
// the time each took, from the call of Commit to its reply.
type TxnStats struct {
	mu    sync.Mutex
	Txns  int
	Ops   int
	Took  []time.Duration
	Total time.Duration
}

// Snapshot returns a copy.
func (s *TxnStats) Snapshot() (txns, ops int, took Dist, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Txns, s.Ops, NewDist(s.Took), s.Total
}

// Reset forgets what was counted.
func (s *TxnStats) Reset() {
	s.mu.Lock()
	s.Txns, s.Ops, s.Took, s.Total = 0, 0, nil, 0
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
		t.stats.Txns++
		t.stats.Ops += t.ops
		t.stats.Took = append(t.stats.Took, d)
		t.stats.Total += d
		t.stats.mu.Unlock()
	}
	return resp, err
}
