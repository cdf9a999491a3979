package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// DefaultTokenURL is Zoom's token endpoint.
const DefaultTokenURL = "https://zoom.us/oauth/token"

// Grant types of Zoom's token endpoint (PROTOCOL.md §2).
const (
	GrantAccountCredentials = "account_credentials" // Server-to-Server OAuth, with account_id (default)
	GrantClientCredentials  = "client_credentials"  // the variant shown on Zoom's newest WebSocket page
	GrantAuthorizationCode  = "authorization_code"  // a user's one-time code → the first refresh token
	GrantRefreshToken       = "refresh_token"       // refresh token → access token + a new refresh token
)

// ClientConfig identifies an OAuth app (its client) at Zoom's token
// endpoint, for the authorization-code and refresh-token grants.
type ClientConfig struct {
	// TokenURL is the token endpoint. Default DefaultTokenURL.
	TokenURL string
	// ClientID and ClientSecret of the Marketplace app. Required. The secret
	// is sent only in the Basic authorization header, never logged.
	ClientID, ClientSecret string
	// HTTPClient is used for token requests; nil means http.DefaultClient.
	// Its Timeout, if any, bounds each request in addition to the ctx.
	HTTPClient *http.Client
}

// withDefaults applies defaults and validates c; errors name the field and
// the operation (what).
func (c ClientConfig) withDefaults(what string) (ClientConfig, error) {
	c.TokenURL = cmp.Or(c.TokenURL, DefaultTokenURL)
	switch {
	case c.ClientID == "":
		return c, fmt.Errorf("%s: client_id is required", what)
	case c.ClientSecret == "":
		return c, fmt.Errorf("%s: client_secret is required", what)
	}
	if u, err := url.Parse(c.TokenURL); err != nil || u.Host == "" {
		return c, fmt.Errorf("%s: token_url is not an absolute URL", what)
	}
	return c, nil
}

// oauth2Config is c as golang.org/x/oauth2 wants it: Basic client auth
// (never the secret in the body), parameters in a form body.
func (c ClientConfig) oauth2Config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: c.TokenURL, AuthStyle: oauth2.AuthStyleInHeader},
	}
}

// context returns ctx carrying c's HTTP client for golang.org/x/oauth2.
func (c ClientConfig) context(ctx context.Context) context.Context {
	if c.HTTPClient != nil {
		return context.WithValue(ctx, oauth2.HTTPClient, c.HTTPClient)
	}
	return ctx
}

// Exchange trades an authorization code for a token with a refresh token
// (grant_type=authorization_code, Basic client auth, a form body with code
// and redirect_uri). It is what `zccadapter auth exchange` runs once, to
// replace the seed's Postman step; the caller stores the result in the
// cluster (see [Store]).
//
// Exchange blocks for one request; ctx bounds it. redirectURI must equal the
// redirect URL used to get the code. A refusal is a *TokenError whose
// NextStep says what to do (a used or expired code: "codes are single-use and
// expire after 5 minutes; get a new one"); other errors are transport
// errors. No error holds the client secret or the code.
func Exchange(ctx context.Context, cfg ClientConfig, code, redirectURI string) (*oauth2.Token, error) {
	cfg, err := cfg.withDefaults("exchange")
	if err != nil {
		return nil, err
	}
	switch {
	case code == "":
		return nil, errors.New("exchange: an authorization code is required")
	case redirectURI == "":
		return nil, errors.New("exchange: the redirect URI is required (the app's redirect URL used to get the code)")
	}
	tok, err := cfg.oauth2Config(redirectURI).Exchange(cfg.context(ctx), code)
	if err != nil {
		return nil, tokenError(GrantAuthorizationCode, err, cfg.ClientSecret, code)
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("exchange: the token endpoint returned no refresh_token; " +
			"is this a Server-to-Server app? Then use zoom.grant_type account_credentials instead")
	}
	return tok, nil
}
