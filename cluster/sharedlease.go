package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// sharedLease is a lease many keys share, granted on first use and again
// once it is older than a quarter of its TTL, so a key put under it lives
// between 3/4 and 1 TTL. Safe for concurrent use; the zero value is ready.
type sharedLease struct {
	mu sync.Mutex
	id clientv3.LeaseID
	at time.Time
}

// get returns the current lease, granting a new one of ttl (whole seconds,
// at least one) when there is none or it is older than ttl/4. ctx bounds a
// grant.
func (l *sharedLease) get(ctx context.Context, cli *clientv3.Client, ttl time.Duration) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id != clientv3.NoLease && time.Since(l.at) < ttl/4 {
		return l.id, nil
	}
	g, err := cli.Grant(ctx, max(int64(ttl/time.Second), 1))
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("grant lease: %w", err)
	}
	l.id, l.at = g.ID, time.Now()
	return g.ID, nil
}

// forget makes the next get grant a new lease (after a put failed because
// the lease was gone).
func (l *sharedLease) forget() {
	l.mu.Lock()
	l.id = clientv3.NoLease
	l.mu.Unlock()
}
