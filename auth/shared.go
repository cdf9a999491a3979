package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

var jsonUnmarshal = json.Unmarshal

// Store holds the one token a cluster shares. Implemented on etcd by package
// cluster; every method is safe for concurrent use and bounded by ctx.
type Store interface {
	// Load returns the stored token, or nil with no error if there is none.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Update runs fn under a cluster-wide lock with the token stored at
	// that moment (nil if none) and stores what fn returns if it differs.
	// Only one node runs fn at a time: this makes fetching single-flight
	// across the cluster.
	Update(ctx context.Context, fn func(cur *oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error)
}

// DefaultExpiryDelta is how long before its expiry a token is replaced.
const DefaultExpiryDelta = 5 * time.Minute

// SharedSource is a TokenSource that shares one token across the cluster
// through a Store: a node first uses its cached token, then the stored one,
// and fetches only under the store's lock when neither is usable. So two
// nodes on one OAuth client never fetch at once and never cancel each
// other's tokens (PROTOCOL.md §2 legacy mode, case C-06).
type SharedSource struct {
	store       Store
	fetch       Fetcher
	expiryDelta time.Duration
	now         func() time.Time

	mu       sync.Mutex // held across a refresh: local single-flight
	cur      *oauth2.Token
	rejected string // access token the server refused
	fetches  int64
}

// NewSharedSource returns a SharedSource. expiryDelta ≤ 0 means
// DefaultExpiryDelta.
func NewSharedSource(store Store, fetch Fetcher, expiryDelta time.Duration) *SharedSource {
	if expiryDelta <= 0 {
		expiryDelta = DefaultExpiryDelta
	}
	return &SharedSource{store: store, fetch: fetch, expiryDelta: expiryDelta, now: time.Now}
}

func (s *SharedSource) usable(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" || t.AccessToken == s.rejected {
		return false
	}
	return t.Expiry.IsZero() || t.Expiry.Add(-s.expiryDelta).After(s.now())
}

// Token returns a usable token. It blocks while another caller on this node
// refreshes, and while another node holds the store's lock; ctx bounds all
// of it. Errors from the token endpoint are *TokenError.
func (s *SharedSource) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usable(s.cur) {
		return s.cur, nil
	}
	if t, err := s.store.Load(ctx); err != nil {
		return nil, fmt.Errorf("load shared token: %w", err)
	} else if s.usable(t) {
		s.cur = t
		return t, nil
	}
	t, err := s.store.Update(ctx, func(cur *oauth2.Token) (*oauth2.Token, error) {
		if s.usable(cur) {
			return cur, nil // another node fetched while we waited
		}
		s.fetches++
		return s.fetch.Fetch(ctx)
	})
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, fmt.Errorf("refresh shared token: %w", err)
	}
	s.cur = t
	return t, nil
}

// Invalidate marks tok as refused by the server: the next Token call gets a
// different token, fetching one if the store holds no other.
func (s *SharedSource) Invalidate(tok *oauth2.Token) {
	if tok == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = tok.AccessToken
	if s.cur != nil && s.cur.AccessToken == tok.AccessToken {
		s.cur = nil
	}
}

// Fetches counts token-endpoint requests made by this node.
func (s *SharedSource) Fetches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}
