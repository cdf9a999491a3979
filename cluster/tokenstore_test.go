package cluster_test

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
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/redact"
)

const (
	tsClientID     = "cid-1"
	tsClientSecret = "client-secret-5ae1c09d7b"
)

func put(t *testing.T, s *cluster.TokenStore, tok *oauth2.Token) {
	t.Helper()
	if _, err := s.Update(t.Context(), func(*oauth2.Token) (*oauth2.Token, error) { return tok, nil }); err != nil {
		t.Fatal(err)
	}
}

func expiredToken(rt string) *oauth2.Token {
	return &oauth2.Token{AccessToken: "at-old-0123456789abcdef", RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)}
}

// refreshNode is one node's refresh-token source on the shared etcd.
func refreshNode(t *testing.T, e *cluster.Embedded, name string, z *authtest.Server, log zerolog.Logger) (*auth.SharedSource, *cluster.TokenStore) {
	t.Helper()
	store, err := connect(t, e, name).NewTokenStore(tsClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	r, err := auth.NewRefresh(auth.ClientConfig{TokenURL: z.URL, ClientID: tsClientID, ClientSecret: tsClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	return auth.NewSharedSource(store, r, 0, auth.WithLogger(log.With().Str("node", name).Logger())), store
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestTokenStoreKeepsRefreshTokenAndScope(t *testing.T) {
	e := startEtcd(t)
	store, _ := connect(t, e, "a").NewTokenStore("secret-one")
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	put(t, store, (&oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "bearer", Expiry: exp}).
		WithExtra(map[string]any{"scope": "a b"}))
	got, err := store.Load(t.Context())
	if err != nil || got.RefreshToken != "rt-1" || !got.Expiry.Equal(exp) || got.Extra("scope") != "a b" {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	// A new refresh token with the same access token is still written.
	put(t, store, &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-2", Expiry: exp})
	if got, _ := store.Load(t.Context()); got.RefreshToken != "rt-2" {
		t.Fatalf("refresh token not replaced: %q", got.RefreshToken)
	}
}

// TestTokenStoreCompareAndSwap: a write to the token key between the read fn
// saw and the write makes Update fail with ErrTokenConflict; the other
// writer's token stays and fn's token is not returned.
func TestTokenStoreCompareAndSwap(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	store, _ := c.NewTokenStore("secret-one")
	other, _ := connect(t, e, "b").NewTokenStore("secret-one")
	put(t, store, &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"})
	got, err := store.Update(t.Context(), func(cur *oauth2.Token) (*oauth2.Token, error) {
		// A writer outside the lock (raw put) changes the key meanwhile.
		if _, err := c.Client().Put(t.Context(), c.Keys().Token(), "garbage"); err != nil {
			t.Fatal(err)
		}
		return &oauth2.Token{AccessToken: "at-2", RefreshToken: "rt-2"}, nil
	})
	if !errors.Is(err, cluster.ErrTokenConflict) || got != nil {
		t.Fatalf("Update = %v, %v; want ErrTokenConflict and no token", got, err)
	}
	if _, err := other.Load(t.Context()); !errors.Is(err, cluster.ErrTokenUnreadable) {
		t.Fatalf("the conflicting write was overwritten: %v", err)
	}
	// An unreadable token is overwritten by the next Update (secret rotation).
	put(t, store, &oauth2.Token{AccessToken: "at-3", RefreshToken: "rt-3"})
	if got, err := other.Load(t.Context()); err != nil || got.AccessToken != "at-3" {
		t.Fatalf("after overwrite: %v", err)
	}
}

// TestTokenStoreWriteOutlivesCallerContext: once fn has produced a token the
// write is not abandoned with the caller's ctx (a rotated refresh token must
// not be lost).
func TestTokenStoreWriteOutlivesCallerContext(t *testing.T) {
	e := startEtcd(t)
	store, _ := connect(t, e, "a").NewTokenStore("secret-one")
	ctx, cancel := context.WithCancel(t.Context())
	_, err := store.Update(ctx, func(*oauth2.Token) (*oauth2.Token, error) {
		cancel()
		return &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"}, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, err := store.Load(t.Context()); err != nil || got == nil || got.RefreshToken != "rt-1" {
		t.Fatalf("not stored: %v", err)
	}
	// The lock wait, though, obeys ctx.
	if _, err := store.Update(ctx, func(*oauth2.Token) (*oauth2.Token, error) {
		t.Error("fn ran on a cancelled ctx")
		return nil, nil
	}); err == nil {
		t.Fatal("Update on a cancelled ctx succeeded")
	}
}

// TestRefreshNeverConcurrentAcrossNodes: two nodes, each with ten callers,
// all find the shared token expired at once. Exactly one refresh reaches
// Zoom while the others wait on the etcd mutex; all callers get the rotated
// token, which was stored before any of them got it.
func TestRefreshNeverConcurrentAcrossNodes(t *testing.T) {
	e := startEtcd(t)
	z := authtest.New(t, tsClientID, tsClientSecret)
	log := zerolog.New(zerolog.NewTestWriter(t))
	a, storeA := refreshNode(t, e, "a", z, log)
	b, _ := refreshNode(t, e, "b", z, log)
	rt1 := z.RefreshToken()
	put(t, storeA, expiredToken(rt1))

	started, release := z.Hold()
	defer release()
	z.Allow(authtest.GrantRefreshToken, 1) // a second refresh fails the test
	var wg sync.WaitGroup
	toks := make(chan string, 20)
	for i := range 20 {
		src := []*auth.SharedSource{a, b}[i%2]
		wg.Go(func() {
			tok, err := src.Token(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			toks <- tok.AccessToken + "/" + tok.RefreshToken
		})
	}
	<-started
	// While the first refresh is held, no other may start. Absence needs a
	// bounded wait; correctness does not depend on its length.
	select {
	case <-started:
		t.Fatal("a second refresh started while the first was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	release()
	wg.Wait()
	close(toks)
	first := ""
	for tk := range toks {
		if first == "" {
			first = tk
		}
		if tk != first {
			t.Fatal("callers got different tokens")
		}
	}
	stored, err := storeA.Load(t.Context())
	if err != nil || stored.AccessToken+"/"+stored.RefreshToken != first || stored.RefreshToken == rt1 {
		t.Fatalf("store does not hold the rotated token the callers got: %v", err)
	}
	if n, m := z.Requests(authtest.GrantRefreshToken), z.MaxConcurrentRefreshes(); n != 1 || m != 1 {
		t.Fatalf("%d refreshes, %d at once; want 1 and 1", n, m)
	}
	if z.ValidRefreshTokens() != 1 {
		t.Fatalf("%d valid refresh tokens at Zoom, want 1", z.ValidRefreshTokens())
	}
}

// TestC07_LostRefreshReplyTwoNodes: node a's refresh is processed by Zoom
// but the reply is lost. The rotated refresh token is never half-stored (the
// store keeps the old one, untouched); each node's next attempt gets
// invalid_grant → ErrReauthorize naming `auth exchange`, one alert per node,
// then no more requests; never two refreshes at once; a new token stored by
// `auth exchange` brings both nodes back.
func TestC07_LostRefreshReplyTwoNodes(t *testing.T) {
	e := startEtcd(t)
	z := authtest.New(t, tsClientID, tsClientSecret)
	var logs lockedBuffer
	log := zerolog.New(&logs)
	a, storeA := refreshNode(t, e, "a", z, log)
	b, _ := refreshNode(t, e, "b", z, log)
	rt1 := z.RefreshToken()
	put(t, storeA, expiredToken(rt1))
	c := connect(t, e, "probe")
	rev := func() int64 {
		resp, err := c.Client().Get(t.Context(), c.Keys().Token())
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("token key: %v", err)
		}
		return resp.Kvs[0].ModRevision
	}
	before := rev()

	z.LoseNextRefreshReplies(1)
	z.Allow(authtest.GrantRefreshToken, 3) // a's lost one, then one per node
	if _, err := a.Token(t.Context()); err == nil || errors.Is(err, auth.ErrReauthorize) {
		t.Fatalf("a, lost reply: %v; want a transport error", err)
	}
	if rev() != before {
		t.Fatal("the token key changed after a lost reply")
	}
	for range 5 {
		for name, src := range map[string]*auth.SharedSource{"a": a, "b": b} {
			_, err := src.Token(t.Context())
			if !errors.Is(err, auth.ErrReauthorize) || !strings.Contains(err.Error(), "zccadapter auth exchange") {
				t.Fatalf("%s: %v; want ErrReauthorize", name, err)
			}
		}
	}
	if n := z.Requests(authtest.GrantRefreshToken); n != 3 {
		t.Errorf("%d refresh requests, want 3", n)
	}
	if m := z.MaxConcurrentRefreshes(); m != 1 {
		t.Errorf("%d refreshes at once", m)
	}
	if rev() != before {
		t.Fatal("the token key changed")
	}
	if n := strings.Count(logs.String(), `"alert":true`); n != 2 {
		t.Errorf("%d alerts, want one per node:\n%s", n, logs.String())
	}

	// Re-authorise: auth exchange stores a new token through the store.
	z.Allow(authtest.GrantAuthorizationCode, 1)
	fresh, err := auth.Exchange(t.Context(), auth.ClientConfig{TokenURL: z.URL, ClientID: tsClientID, ClientSecret: tsClientSecret},
		z.Code("https://x/cb"), "https://x/cb")
	if err != nil {
		t.Fatal(err)
	}
	put(t, storeA, fresh)
	for name, src := range map[string]*auth.SharedSource{"a": a, "b": b} {
		if tok, err := src.Token(t.Context()); err != nil || tok.AccessToken != fresh.AccessToken {
			t.Fatalf("%s after auth exchange: %v", name, err)
		}
	}
	for _, s := range append(z.Issued(), tsClientSecret) {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("logs leak a secret (%s)", redact.Tail(s))
		}
	}
}

// TestRotatedSecretReplacesUnreadableToken: after the client secret is
// rotated, the stored token (sealed with the old secret) cannot be read; the
// next Token fetches a new one and replaces it, instead of failing forever.
func TestRotatedSecretReplacesUnreadableToken(t *testing.T) {
	e := startEtcd(t)
	c := connect(t, e, "a")
	old, _ := c.NewTokenStore("secret-old")
	put(t, old, &oauth2.Token{AccessToken: "at-old", Expiry: time.Now().Add(time.Hour)})
	rotated, _ := c.NewTokenStore("secret-new")
	if _, err := rotated.Load(t.Context()); !errors.Is(err, auth.ErrTokenUnreadable) || !errors.Is(err, cluster.ErrTokenUnreadable) {
		t.Fatalf("Load with the new secret = %v", err)
	}
	f := &countingFetcher{max: 1, t: t}
	tok, err := auth.NewSharedSource(rotated, f, 0).Token(t.Context())
	if err != nil || tok.AccessToken == "at-old" {
		t.Fatalf("Token after rotation = %v", err)
	}
	if got, err := rotated.Load(t.Context()); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("not replaced: %v", err)
	}
}
