package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// renewRetry is how soon a keepalive that failed (etcd answered an error,
// or not in time) is sent again, unless the regular interval comes first.
// etcd's own KeepAlive retries every 500 ms.
const renewRetry = 500 * time.Millisecond

// lease is one session's etcd lease and its self-fencing deadline.
//
// The deadline is the send time of the last acknowledged keepalive + TTL −
// margin, on the monotonic clock. It is a lower bound of the server's
// expiry, less the margin, for this reason (go.etcd.io/etcd/server/v3
// v3.6, lease/lessor.go and lease/lease.go): the lease's primary (the etcd
// leader) renews a lease in lessor.Renew, which sets its expiry to
// time.Now() + TTL (Lease.refresh) when it processes the keepalive, which is
// after we sent it, and answers with that TTL (with lease checkpointing on,
// Renew first clears the checkpointed remaining TTL, so a renewal still
// grants the whole TTL). A renewal only ever moves the expiry later, and so
// does a change of etcd leader (lessor.Promote refreshes every lease with
// the election timeout added). So for every acknowledged keepalive sent at s
// with TTL t: server expiry ≥ s + t, whatever the delays of the request and
// of the ack. etcd deletes the leader's key, and lets a successor win, only
// after the expiry. Clocks are assumed to run at the same rate on the node
// and on the etcd leader; their offsets do not matter, since both ends
// measure durations only.
//
// The keepalives are our own: run sends one KeepAliveOnce every TTL/3 (the
// interval of etcd's KeepAlive), stamped with time.Now() before the call
// (KeepAliveOnce may retry inside the call; each retry is sent later still,
// so the stamp stays a lower bound). Calls may overlap when acks are slow.
// The concurrency.Session that the election needs runs etcd's KeepAlive on
// the same lease as well; that stream only ever extends the server's expiry
// and never moves our deadline, so the bound holds with it.
//
// One goroutine (run) owns the renewals and writes the deadline; readers
// load it atomically. The deadline never moves backwards.
type lease struct {
	c        *Cluster
	s        *concurrency.Session
	ttl      time.Duration
	margin   time.Duration
	interval time.Duration
	base     time.Time    // monotonic origin of deadline
	deadline atomic.Int64 // time.Duration since base: sent + TTL − margin
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
	ttl := time.Duration(ttlSec) * time.Second
	l := &lease{c: c, s: s, ttl: ttl, margin: c.cfg.FenceMargin, interval: ttl / 3,
		base: sent, lost: make(chan struct{})}
	// The server set the expiry at grant time + TTL (or more: etcd raises a
	// TTL below its minimum), which is after `sent`.
	l.deadline.Store(int64(ttl - l.margin))
	kctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = stop
	l.wg.Add(1)
	go l.run(kctx)
	return l, nil
}

// renewal is the outcome of one keepalive sent at sent.
type renewal struct {
	sent time.Time
	ttl  time.Duration
	err  error
}

// run owns the renewals until ctx ends. It closes l.lost with
// protocol.ErrSessionLost when etcd says the lease is gone, and with
// protocol.ErrFenced when the deadline passes first; then it stops renewing.
func (l *lease) run(ctx context.Context) {
	defer l.wg.Done()
	cctx, cancel := context.WithCancel(ctx)
	var calls sync.WaitGroup
	defer calls.Wait()
	defer cancel()
	results := make(chan renewal)
	send := time.NewTimer(l.interval)
	defer send.Stop()
	nextSend := time.Now().Add(l.interval)
	fence := time.NewTimer(time.Until(l.Deadline()))
	defer fence.Stop()
	for {
		select {
		case <-send.C:
			sent := time.Now()
			calls.Add(1)
			go func() {
				defer calls.Done()
				r := l.renew(cctx, sent)
				select {
				case results <- r:
				case <-cctx.Done():
				}
			}()
			nextSend = sent.Add(l.interval)
			send.Reset(l.interval)
		case r := <-results:
			switch {
			case r.err == nil:
				l.extend(r.sent.Add(r.ttl - l.margin))
				fence.Reset(time.Until(l.Deadline()))
			case isLeaseNotFound(r.err):
				l.lose(protocol.ErrSessionLost)
				return
			default:
				l.c.log.Debug().Err(r.err).Msg("session keepalive failed; retrying")
				if time.Until(nextSend) > renewRetry {
					nextSend = time.Now().Add(renewRetry)
					send.Reset(renewRetry)
				}
			}
		case <-fence.C:
			if !l.valid() {
				l.lose(protocol.ErrFenced)
				return
			}
			fence.Reset(time.Until(l.Deadline()))
		case <-ctx.Done():
			return
		}
	}
}

// renew sends one keepalive, stamped sent by the caller just before. An ack
// arriving after sent + TTL − margin could not move the deadline, so that
// bounds the call.
func (l *lease) renew(ctx context.Context, sent time.Time) renewal {
	rctx, cancel := context.WithDeadline(ctx, sent.Add(l.ttl-l.margin))
	defer cancel()
	resp, err := l.s.Client().KeepAliveOnce(rctx, l.s.Lease())
	if err != nil {
		return renewal{sent: sent, err: err}
	}
	// The server answers with the lease's TTL; take the smaller of it and
	// ours, should it ever differ.
	return renewal{sent: sent, ttl: min(time.Duration(resp.TTL)*time.Second, l.ttl)}
}

// extend moves the deadline to d if that is later. Only run calls it.
func (l *lease) extend(d time.Time) {
	if since := d.Sub(l.base); since > time.Duration(l.deadline.Load()) {
		l.deadline.Store(int64(since))
	}
}

// Deadline is the self-fencing deadline, with its monotonic reading.
func (l *lease) Deadline() time.Time { return l.base.Add(time.Duration(l.deadline.Load())) }

func (l *lease) lose(err error) {
	select {
	case <-l.lost:
	default:
		l.lostErr = err
		close(l.lost)
	}
}

// valid reports whether the lease is not lost and its deadline has not
// passed (on the monotonic clock).
func (l *lease) valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	return time.Since(l.base) < time.Duration(l.deadline.Load())
}

// close stops the renewals and revokes the lease (bounded by ctx).
// Idempotent enough for our single caller per lease.
func (l *lease) close(ctx context.Context) error {
	l.stop()
	l.wg.Wait()
	l.s.Orphan()
	_, err := l.s.Client().Revoke(ctx, l.s.Lease())
	return err
}
