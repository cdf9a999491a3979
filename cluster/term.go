package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ErrSessionLost is a Term's Err when its lease stopped being refreshed
// (etcd unreachable for longer than the TTL, or the lease was revoked).
var ErrSessionLost = errors.New("cluster: session lease lost")

// errResigned is a Term's Err after Resign.
var errResigned = errors.New("cluster: resigned")

// Member is what a node registers under members/<node> for the life of its
// session. Two live members with one Subscription is a configuration error.
type Member struct {
	Node         string    `json:"node"`
	Subscription string    `json:"subscription"`
	Version      string    `json:"version"`
	Address      string    `json:"address"`
	Since        time.Time `json:"since"`
}

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
				l.lose(ErrSessionLost)
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
				l.lose(ErrFenced)
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

// Term is one period of leadership, with its epoch: the create revision of
// the node's election key. All leader work must derive from Context() and
// stop when Done() closes. Safe for concurrent use.
type Term struct {
	c        *Cluster
	l        *lease
	el       *concurrency.Election
	epoch    int64
	key      string
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	errMu    sync.Mutex
	err      error
	wg       sync.WaitGroup
	elected  time.Time
	resignMu sync.Mutex
	dedupMu  sync.Mutex
	dedupID  clientv3.LeaseID
	dedupAt  time.Time
}

// Campaign registers m as a member and blocks until this node is elected
// leader, returning its Term. Each call uses a new session (a new lease): a
// new term never reuses the session of an old one.
//
// ctx ends the wait; Campaign then returns ctx.Err() and revokes the
// session. If the session is lost while waiting (etcd unreachable longer than
// the TTL) Campaign returns ErrSessionLost. If etcd reports success but the
// node's key or session is gone (the etcd trap of DESIGN §4, case C-08),
// Campaign returns ErrPhantomLeader. After any error the caller may simply
// call Campaign again.
func (c *Cluster) Campaign(ctx context.Context, m Member) (*Term, error) {
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
	mb, _ := json.Marshal(m)
	if _, err := c.client.Put(ctx, c.keys.Member(c.cfg.Node), string(mb), clientv3.WithLease(l.s.Lease())); err != nil {
		return fail(fmt.Errorf("register member: %w", err))
	}

	// The campaign ends when ctx ends or the session is lost, whichever is
	// first: etcd's Campaign does not watch its own session.
	cctx, ccancel := context.WithCancel(ctx)
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
	el := concurrency.NewElection(l.s, c.keys.Election())
	// etcd's Campaign, cancelled, deletes its key with the client's own
	// context (no deadline: client/v3/concurrency/election.go), so with etcd
	// unreachable it returns only when etcd answers or the client closes.
	// Wait for it only while ctx and the session last; after that it is
	// abandoned to the client (Close joins it), and the lease, revoked or
	// expiring, deletes the key anyway.
	done := make(chan error, 1)
	c.abandoned.Add(1)
	go func() {
		defer c.abandoned.Done()
		done <- el.Campaign(cctx, c.cfg.Node)
	}()
	finished := false
	select {
	case err = <-done:
		finished = true
	case <-ctx.Done():
	case <-l.lost:
	}
	if !finished {
		ccancel()
		select {
		case err = <-done:
		case <-time.After(100 * time.Millisecond):
			err = context.Canceled // abandoned: below, the lost session or ctx says why
		}
	}
	close(stopWatch)
	watch.Wait()
	ccancel()
	if err != nil {
		select {
		case <-l.lost:
			return fail(l.lostErr)
		default:
		}
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		return fail(fmt.Errorf("campaign: %w", err))
	}

	// Verify before acting: our key exists under our live lease with the
	// revision Campaign reported, and it is the oldest key of the election.
	if !l.valid() {
		return fail(ErrPhantomLeader)
	}
	vctx, vcancel := context.WithTimeout(ctx, c.cfg.SessionTTL)
	defer vcancel()
	resp, err := c.client.Get(vctx, c.keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil {
		return fail(fmt.Errorf("verify leadership: %w", err))
	}
	if len(resp.Kvs) == 0 || string(resp.Kvs[0].Key) != el.Key() ||
		resp.Kvs[0].CreateRevision != el.Rev() || clientv3.LeaseID(resp.Kvs[0].Lease) != l.s.Lease() {
		return fail(ErrPhantomLeader)
	}

	t := &Term{c: c, l: l, el: el, epoch: el.Rev(), key: el.Key(), done: make(chan struct{}), elected: time.Now()}
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

// Epoch is the fencing token of this term: the create revision of the
// leader's election key. Every recorder command and every leader write
// carries it.
func (t *Term) Epoch() int64 { return t.epoch }

// LeaderKey is the term's election key.
func (t *Term) LeaderKey() string { return t.key }

// Elected is when Campaign observed the election (local clock).
func (t *Term) Elected() time.Time { return t.elected }

// Context is cancelled when the term ends, for any reason.
func (t *Term) Context() context.Context { return t.ctx }

// Done is closed when the term ends: the session was lost, the fencing
// deadline passed, Lose was called or Resign began.
func (t *Term) Done() <-chan struct{} { return t.done }

// Err says why the term ended (nil while it lasts).
func (t *Term) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// Deadline is the self-fencing deadline: last keepalive ack + TTL − margin.
// It moves forward with every ack.
func (t *Term) Deadline() time.Time { return time.Unix(0, t.l.deadline.Load()) }

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

// Commit runs ops in one etcd transaction guarded by
// CreateRevision(leaderKey) == epoch (DESIGN §4). It returns ErrFenced
// without writing when the deadline has passed, and ErrNotLeader (ending the
// term) when the guard fails. ctx bounds the call.
func (t *Term) Commit(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	if !t.Valid() {
		return nil, ErrFenced
	}
	resp, err := t.c.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(t.key), "=", t.epoch)).
		Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("leader txn: %w", err)
	}
	if !resp.Succeeded {
		t.end(ErrNotLeader)
		return nil, ErrNotLeader
	}
	return resp, nil
}

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

// Members lists the live members of the cluster.
func (c *Cluster) Members(ctx context.Context) ([]Member, error) {
	resp, err := c.client.Get(ctx, c.keys.Members(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	out := make([]Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var m Member
		if json.Unmarshal(kv.Value, &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// Leader returns the current leader's node id and epoch, or "" if none.
func (c *Cluster) Leader(ctx context.Context) (string, int64, error) {
	resp, err := c.client.Get(ctx, c.keys.Election(), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", 0, fmt.Errorf("read leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, nil
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].CreateRevision, nil
}
