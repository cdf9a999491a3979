package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// HealthPublisher writes this node's Health under health/<node>, under a
// lease of its own (TTL = the session TTL, kept alive by the client), so a
// dead node's record vanishes. It implements protocol.HealthPublisher. Safe
// for concurrent use.
type HealthPublisher struct {
	c      *Cluster
	mu     sync.Mutex
	lease  clientv3.LeaseID
	cancel context.CancelFunc
}

// NewHealthPublisher returns a publisher; Close revokes its lease. It does no
// I/O.
func (c *Cluster) NewHealthPublisher() *HealthPublisher { return &HealthPublisher{c: c} }

// Publish writes h (Node is set to this node). It grants a lease on first
// use and again after the old one was lost. ctx bounds the calls.
func (p *HealthPublisher) Publish(ctx context.Context, h protocol.Health) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	h.Node = p.c.cfg.Node
	b, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("encode health: %w", err)
	}
	for attempt := 0; attempt < 2; attempt++ {
		if p.lease == clientv3.NoLease {
			g, err := p.c.client.Grant(ctx, int64(p.c.cfg.SessionTTL/time.Second))
			if err != nil {
				return fmt.Errorf("health lease: %w", err)
			}
			kctx, cancel := context.WithCancel(context.Background())
			if _, err := p.c.client.KeepAlive(kctx, g.ID); err != nil {
				cancel()
				return fmt.Errorf("health keepalive: %w", err)
			}
			p.lease, p.cancel = g.ID, cancel
		}
		_, err := p.c.client.Put(ctx, p.c.keys.health(h.Node), string(b), clientv3.WithLease(p.lease))
		if err == nil {
			return nil
		}
		if !isLeaseNotFound(err) {
			return fmt.Errorf("publish health: %w", err)
		}
		p.cancel()
		p.lease = clientv3.NoLease
	}
	return fmt.Errorf("publish health: lease lost twice")
}

// Close stops the keepalive and revokes the lease (bounded by ctx; the lease
// expires by itself if that fails). Publish may be called again afterwards.
func (p *HealthPublisher) Close(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lease == clientv3.NoLease {
		return
	}
	p.cancel()
	p.c.client.Revoke(ctx, p.lease) //nolint:errcheck // the lease expires by itself
	p.lease = clientv3.NoLease
}

// PeersHealth returns the published health of every live node, by node id;
// records that do not decode are skipped. ctx bounds the read.
func (c *Cluster) PeersHealth(ctx context.Context) (map[string]protocol.Health, error) {
	resp, err := c.client.Get(ctx, c.keys.healthPrefix(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read health: %w", err)
	}
	out := map[string]protocol.Health{}
	for _, kv := range resp.Kvs {
		var h protocol.Health
		if json.Unmarshal(kv.Value, &h) == nil {
			out[strings.TrimPrefix(string(kv.Key), c.keys.healthPrefix())] = h
		}
	}
	return out, nil
}
