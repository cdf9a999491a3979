package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// lease is one session: an etcd lease kept alive by concurrency.Session, plus
// our own keepalive stream that records when each ack arrived, so the holder
// knows its self-fencing deadline. One goroutine owns the ack stream; the
// deadline is read atomically.
type lease struct {
	s        *concurrency.Session
	ttl      time.Duration
	margin   time.Duration
	deadline atomic.Int64 // unix nanos: last ack + ttl − margin
	lost     chan struct{}
	lostErr  error
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

func (c *Cluster) newLease(ctx context.Context) (*lease, error) {
	ttlSec := int64((c.cfg.SessionTTL + time.Second/2) / time.Second)
	sent := time.Now()
	g, err := c.client.Grant(ctx, ttlSec)
	if err != nil {
		return nil, fmt.Errorf("grant session lease: %w", err)
	}
	s, err := concurrency.NewSession(c.client, concurrency.WithLease(g.ID), concurrency.WithTTL(int(ttlSec)))
	if err != nil {
		c.client.Revoke(context.WithoutCancel(ctx), g.ID) //nolint:errcheck // best effort; the lease expires anyway
		return nil, fmt.Errorf("session: %w", err)
	}
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	acks, err := c.client.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		s.Close()
		return nil, fmt.Errorf("session keepalive: %w", err)
	}
	l := &lease{s: s, ttl: time.Duration(ttlSec) * time.Second, margin: c.cfg.FenceMargin,
		lost: make(chan struct{}), stop: stop}
	// The server set the expiry at grant time + TTL, which is after `sent`:
	// counting from `sent` is conservative.
	l.deadline.Store(sent.Add(l.ttl - l.margin).UnixNano())
	l.wg.Add(1)
	go l.track(kctx, acks)
	return l, nil
}

// track owns the ack stream. It closes l.lost when the acks stop for good or
// the fencing deadline passes without a new ack.
func (l *lease) track(ctx context.Context, acks <-chan *clientv3.LeaseKeepAliveResponse) {
	defer l.wg.Done()
	timer := time.NewTimer(time.Until(time.Unix(0, l.deadline.Load())))
	defer timer.Stop()
	for {
		select {
		case resp, ok := <-acks:
			if !ok {
				l.lose(protocol.ErrSessionLost)
				// Drain nothing more; wait for stop.
				<-ctx.Done()
				return
			}
			// The ack proves the server renewed the lease before now, so
			// it expires no later than now + TTL.
			d := time.Now().Add(time.Duration(resp.TTL)*time.Second - l.margin)
			l.deadline.Store(d.UnixNano())
			timer.Reset(time.Until(d))
		case <-timer.C:
			if time.Now().UnixNano() >= l.deadline.Load() {
				l.lose(protocol.ErrFenced)
				<-ctx.Done()
				return
			}
			timer.Reset(time.Until(time.Unix(0, l.deadline.Load())))
		case <-ctx.Done():
			return
		}
	}
}

func (l *lease) lose(err error) {
	select {
	case <-l.lost:
	default:
		l.lostErr = err
		close(l.lost)
	}
}

func (l *lease) valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	return time.Now().UnixNano() < l.deadline.Load()
}

// close stops tracking and revokes the lease (bounded by ctx). Idempotent
// enough for our single caller per lease.
func (l *lease) close(ctx context.Context) error {
	l.stop()
	l.wg.Wait()
	l.s.Orphan()
	_, err := l.s.Client().Revoke(ctx, l.s.Lease())
	return err
}
