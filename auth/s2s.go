package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Grant types of Zoom's token endpoint (PROTOCOL.md §2).
const (
	GrantAccountCredentials = "account_credentials" // Server-to-Server OAuth, with account_id (default)
	GrantClientCredentials  = "client_credentials"  // the variant shown on Zoom's newest WebSocket page
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
// It does no caching: wrap it in a SharedSource.
type Fetcher interface {
	Fetch(ctx context.Context) (*oauth2.Token, error)
}

// TokenError is the token endpoint's refusal, with Zoom's fields. It never
// holds a secret.
type TokenError struct {
	Status int    // HTTP status
	Code   string // Zoom's "error" field, e.g. invalid_client
	Reason string // Zoom's "reason" field
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("token endpoint: HTTP %d: error=%q reason=%q", e.Status, e.Code, e.Reason)
}

type s2s struct {
	cfg  clientcredentials.Config
	http *http.Client
}

// NewS2S returns a Fetcher for the Server-to-Server grant. It validates cfg
// and names the missing field.
func NewS2S(cfg S2SConfig) (Fetcher, error) {
	if cfg.TokenURL == "" {
		cfg.TokenURL = "https://zoom.us/oauth/token"
	}
	if cfg.GrantType == "" {
		cfg.GrantType = GrantAccountCredentials
	}
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
		http: cfg.HTTPClient,
	}, nil
}

// Fetch requests a new token. ctx bounds the request. A refusal is a
// *TokenError; a transport error is wrapped without the URL's secrets (the
// token URL carries none).
func (s *s2s) Fetch(ctx context.Context) (*oauth2.Token, error) {
	if s.http != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.http)
	}
	tok, err := s.cfg.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			te := &TokenError{Code: re.ErrorCode}
			if re.Response != nil {
				te.Status = re.Response.StatusCode
			}
			te.Reason = zoomReason(re.Body)
			return nil, te
		}
		return nil, fmt.Errorf("token endpoint: %w", scrub(err, s.cfg.ClientSecret))
	}
	return tok, nil
}

// zoomReason pulls the "reason" field out of Zoom's error body.
func zoomReason(body []byte) string {
	var v struct {
		Reason string `json:"reason"`
	}
	if jsonUnmarshal(body, &v) == nil {
		return v.Reason
	}
	return ""
}

// scrub removes secret from err's text.
func scrub(err error, secrets ...string) error {
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "REDACTED")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
