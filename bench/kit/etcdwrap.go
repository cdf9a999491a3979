package kit

import (
	"context"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Mark is an etcd revision and the moment it was seen.
type Mark struct {
	Rev int64
	At  time.Time
}

// Marks is a concurrency-safe, append-only list of Marks.
type Marks struct {
	mu   sync.Mutex
	list []Mark
	max  int64
}

func (m *Marks) add(rev int64, at time.Time) {
	m.mu.Lock()
	if rev > m.max {
		m.max = rev
		m.list = append(m.list, Mark{rev, at})
	}
	m.mu.Unlock()
}

// Since returns the marks seen at or after t, in order.
func (m *Marks) Since(t time.Time) []Mark {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.list), func(i int) bool { return !m.list[i].At.Before(t) })
	return append([]Mark(nil), m.list[i:]...)
}

// TimeCommits makes every successful write transaction through cli record
// its revision and the moment its reply arrived in commits: the leader's
// commit times (each txn of cluster.Term.CommitBatch is a clientv3 Txn).
// It replaces cli.KV, so call it before anything else uses the client.
// Revisions are recorded only when they are new (a txn that changed
// nothing is skipped).
func TimeCommits(cli *clientv3.Client, commits *Marks) {
	cli.KV = &timedKV{KV: cli.KV, marks: commits}
}

type timedKV struct {
	clientv3.KV
	marks *Marks
}

func (k *timedKV) Txn(ctx context.Context) clientv3.Txn {
	return &timedTxn{Txn: k.KV.Txn(ctx), marks: k.marks}
}

type timedTxn struct {
	clientv3.Txn
	marks  *Marks
	writes bool
}

func (t *timedTxn) If(cs ...clientv3.Cmp) clientv3.Txn { t.Txn = t.Txn.If(cs...); return t }

func (t *timedTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	for _, op := range ops {
		if op.IsPut() || op.IsDelete() {
			t.writes = true
		}
	}
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *timedTxn) Else(ops ...clientv3.Op) clientv3.Txn { t.Txn = t.Txn.Else(ops...); return t }

func (t *timedTxn) Commit() (*clientv3.TxnResponse, error) {
	resp, err := t.Txn.Commit()
	if err == nil && resp.Succeeded && t.writes {
		t.marks.add(resp.Header.Revision, time.Now())
	}
	return resp, err
}

// TimeWatch makes the watch of exactly key through cli (the standby mirror
// watches the cluster's root prefix) record, for every response, its header
// revision and the moment the watcher's reader took it: the moment the
// mirror applies it. It replaces cli.Watcher; call it before anything else
// uses the client.
func TimeWatch(cli *clientv3.Client, key string, deliveries *Marks) {
	cli.Watcher = &timedWatcher{Watcher: cli.Watcher, key: key, marks: deliveries}
}

type timedWatcher struct {
	clientv3.Watcher
	key   string
	marks *Marks
}

func (w *timedWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	ch := w.Watcher.Watch(ctx, key, opts...)
	if key != w.key {
		return ch
	}
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(out)
		for resp := range ch {
			select {
			case out <- resp:
				w.marks.add(resp.Header.Revision, time.Now())
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// Lags returns, for each commit at or after since, how long after it the
// first delivery at or above its revision came (0 when the delivery came
// first), and how many commits were never delivered.
func Lags(commits, deliveries []Mark) (lags []time.Duration, missing int) {
	for _, c := range commits {
		i := sort.Search(len(deliveries), func(i int) bool { return deliveries[i].Rev >= c.Rev })
		if i == len(deliveries) {
			missing++
			continue
		}
		lags = append(lags, max(0, deliveries[i].At.Sub(c.At)))
	}
	return lags, missing
}
