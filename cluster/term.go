package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// errResigned is a Term's Err after Resign.
var errResigned = errors.New("cluster: resigned")

// Term is one period of leadership, with its epoch: the epoch base plus the
// create revision of the node's election key (epoch.go). It implements
// protocol.Term, whose docs hold its contract. All leader work must derive
// from Context() and stop when it is cancelled. Safe for concurrent use.
type Term struct {
	c        *Cluster
	l        *lease
	el       *concurrency.Election
	epoch    int64 // base + rev: the fencing token the recorder sees
	rev      int64 // create revision of key: the etcd write guard
	key      string
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	errMu    sync.Mutex
	err      error
	wg       sync.WaitGroup
	resignMu sync.Mutex
	dedup    sharedLease // the dedup-window lease of this term's writes
}

// Campaign registers m as a member (Node set to this node, Since to now when
// zero) and blocks until this node is elected leader, returning its Term.
// Each call uses a new session (a new lease): a new term never reuses the
// session of an old one.
//
// ctx ends the wait; Campaign then returns ctx.Err() and revokes the
// session. If the session is lost while waiting (etcd unreachable longer than
// the TTL) Campaign returns protocol.ErrSessionLost (or protocol.ErrFenced).
// If etcd reports success but the node's key or session is gone (the etcd
// trap of DESIGN §4, case C-08), Campaign returns protocol.ErrPhantomLeader.
// After any error the caller may simply call Campaign again.
func (c *Cluster) Campaign(ctx context.Context, m protocol.Member) (*Term, error) {
	l, err := c.newLease(ctx)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Term, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		l.close(cctx) //nolint:errcheck // best effort: the lease expires by itself
		return nil, err
	}
	m.Node = c.cfg.Node
	if m.Since.IsZero() {
		m.Since = time.Now().UTC()
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return fail(fmt.Errorf("encode member: %w", err))
	}

	// The registration and the campaign end when ctx ends or the session is
	// lost, whichever is first: neither etcd's Campaign nor a Put watches
	// the session.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-l.lost:
			ccancel()
		case <-stopWatch:
		}
	}()
	defer func() { close(stopWatch); watch.Wait() }()
	// why says why a call on cctx failed with err: the lost session, ctx,
	// or err itself.
	why := func(err error, what string) error {
		select {
		case <-l.lost:
			return l.lostErr
		default:
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := c.client.Put(cctx, c.keys.Member(c.cfg.Node), string(mb), clientv3.WithLease(l.s.Lease())); err != nil {
		return fail(why(err, "register member"))
	}
	el := concurrency.NewElection(l.s, c.keys.Election())
	if err := c.campaignOn(ctx, cctx, ccancel, el, l); err != nil {
		return fail(why(err, "campaign"))
	}
	base, err := c.verifyLeadership(ctx, el, l)
	if err != nil {
		return fail(err)
	}

	t := &Term{c: c, l: l, el: el, epoch: base + el.Rev(), rev: el.Rev(), key: el.Key(), done: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.WithoutCancel(ctx))
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		select {
		case <-l.lost:
			t.end(l.lostErr)
		case <-t.ctx.Done():
		}
	}()
	return t, nil
}

// campaignOn runs etcd's Campaign on el under cctx and waits for it while
// ctx and the session l last. etcd's Campaign, cancelled, deletes its key
// with the client's own context (no deadline:
// client/v3/concurrency/election.go), so with etcd unreachable it returns
// only when etcd answers or the client closes: after ctx or the session
// ends it is cancelled, given 100 ms, and then abandoned to the client
// (Close joins it); the lease, revoked or expiring, deletes the key anyway.
// It returns etcd's error, or context.Canceled when abandoned (the caller's
// lost session or ctx says why).
func (c *Cluster) campaignOn(ctx, cctx context.Context, ccancel context.CancelFunc, el *concurrency.Election, l *lease) error {
	done := make(chan error, 1)
	c.abandoned.Add(1)
	go func() {
		defer c.abandoned.Done()
		done <- el.Campaign(cctx, c.cfg.Node)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	case <-l.lost:
	}
	ccancel()
	select {
	case err := <-done:
		return err
	case <-time.After(100 * time.Millisecond):
		return context.Canceled
	}
}

// verifyLeadership checks, before the node acts, that its election key
// exists under its live lease l with the revision Campaign reported and is
// the oldest key of the election (the etcd trap of DESIGN §4, C-08), and
// reads the epoch base in the same txn (epoch.go). It returns the base, or
// protocol.ErrPhantomLeader when the check fails, or etcd's error (bounded
// by one session TTL).
func (c *Cluster) verifyLeadership(ctx context.Context, el *concurrency.Election, l *lease) (int64, error) {
	if !l.valid() {
		return 0, protocol.ErrPhantomLeader
	}
	vctx, vcancel := context.WithTimeout(ctx, c.cfg.SessionTTL)
	defer vcancel()
	resp, err := c.client.Txn(vctx).Then(
		clientv3.OpGet(c.keys.Election(), clientv3.WithFirstCreate()...),
		clientv3.OpGet(c.keys.epochBase()),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("verify leadership: %w", err)
	}
	lead, baseKV := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(lead) == 0 || string(lead[0].Key) != el.Key() ||
		lead[0].CreateRevision != el.Rev() || clientv3.LeaseID(lead[0].Lease) != l.s.Lease() {
		return 0, protocol.ErrPhantomLeader
	}
	return parseEpochBase(baseKV)
}

func (t *Term) end(err error) {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	select {
	case <-t.done:
		return
	default:
	}
	t.err = err
	close(t.done)
	t.cancel()
}

// Epoch is the fencing token of this term: the epoch base plus the create
// revision of the leader's election key (equal to the create revision until
// BumpEpoch first raises the base). Every recorder command carries it;
// every leader write is guarded by the create revision.
func (t *Term) Epoch() int64 { return t.epoch }

// Context is cancelled when the term ends, for any reason: the session was
// lost, the fencing deadline passed, Lose was called or Resign began.
func (t *Term) Context() context.Context { return t.ctx }

// Err says why the term ended (nil while it lasts): protocol.ErrSessionLost,
// protocol.ErrFenced, protocol.ErrNotLeader, the error given to Lose, or,
// after Resign, an error of its own.
func (t *Term) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// Deadline is the self-fencing deadline: the time the last acknowledged
// keepalive was sent + TTL − FenceMargin, before the server's expiry of the
// lease by at least the margin (the bound is argued on the lease type). It
// carries a monotonic clock reading: compare it with time.Now, or pass it
// to context.WithDeadline, never with a wall time from elsewhere. It moves
// forward with every ack, never back.
func (t *Term) Deadline() time.Time { return t.l.Deadline() }

// Valid reports whether the term has not ended and the fencing deadline has
// not passed. Check it before every recorder command.
func (t *Term) Valid() bool {
	select {
	case <-t.done:
		return false
	default:
	}
	return t.l.valid()
}

// Lose ends the term with err, e.g. when the recorder answered stale_epoch.
// The caller then stops leader work and calls Resign.
func (t *Term) Lose(err error) { t.end(err) }

// Resign ends the term and gives up leadership: it deletes the election key
// (guarded by the epoch) and revokes the session lease, so a standby's
// Campaign returns at once. The caller must have stopped every piece of
// leader work before calling it (C-10). ctx bounds the etcd calls; if they
// fail, the lease expires by itself after the TTL. Safe to call more than
// once.
func (t *Term) Resign(ctx context.Context) error {
	t.resignMu.Lock()
	defer t.resignMu.Unlock()
	t.end(errResigned)
	t.wg.Wait()
	var errs []error
	if t.el != nil {
		// Resign forgets leadership even when its delete fails; the lease
		// revoke below covers that case.
		if err := t.el.Resign(ctx); err != nil {
			errs = append(errs, fmt.Errorf("resign: %w", err))
		}
		t.el = nil
		if err := t.l.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("revoke lease: %w", err))
		}
	}
	return errors.Join(errs...)
}
