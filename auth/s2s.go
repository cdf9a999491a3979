package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// S2SConfig configures a Server-to-Server OAuth client.
type S2SConfig struct {
	// TokenURL is Zoom's token endpoint. Default https://zoom.us/oauth/token.
	TokenURL string
	// ClientID, ClientSecret and AccountID of the Marketplace app. Required.
	// The secret is sent only in the Basic authorization header.
	ClientID, ClientSecret, AccountID string
	// GrantType is GrantAccountCredentials (default) or GrantClientCredentials.
	GrantType string
	// HTTPClient is used for token requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Fetcher gets a new token from the authorization server on every call.
// It does no caching: wrap it in a SharedSource. Implementations are safe
// for concurrent use.
type Fetcher interface {
	// Fetch requests a new token. It blocks for one request; ctx bounds it.
	// A refusal is a *TokenError; other errors are transport errors. No
	// error holds a secret.
	Fetch(ctx context.Context) (*oauth2.Token, error)
}

type s2s struct {
	cfg   clientcredentials.Config
	grant string
	http  *http.Client
}

// NewS2S returns a Fetcher for the Server-to-Server grant
// (grant_type=account_credentials with account_id, or client_credentials;
// Basic client auth; a form body). It validates cfg and names the missing
// field. Zoom issues no refresh token for this grant.
func NewS2S(cfg S2SConfig) (Fetcher, error) {
	cfg.TokenURL = cmp.Or(cfg.TokenURL, DefaultTokenURL)
	cfg.GrantType = cmp.Or(cfg.GrantType, GrantAccountCredentials)
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("s2s: client_id is required")
	case cfg.ClientSecret == "":
		return nil, errors.New("s2s: client_secret is required")
	case cfg.GrantType == GrantAccountCredentials && cfg.AccountID == "":
		return nil, errors.New("s2s: account_id is required for the account_credentials grant")
	case cfg.GrantType != GrantAccountCredentials && cfg.GrantType != GrantClientCredentials:
		return nil, fmt.Errorf("s2s: grant_type %q is not account_credentials or client_credentials", cfg.GrantType)
	}
	if _, err := url.Parse(cfg.TokenURL); err != nil {
		return nil, errors.New("s2s: token_url is not a URL")
	}
	params := url.Values{"grant_type": {cfg.GrantType}}
	if cfg.GrantType == GrantAccountCredentials {
		params.Set("account_id", cfg.AccountID)
	}
	return &s2s{
		cfg: clientcredentials.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: cfg.TokenURL,
			EndpointParams: params, AuthStyle: oauth2.AuthStyleInHeader,
		},
		grant: cfg.GrantType,
		http:  cfg.HTTPClient,
	}, nil
}

// Fetch requests a new token. ctx bounds the request. A refusal is a
// *TokenError; a transport error is wrapped with the client secret scrubbed.
func (s *s2s) Fetch(ctx context.Context) (*oauth2.Token, error) {
	if s.http != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.http)
	}
	tok, err := s.cfg.Token(ctx)
	if err != nil {
		return nil, tokenError(s.grant, err, s.cfg.ClientSecret)
	}
	return tok, nil
}
