package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Store holds the one token a cluster shares. Implemented on etcd by package
// cluster; every method is safe for concurrent use and bounded by ctx.
type Store interface {
	// Load returns the stored token, or nil with no error if there is none.
	// An error matching ErrTokenUnreadable means the token was sealed with
	// another client secret.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Update runs fn under a cluster-wide lock with the token stored at
	// that moment (nil if none or unreadable) and stores what fn returns if it differs.
	// Only one node runs fn at a time: this makes fetching single-flight
	// across the cluster. The write is a compare-and-swap against the token
	// fn saw; Update returns fn's token only after it is stored, and an
	// error (never the token) when it could not be stored. An error of fn is
	// returned as is.
	Update(ctx context.Context, fn func(cur *oauth2.Token) (*oauth2.Token, error)) (*oauth2.Token, error)
}

// Defaults of a SharedSource.
const (
	// DefaultExpiryDelta is how long before its expiry a token is replaced.
	DefaultExpiryDelta = 5 * time.Minute
	// DefaultRefreshTimeout bounds a refresh-token request and the write of
	// its result once the request has been sent (see SharedSource.Token).
	DefaultRefreshTimeout = 30 * time.Second
)

// SharedOption configures a SharedSource.
type SharedOption func(*SharedSource)

// WithLogger sets the logger of the source's alerts (re-authorisation
// needed). Default: none (zerolog.Nop).
func WithLogger(log zerolog.Logger) SharedOption {
	return func(s *SharedSource) { s.log = log }
}

// WithClock replaces time.Now for expiry decisions (tests).
func WithClock(now func() time.Time) SharedOption {
	return func(s *SharedSource) { s.now = now }
}

// WithRefreshTimeout sets the budget of one refresh-token request and the
// write of its result. Default DefaultRefreshTimeout; ≤ 0 means the default.
func WithRefreshTimeout(d time.Duration) SharedOption {
	return func(s *SharedSource) {
		if d > 0 {
			s.refreshTimeout = d
		}
	}
}

// SharedSource is a TokenSource that shares one token across the cluster
// through a Store: a node first uses its cached token, then the stored one,
// and fetches only under the store's lock when neither is usable. So two
// nodes on one OAuth client never fetch at once and never cancel each
// other's tokens (PROTOCOL.md §2 legacy mode, case C-06).
//
// With a Refresher (the refresh-token grant) the source refreshes with the
// stored refresh token, under the store's lock, and the store writes the
// rotated refresh token with a compare-and-swap before Token returns the new
// access token: a token that could not be stored is never used. When Zoom
// refuses the refresh token (invalid_grant, C-07) Token returns a
// *ReauthorizeError, logs it once as an alert, and from then on returns it
// at once without asking Zoom again, until a different refresh token
// appears in the store (`zccadapter auth exchange`). A usable access token
// is still served until it expires.
//
// Safe for concurrent use. It starts no goroutine and needs no Close.
type SharedSource struct {
	store          Store
	fetch          Fetcher
	refresh        Refresher // fetch as a Refresher, or nil
	expiryDelta    time.Duration
	refreshTimeout time.Duration
	now            func() time.Time
	log            zerolog.Logger

	mu       sync.Mutex // held across a fetch or refresh: local single-flight
	cur      *oauth2.Token
	rejected string             // access token the server refused
	dead     *[sha256.Size]byte // digest of the refresh token Zoom refused (zero digest: none stored)
	deadErr  error              // the *ReauthorizeError for dead

	// Snapshots readable while a fetch holds mu.
	fetches atomic.Int64
	reauth  atomic.Pointer[ReauthorizeError] // deadErr as a snapshot
}

// NewSharedSource returns a SharedSource over store that gets new tokens
// from fetch (a Refresher is given the stored token). expiryDelta ≤ 0 means
// DefaultExpiryDelta.
func NewSharedSource(store Store, fetch Fetcher, expiryDelta time.Duration, opts ...SharedOption) *SharedSource {
	if expiryDelta <= 0 {
		expiryDelta = DefaultExpiryDelta
	}
	s := &SharedSource{store: store, fetch: fetch, expiryDelta: expiryDelta, refreshTimeout: DefaultRefreshTimeout,
		now: time.Now, log: zerolog.Nop()}
	s.refresh, _ = fetch.(Refresher)
	for _, o := range opts {
		o(s)
	}
	return s
}

func (s *SharedSource) usable(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" || t.AccessToken == s.rejected {
		return false
	}
	return t.Expiry.IsZero() || t.Expiry.Add(-s.expiryDelta).After(s.now())
}

// refreshDigest identifies t's refresh token without keeping it; the zero
// digest stands for "no refresh token".
func refreshDigest(t *oauth2.Token) [sha256.Size]byte {
	if t == nil || t.RefreshToken == "" {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256([]byte(t.RefreshToken))
}

// known returns the remembered *ReauthorizeError when t's refresh token is
// the one Zoom already refused, else nil.
func (s *SharedSource) known(t *oauth2.Token) error {
	if s.refresh == nil || s.dead == nil || *s.dead != refreshDigest(t) {
		return nil
	}
	return s.deadErr
}

// Token returns a usable token. It blocks while another caller on this node
// refreshes, and while another node holds the store's lock; ctx bounds the
// waits and a Server-to-Server fetch. A refresh-token request, once sent, is
// not abandoned when ctx ends: it and the write of the rotated refresh token
// run under their own budget (WithRefreshTimeout, default 30 s), because
// abandoning them would lose the rotated refresh token (C-07).
//
// Errors: a *TokenError when the token endpoint refused the request; a
// *ReauthorizeError (matches ErrReauthorize) when the refresh-token grant
// needs an operator; otherwise a wrapped store or transport error. Never a
// secret.
func (s *SharedSource) Token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usable(s.cur) {
		return s.cur, nil
	}
	t, err := s.store.Load(ctx)
	if err != nil && !errors.Is(err, ErrTokenUnreadable) {
		return nil, fmt.Errorf("load shared token: %w", err)
	}
	if s.usable(t) {
		s.use(t)
		return t, nil
	}
	if err := s.known(t); err != nil {
		return nil, err // no request: Zoom already refused this refresh token
	}
	var refused *[sha256.Size]byte // the refresh token a refresh was attempted with
	t, err = s.store.Update(ctx, func(cur *oauth2.Token) (*oauth2.Token, error) {
		if s.usable(cur) {
			return cur, nil // another node fetched while we waited
		}
		if s.refresh == nil {
			s.fetches.Add(1)
			return s.fetch.Fetch(ctx)
		}
		if err := s.known(cur); err != nil {
			return nil, err
		}
		d := refreshDigest(cur)
		refused = &d
		if cur == nil || cur.RefreshToken == "" {
			return nil, &ReauthorizeError{}
		}
		s.fetches.Add(1)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.refreshTimeout)
		defer cancel()
		return s.refresh.Refresh(rctx, cur)
	})
	if err != nil {
		var te *TokenError
		var re *ReauthorizeError
		switch {
		case errors.As(err, &re):
			if refused != nil {
				s.alert(*refused, err)
			}
			return nil, err
		case errors.As(err, &te):
			return nil, err
		}
		return nil, fmt.Errorf("refresh shared token: %w", err)
	}
	s.use(t)
	return t, nil
}

// use makes t the node's current token; a token with another refresh token
// than the refused one ends the re-authorisation state.
func (s *SharedSource) use(t *oauth2.Token) {
	s.cur = t
	if s.dead != nil && *s.dead != refreshDigest(t) {
		s.dead, s.deadErr = nil, nil
		s.reauth.Store(nil)
	}
}

// alert remembers that the refresh token with digest d needs an operator
// and logs it, once per refresh token.
func (s *SharedSource) alert(d [sha256.Size]byte, err error) {
	if s.dead != nil && *s.dead == d {
		return
	}
	s.dead, s.deadErr = &d, err
	var re *ReauthorizeError
	if errors.As(err, &re) {
		s.reauth.Store(re)
	}
	s.log.Error().Bool("alert", true).Str("grant_type", GrantRefreshToken).Err(err).
		Msg("Zoom integration stopped: the refresh token is gone and only an operator can re-authorise " +
			"(zccadapter auth exchange); no further refresh is attempted until a new token is stored")
}

// Invalidate marks tok as refused by the server: the next Token call gets a
// different token, fetching one if the store holds no other. It waits for a
// Token call in progress on this node (which may be waiting on the network).
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

// Fetches counts token-endpoint requests made by this node. It never
// blocks.
func (s *SharedSource) Fetches() int64 { return s.fetches.Load() }

// Reauthorize returns the *ReauthorizeError of the refresh token this node
// found refused, or nil: a snapshot for status pages and alerts. It is
// cleared when Token next returns a token with another refresh token. It
// never blocks.
func (s *SharedSource) Reauthorize() error {
	if re := s.reauth.Load(); re != nil {
		return re
	}
	return nil
}
