package auth_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/auth/authtest"
)

// memStore is an in-memory auth.Store: Update holds a lock (the cluster's
// mutex) and writes with a compare-and-swap on a revision, like
// cluster.TokenStore. Every write is recorded in order.
type memStore struct {
	lock sync.Mutex // the "cluster-wide" lock of Update

	mu        sync.Mutex
	tok       *oauth2.Token
	rev       int64
	writes    []string // refresh tokens, in write order
	failWrite error    // returned instead of writing, once
	onWrite   func()   // called after a write, before Update returns
}

func (m *memStore) Load(context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok, nil
}

func (m *memStore) Update(ctx context.Context, fn func(*oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error) {
	m.lock.Lock()
	defer m.lock.Unlock()
	m.mu.Lock()
	cur, rev := m.tok, m.rev
	m.mu.Unlock()
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if cur != nil && next.AccessToken == cur.AccessToken && next.RefreshToken == cur.RefreshToken {
		return next, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrite != nil {
		err, m.failWrite = m.failWrite, nil
		return nil, err
	}
	if m.rev != rev {
		return nil, errors.New("conflict")
	}
	m.tok, m.rev = next, m.rev+1
	m.writes = append(m.writes, next.RefreshToken)
	if m.onWrite != nil {
		m.onWrite()
	}
	return next, nil
}

func (m *memStore) put(t *oauth2.Token) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tok, m.rev = t, m.rev+1
}

func (m *memStore) current() *oauth2.Token {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tok
}

// expired is a stored token whose access token is past use.
func expired(rt string) *oauth2.Token {
	return &oauth2.Token{AccessToken: "at-old-0123456789abcdef", RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}
}

func refresher(t *testing.T, z *authtest.Server) auth.Refresher {
	t.Helper()
	r, err := auth.NewRefresh(auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// syncBuffer is a goroutine-safe log capture.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSharedRefreshStoresBeforeReturning: the rotated refresh token is in
// the store before Token returns the new access token, and a token that could
// not be stored is never returned or cached.
func TestSharedRefreshStoresBeforeReturning(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	rt1 := z.RefreshToken()
	st := &memStore{}
	st.put(expired(rt1))
	var returned bool
	st.onWrite = func() {
		if returned {
			t.Error("the token was returned before it was stored")
		}
	}
	src := auth.NewSharedSource(st, refresher(t, z), 0)
	z.Allow(authtest.GrantRefreshToken, 1)
	tok, err := src.Token(t.Context())
	returned = true
	if err != nil {
		t.Fatal(err)
	}
	if cur := st.current(); cur.RefreshToken != tok.RefreshToken || cur.AccessToken != tok.AccessToken || tok.RefreshToken == rt1 {
		t.Fatalf("store holds another token than the one returned, or no rotation")
	}
	// Cached: no second request (the fake allows none).
	if again, err := src.Token(t.Context()); err != nil || again.AccessToken != tok.AccessToken {
		t.Fatalf("second Token: %v", err)
	}

	// A write that fails (a conflict) → an error, never the new token.
	src.Invalidate(tok)
	st.failWrite = errors.New("write token: conflict")
	z.Allow(authtest.GrantRefreshToken, 1)
	got, err := src.Token(t.Context())
	if err == nil || got != nil {
		t.Fatalf("Token after a failed write = %v, %v; want an error and no token", got != nil, err)
	}
	if st.current().AccessToken != tok.AccessToken {
		t.Fatal("store changed by a failed write")
	}
}

// TestC07_LostRefreshReply: Zoom processes a refresh but the reply is lost.
// The store still holds the old refresh token (nothing half-stored); the
// retry gets invalid_grant → ErrReauthorize naming `auth exchange`, logged
// once as an alert; later calls return it at once without asking Zoom (no hot
// loop); a new token from `auth exchange` brings the source back.
func TestC07_LostRefreshReply(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	rt1 := z.RefreshToken()
	st := &memStore{}
	st.put(expired(rt1))
	var logs syncBuffer
	src := auth.NewSharedSource(st, refresher(t, z), 0, auth.WithLogger(zerolog.New(&logs)))

	z.LoseNextRefreshReplies(1)
	z.Allow(authtest.GrantRefreshToken, 2) // the lost one and one retry; more fails the test
	_, err := src.Token(t.Context())
	if err == nil || errors.Is(err, auth.ErrReauthorize) {
		t.Fatalf("lost reply: %v, want a transport error", err)
	}
	if cur := st.current(); cur.RefreshToken != rt1 || len(st.writes) != 0 {
		t.Fatalf("store changed after a lost reply: %d writes", len(st.writes))
	}
	_, err = src.Token(t.Context())
	if !errors.Is(err, auth.ErrReauthorize) || !strings.Contains(err.Error(), "zccadapter auth exchange --config FILE --code CODE --redirect-uri URI") {
		t.Fatalf("retry: %v, want ErrReauthorize naming auth exchange", err)
	}
	for range 20 {
		if _, err := src.Token(t.Context()); !errors.Is(err, auth.ErrReauthorize) {
			t.Fatalf("later call: %v", err)
		}
	}
	if n := z.Requests(authtest.GrantRefreshToken); n != 2 {
		t.Errorf("%d refresh requests, want 2 (no loop)", n)
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 1 {
		t.Errorf("%d alerts logged, want 1:\n%s", n, logs.String())
	}
	if src.Reauthorize() == nil {
		t.Error("Reauthorize() = nil while the refresh token is dead")
	}
	noSecrets(t, "logs", logs.String(), rt1, clientSecret)

	// The operator re-authorises: a new token appears in the store.
	z.Allow(authtest.GrantAuthorizationCode, 1)
	fresh, err := auth.Exchange(t.Context(), auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: clientSecret},
		z.Code(redirectURI), redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	st.put(fresh)
	if tok, err := src.Token(t.Context()); err != nil || tok.AccessToken != fresh.AccessToken {
		t.Fatalf("after auth exchange: %v", err)
	}
	if src.Reauthorize() != nil {
		t.Error("Reauthorize() still set after a new token was stored")
	}
}

// TestSharedNoRefreshTokenAlertsOnce: refresh_token grant but nothing
// stored: ErrReauthorize, one alert, no request.
func TestSharedNoRefreshTokenAlertsOnce(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	var logs syncBuffer
	src := auth.NewSharedSource(&memStore{}, refresher(t, z), 0, auth.WithLogger(zerolog.New(&logs)))
	for range 5 {
		if _, err := src.Token(t.Context()); !errors.Is(err, auth.ErrReauthorize) {
			t.Fatalf("Token = %v", err)
		}
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
}

// TestSharedRefreshOutlivesCallerContext: a caller that gives up while its
// refresh is in flight does not lose the rotated refresh token: the request
// and the write finish under the source's own budget.
func TestSharedRefreshOutlivesCallerContext(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	rt1 := z.RefreshToken()
	st := &memStore{}
	st.put(expired(rt1))
	src := auth.NewSharedSource(st, refresher(t, z), 0, auth.WithRefreshTimeout(10*time.Second))
	started, release := z.Hold()
	defer release()
	z.Allow(authtest.GrantRefreshToken, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := src.Token(ctx)
		done <- err
	}()
	<-started
	cancel()
	release()
	<-done
	if cur := st.current(); cur.RefreshToken == rt1 || len(st.writes) != 1 {
		t.Fatalf("rotated refresh token not stored after the caller gave up (%d writes)", len(st.writes))
	}
	if tok, err := src.Token(t.Context()); err != nil || tok.RefreshToken != st.current().RefreshToken {
		t.Fatalf("next Token: %v", err)
	}
}

// TestSharedUsableTokenServedWhileReauthorizing: a dead refresh token does
// not stop a still-valid access token from being used.
func TestSharedUsableTokenServedWhileReauthorizing(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	st := &memStore{}
	st.put(&oauth2.Token{AccessToken: "at-live-0123456789", RefreshToken: "rt-dead-0123456789", Expiry: time.Now().Add(time.Hour)})
	src := auth.NewSharedSource(st, refresher(t, z), 0)
	if tok, err := src.Token(t.Context()); err != nil || tok.AccessToken != "at-live-0123456789" {
		t.Fatalf("Token = %v", err)
	}
}

// TestSharedExpiryUsesInjectedClock: a token is replaced expiryDelta before
// it expires, by the injected clock.
func TestSharedExpiryUsesInjectedClock(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	rt1 := z.RefreshToken()
	st := &memStore{}
	exp := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	st.put(&oauth2.Token{AccessToken: "at-1-0123456789abcdef", RefreshToken: rt1, Expiry: exp})
	now := exp.Add(-10 * time.Minute)
	src := auth.NewSharedSource(st, refresher(t, z), 5*time.Minute, auth.WithClock(func() time.Time { return now }))
	if tok, err := src.Token(t.Context()); err != nil || tok.AccessToken != "at-1-0123456789abcdef" {
		t.Fatalf("10 min before expiry: %v", err)
	}
	now = exp.Add(-4 * time.Minute)
	z.Allow(authtest.GrantRefreshToken, 1)
	if tok, err := src.Token(t.Context()); err != nil || tok.AccessToken == "at-1-0123456789abcdef" {
		t.Fatalf("4 min before expiry: %v, want a refreshed token", err)
	}
}
