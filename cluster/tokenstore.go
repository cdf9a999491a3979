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
)

// ErrTokenUnreadable is returned when the stored token cannot be decrypted:
// the node's client secret differs from the one that wrote it.
var ErrTokenUnreadable = errors.New("cluster: shared token cannot be decrypted with this node's client secret")

// TokenStore is the etcd implementation of auth.Store. The token is sealed
// with AES-256-GCM under a key derived (HKDF-SHA256) from the OAuth client
// secret, so only nodes holding the secret can read it; Update runs under an
// etcd mutex (concurrency.Mutex), so only one node fetches at a time.
type TokenStore struct {
	c    *Cluster
	aead cipher.AEAD
}

// NewTokenStore returns the cluster's token store for a client secret.
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
	return string(s.aead.Seal(nonce, nonce, plain, []byte(s.c.keys.Token()))), nil
}

func (s *TokenStore) open(b []byte) (*oauth2.Token, error) {
	n := s.aead.NonceSize()
	if len(b) < n {
		return nil, ErrTokenUnreadable
	}
	plain, err := s.aead.Open(nil, b[:n], b[n:], []byte(s.c.keys.Token()))
	if err != nil {
		return nil, ErrTokenUnreadable
	}
	var st storedToken
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, ErrTokenUnreadable
	}
	t := &oauth2.Token{AccessToken: st.AccessToken, TokenType: st.TokenType, RefreshToken: st.RefreshToken, Expiry: st.Expiry}
	if st.Scope != "" {
		t = t.WithExtra(map[string]any{"scope": st.Scope})
	}
	return t, nil
}

// Load returns the stored token or nil. ctx bounds the read.
func (s *TokenStore) Load(ctx context.Context) (*oauth2.Token, error) {
	resp, err := s.c.client.Get(ctx, s.c.keys.Token())
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return s.open(resp.Kvs[0].Value)
}

// Update runs fn under the cluster's token mutex with the token stored at
// that moment, and stores fn's token if it differs. ctx bounds the lock
// wait, fn and the write; the mutex lives in a short session of its own, so
// a node that dies holding it releases it after the session TTL.
func (s *TokenStore) Update(ctx context.Context, fn func(cur *oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error) {
	ttl := int(s.c.cfg.SessionTTL / time.Second)
	sess, err := concurrency.NewSession(s.c.client, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("token lock session: %w", err)
	}
	defer sess.Close()
	mu := concurrency.NewMutex(sess, s.c.keys.TokenLock())
	if err := mu.Lock(ctx); err != nil {
		return nil, fmt.Errorf("token lock: %w", err)
	}
	defer mu.Unlock(context.WithoutCancel(ctx)) //nolint:errcheck // the session close releases it too
	cur, err := s.Load(ctx)
	if err != nil && !errors.Is(err, ErrTokenUnreadable) {
		return nil, err
	}
	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if cur != nil && next.AccessToken == cur.AccessToken {
		return next, nil
	}
	val, err := s.seal(next)
	if err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	// Written only while we hold the lock.
	resp, err := s.c.client.Txn(ctx).If(mu.IsOwner()).Then(clientv3.OpPut(s.c.keys.Token(), val)).Commit()
	if err != nil {
		return nil, fmt.Errorf("write token: %w", err)
	}
	if !resp.Succeeded {
		return nil, errors.New("write token: lost the token lock")
	}
	return next, nil
}
