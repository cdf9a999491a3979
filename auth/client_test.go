package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/auth/authtest"
	"github.com/zccadapter/zccadapter/redact"
)

const (
	clientID     = "cid-1"
	clientSecret = "client-secret-5ae1c09d7b"
	redirectURI  = "https://ops.example.com/zoom/callback"
)

// noSecrets fails the test if text holds any of secrets.
func noSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s leaks a secret (%s): %s", what, redact.Tail(s), text)
		}
	}
}

// TestExchangeRequest asserts the request Zoom expects for the
// authorization-code grant (PROTOCOL.md §2): POST, Basic client auth, a form
// body with grant_type, code and redirect_uri, nothing in the query.
func TestExchangeRequest(t *testing.T) {
	var got url.Values
	var basicOK bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		basicOK = ok && id == clientID && secret == clientSecret
		if r.Method != http.MethodPost || r.URL.RawQuery != "" {
			t.Errorf("request %s ?%s", r.Method, r.URL.RawQuery)
		}
		r.ParseForm()
		got = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"bearer","refresh_token":"rt-1","expires_in":3600,"scope":"a b"}`))
	}))
	defer ts.Close()
	tok, err := auth.Exchange(t.Context(), auth.ClientConfig{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret},
		"the-code", redirectURI)
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"grant_type": {"authorization_code"}, "code": {"the-code"}, "redirect_uri": {redirectURI}}
	if got.Encode() != want.Encode() {
		t.Errorf("form = %q, want %q", got.Encode(), want.Encode())
	}
	if !basicOK {
		t.Error("no Basic client auth with the app's credentials")
	}
	if tok.AccessToken != "at-1" || tok.RefreshToken != "rt-1" || tok.Expiry.IsZero() {
		t.Errorf("token = %+v", tok)
	}
	if sc := auth.GrantedScopes(tok); strings.Join(sc, ",") != "a,b" {
		t.Errorf("scopes = %v", sc)
	}
}

// TestExchangeErrors: each refusal names Zoom's fields and the operator's
// next step, and never echoes the code or the secret (the fake's reason for a
// bad code contains the code).
func TestExchangeErrors(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	cfg := auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: clientSecret}
	code := z.Code(redirectURI)
	z.Allow(authtest.GrantAuthorizationCode, 5)
	if _, err := auth.Exchange(t.Context(), cfg, code, redirectURI); err != nil {
		t.Fatal(err)
	}
	wrongRedirect := z.Code(redirectURI)
	bad := cfg
	bad.ClientSecret = "wrong-secret-0123456789"
	cases := []struct {
		name     string
		cfg      auth.ClientConfig
		code     string
		redirect string
		status   int
		zcode    string
		want     string
	}{
		{"used code", cfg, code, redirectURI, 400, "invalid_grant", "codes are single-use and expire after 5 minutes; get a new one"},
		{"unknown code", cfg, "never-issued-code-77", redirectURI, 400, "invalid_grant", "get a new one"},
		{"redirect mismatch", cfg, wrongRedirect, redirectURI + "/other", 400, "invalid_request", "--redirect-uri must equal"},
		{"bad client", bad, z.Code(redirectURI), redirectURI, 401, "invalid_client", "client secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.Exchange(t.Context(), c.cfg, c.code, c.redirect)
			var te *auth.TokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *TokenError", err)
			}
			if te.Status != c.status || te.Code != c.zcode || te.Reason == "" || te.Grant != auth.GrantAuthorizationCode {
				t.Errorf("TokenError = %+v, want status %d error %q and a reason", te, c.status, c.zcode)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if errors.Is(err, auth.ErrReauthorize) {
				t.Error("an exchange refusal matches ErrReauthorize")
			}
			noSecrets(t, "error", err.Error(), c.code, clientSecret, bad.ClientSecret)
		})
	}
}

func TestExchangeValidatesArguments(t *testing.T) {
	cfg := auth.ClientConfig{TokenURL: "http://127.0.0.1:1/oauth/token", ClientID: clientID, ClientSecret: clientSecret}
	for name, call := range map[string]func() error{
		"client_id": func() error { c := cfg; c.ClientID = ""; _, err := auth.Exchange(t.Context(), c, "c", "r"); return err },
		"client_secret": func() error {
			c := cfg
			c.ClientSecret = ""
			_, err := auth.Exchange(t.Context(), c, "c", "r")
			return err
		},
		"code":     func() error { _, err := auth.Exchange(t.Context(), cfg, "", "r"); return err },
		"redirect": func() error { _, err := auth.Exchange(t.Context(), cfg, "c", ""); return err },
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestExchangeWithoutRefreshToken: an S2S app answers without a refresh
// token; the exchange says so rather than storing a token that cannot be
// refreshed.
func TestExchangeWithoutRefreshToken(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"bearer","expires_in":3600}`))
	}))
	defer ts.Close()
	_, err := auth.Exchange(t.Context(), auth.ClientConfig{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret}, "c", "r")
	if err == nil || !strings.Contains(err.Error(), "refresh_token") {
		t.Fatalf("err = %v", err)
	}
}

// TestTransportErrorHasNoSecret: a token URL that cannot be reached gives a
// transport error that names the grant and holds no secret.
func TestTransportErrorHasNoSecret(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	u := ts.URL
	ts.Close()
	_, err := auth.Exchange(t.Context(), auth.ClientConfig{TokenURL: u, ClientID: clientID, ClientSecret: clientSecret}, "code-xyz-123", "r")
	var te *auth.TokenError
	if err == nil || errors.As(err, &te) || !strings.Contains(err.Error(), "authorization_code") {
		t.Fatalf("err = %v", err)
	}
	noSecrets(t, "error", err.Error(), clientSecret, "code-xyz-123")
}

func TestNextStep(t *testing.T) {
	cases := []struct {
		te   auth.TokenError
		want string
	}{
		{auth.TokenError{Grant: "account_credentials", Status: 401, Code: "invalid_client"}, "zoom.client_id"},
		{auth.TokenError{Grant: "account_credentials", Status: 400, Code: "invalid_request", Reason: "Invalid account_id"}, "zoom.account_id"},
		{auth.TokenError{Grant: "refresh_token", Status: 400, Code: "unsupported_grant_type", Number: 4705}, "zoom.grant_type"},
		{auth.TokenError{Grant: "refresh_token", Status: 400, Code: "invalid_grant", Number: 4741}, "zccadapter auth exchange"},
		{auth.TokenError{Grant: "authorization_code", Status: 400, Code: "invalid_grant", Number: 4733}, "get a new one"},
		{auth.TokenError{Grant: "authorization_code", Status: 400, Code: "invalid_request", Number: 4709}, "redirect"},
		{auth.TokenError{Grant: "account_credentials", Status: 429}, "rate limiting"},
		{auth.TokenError{Grant: "account_credentials", Status: 503}, "retries with backoff"},
	}
	for _, c := range cases {
		msg := c.te.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "next step") {
			t.Errorf("%+v: %q does not say %q", c.te, msg, c.want)
		}
		if c.te.Number != 0 && !strings.Contains(msg, "code ") {
			t.Errorf("%q omits Zoom's numbered code", msg)
		}
	}
}
