package auth

import (
	"context"
	"errors"

	"golang.org/x/oauth2"
)

// Refresher is a Fetcher whose grant needs the token the cluster holds: the
// refresh-token grant. A [SharedSource] calls Refresh, under the store's
// lock, with the stored token, and the store persists the result before the
// source returns it.
type Refresher interface {
	Fetcher
	// Refresh trades cur.RefreshToken for a new token, which carries a new
	// refresh token (Zoom rotates it; the old one stops working). It blocks
	// for one request; ctx bounds it. Cancelling ctx after the request was
	// sent may lose the rotated refresh token exactly as a lost reply does
	// (C-07), so callers give it a context of its own. Errors: a
	// *ReauthorizeError (matches ErrReauthorize) when cur holds no refresh
	// token or Zoom refuses it with invalid_grant; a *TokenError for other
	// refusals; otherwise a transport error.
	Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error)
}

type refreshGrant struct {
	cfg ClientConfig
}

// NewRefresh returns the refresh-token grant (grant_type=refresh_token,
// Basic client auth, a form body). It validates cfg and names the missing
// field. Use it through a [SharedSource]: the first refresh token comes from
// [Exchange], stored in the cluster by `zccadapter auth exchange`.
func NewRefresh(cfg ClientConfig) (Refresher, error) {
	cfg, err := cfg.withDefaults("refresh_token grant")
	if err != nil {
		return nil, err
	}
	return &refreshGrant{cfg: cfg}, nil
}

// Fetch cannot refresh without the stored token: it returns a
// *ReauthorizeError. A SharedSource calls Refresh instead.
func (r *refreshGrant) Fetch(context.Context) (*oauth2.Token, error) {
	return nil, &ReauthorizeError{}
}

// Refresh implements Refresher.
func (r *refreshGrant) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	if cur == nil || cur.RefreshToken == "" {
		return nil, &ReauthorizeError{}
	}
	// An empty access token makes the source refresh at once; it keeps no
	// state beyond this call.
	src := r.cfg.oauth2Config("").TokenSource(r.cfg.context(ctx), &oauth2.Token{RefreshToken: cur.RefreshToken})
	tok, err := src.Token()
	if err != nil {
		err = tokenError(GrantRefreshToken, err, r.cfg.ClientSecret, cur.RefreshToken, cur.AccessToken)
		var te *TokenError
		if errors.As(err, &te) && isInvalidGrant(te) {
			return nil, &ReauthorizeError{Cause: te}
		}
		return nil, err
	}
	return tok, nil
}
