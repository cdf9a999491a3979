package cluster

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
)

// Errors of the token store.
var (
	// errTokenUnreadable is returned by Load when the stored token cannot be
	// decrypted: the node's client secret differs from the one that wrote it.
	// It matches auth.ErrTokenUnreadable. Update passes nil to fn then, so
	// after a secret rotation the next fetch (or `zccadapter auth exchange`)
	// replaces the token.
	errTokenUnreadable = fmt.Errorf("cluster: shared token cannot be decrypted with this node's client secret: %w", auth.ErrTokenUnreadable)
	// errTokenConflict is returned by TokenStore.Update when the token key
	// changed between the read that fn saw and the write (a writer outside
	// the lock, or a lock lost with its session): fn's token is not stored
	// and not returned. The caller reads the store again.
	errTokenConflict = errors.New("cluster: shared token changed during the update; not stored")
)

// tokenWriteBudget bounds the write of a token once fn has produced it. The
// write does not end with the caller's ctx: a rotated refresh token that is
// not stored is lost (C-07).
const tokenWriteBudget = 5 * time.Second

// TokenStore is the etcd implementation of auth.Store. The token (access
// token, refresh token, expiry, scopes) is sealed with AES-256-GCM under a key
// derived (HKDF-SHA256) from the OAuth client secret, so only nodes holding
// the secret can read it; Update runs under an etcd mutex
// (concurrency.Mutex), so only one node fetches or refreshes at a time, and
// writes with a compare-and-swap on the token key's mod revision. Safe for
// concurrent use.
type TokenStore struct {
	c    *Cluster
	aead cipher.AEAD
}

// NewTokenStore returns the cluster's token store for a client secret. It
// does not touch etcd; the store lives as long as the Cluster.
func (c *Cluster) NewTokenStore(clientSecret string) (*TokenStore, error) {
	if clientSecret == "" {
		return nil, errors.New("token store: client secret is required")
	}
	key, err := hkdf.Key(sha256.New, []byte(clientSecret), []byte(c.keys.Root()), "zccadapter shared token v1", 32)
	if err != nil {
		return nil, fmt.Errorf("token store: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	return &TokenStore{c: c, aead: aead}, nil
}

type storedToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"`
	Scope        string    `json:"scope,omitempty"`
}

func (s *TokenStore) seal(t *oauth2.Token) (string, error) {
	st := storedToken{AccessToken: t.AccessToken, TokenType: t.TokenType, RefreshToken: t.RefreshToken, Expiry: t.Expiry}
	if sc, ok := t.Extra("scope").(string); ok {
		st.Scope = sc
	}
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return string(s.aead.Seal(nonce, nonce, plain, []byte(s.c.keys.token()))), nil
}

func (s *TokenStore) open(b []byte) (*oauth2.Token, error) {
	n := s.aead.NonceSize()
	if len(b) < n {
		return nil, errTokenUnreadable
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(s.c.keys.token()))
	if err != nil {
		return nil, errTokenUnreadable
	}
	var st storedToken
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, errTokenUnreadable
	}
	t := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry}
	if st.Scope != "" {
		t = t.WithExtra(map[string]any{"scope": st.Scope})
	}
	return t, nil
}

// Load returns the stored token, or nil with no error if there is none.
// ctx bounds the read. An error matching auth.ErrTokenUnreadable means the
// token was sealed with another client secret.
func (s *TokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	t, _, err := s.load(ctx)
	return t, err
}

// load returns the stored token and the token key's mod revision (0 when
// there is no key). The revision is valid even when the token is unreadable.
func (s *TokenStore) load(ctx context.Context) (*oauth2.Token, int64, error) {
	resp, err := s.c.client.Get(ctx, s.c.keys.token())
	if err != nil {
		return nil, 0, fmt.Errorf("read token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, nil
	}
	t, err := s.open(resp.Kvs[0].Value)
	return t, resp.Kvs[0].ModRevision, err
}

// Update runs fn under the cluster's token mutex with the token stored at
// that moment (nil if none, or if it cannot be decrypted with this secret),
// and stores fn's token if it differs from it (access or refresh token). It
// returns fn's token only once it is stored.
//
// The write is a compare-and-swap on the token key's mod revision as fn saw
// it, not a check of the mutex: if the mutex was lost (its session expired
// while etcd was unreachable) but nobody wrote the key, the rotated refresh
// token fn obtained is still the successor of the stored one and is stored;
// if somebody did write, an error is returned (the token changed during the
// update) and fn's token is dropped; the caller reads the store again.
//
// ctx bounds the session, the lock wait and the read; fn gets its own use of
// ctx. Once fn has returned a token, the write runs under its own 5 s budget
// even if ctx has ended, so a rotated refresh token is not lost to a caller's
// deadline. The mutex lives in a short session of its own, revoked on return;
// a node that dies holding it releases it after the session TTL. fn's error
// is returned unwrapped.
func (s *TokenStore) Update(ctx context.Context, fn func(cur *oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error) {
	ttl := int(s.c.cfg.SessionTTL / time.Second)
	// The session outlives ctx so its keepalive and the revoke in Close
	// still work when the caller gives up mid-refresh.
	sess, err := concurrency.NewSession(s.c.client, concurrency.WithTTL(ttl),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("token lock session: %w", err)
	}
	defer sess.Close()
	mu := concurrency.NewMutex(sess, s.c.keys.tokenLock())
	if err := mu.Lock(ctx); err != nil {
		return nil, fmt.Errorf("token lock: %w", err)
	}
	defer mu.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // the session close releases it too
	cur, rev, err := s.load(ctx)
	if err != nil && !errors.Is(err, errTokenUnreadable) {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, errors.New("token store: update produced no token")
	}
	if cur != nil && next.AccessToken == cur.AccessToken && next.RefreshToken == cur.RefreshToken {
		return next, nil
	}
	val, err := s.seal(next)
	if err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenWriteBudget)
	defer cancel()
	key := s.c.keys.token()
	resp, err := s.c.client.Txn(wctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, val)).Commit()
	if err != nil {
		return nil, fmt.Errorf("write token: %w", err)
	}
	if !resp.Succeeded {
		return nil, errTokenConflict
	}
	return next, nil
}
