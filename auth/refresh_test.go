package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/auth/authtest"
)

// TestRefreshRequest asserts the refresh-token grant's request: POST, Basic
// client auth, a form body with exactly grant_type and refresh_token.
func TestRefreshRequest(t *testing.T) {
	var form url.Values
	calls := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls > 1 {
			t.Errorf("unexpected request #%d", calls)
		}
		id, secret, ok := r.BasicAuth()
		if r.Method != http.MethodPost || !ok || id != clientID || secret != clientSecret || r.URL.RawQuery != "" {
			t.Errorf("request %s basic=%v ?%s", r.Method, ok, r.URL.RawQuery)
		}
		r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-2","token_type":"bearer","refresh_token":"rt-2","expires_in":3600,"scope":"s"}`))
	}))
	defer ts.Close()
	r, err := auth.NewRefresh(auth.ClientConfig{TokenURL: ts.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := r.Refresh(t.Context(), &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt-1"}}); form.Encode() != want.Encode() {
		t.Errorf("form = %q, want %q", form.Encode(), want.Encode())
	}
	if tok.AccessToken != "at-2" || tok.RefreshToken != "rt-2" {
		t.Errorf("token = %+v", tok)
	}
}

// TestRefreshReuseNeedsReauthorization: a refresh token used once is
// rotated away; using it again gets invalid_grant, which is a
// *ReauthorizeError that tells the operator what to run.
func TestRefreshReuseNeedsReauthorization(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	r, err := auth.NewRefresh(auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	rt1 := z.RefreshToken()
	z.Allow(authtest.GrantRefreshToken, 2)
	tok, err := r.Refresh(t.Context(), &oauth2.Token{RefreshToken: rt1})
	if err != nil || tok.RefreshToken == rt1 || tok.RefreshToken == "" {
		t.Fatalf("first refresh: %v; rotated=%v", err, tok != nil && tok.RefreshToken != rt1)
	}
	_, err = r.Refresh(t.Context(), &oauth2.Token{RefreshToken: rt1})
	var re *auth.ReauthorizeError
	if !errors.Is(err, auth.ErrReauthorize) || !errors.As(err, &re) || re.Cause == nil {
		t.Fatalf("reuse: %v, want a *ReauthorizeError with a cause", err)
	}
	var te *auth.TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" || te.Number != authtest.CodeRefreshReuse || te.Reason == "" {
		t.Errorf("cause = %+v", te)
	}
	for _, want := range []string{"zccadapter auth exchange", "--code", "--redirect-uri", "invalid_grant", "4740"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	noSecrets(t, "error", err.Error(), rt1, tok.RefreshToken, tok.AccessToken, clientSecret)
}

// TestRefreshWithoutRefreshToken: nothing stored yet (no `auth exchange`):
// a *ReauthorizeError, and no request (the fake allows none).
func TestRefreshWithoutRefreshToken(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	r, err := auth.NewRefresh(auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: clientSecret})
	if err != nil {
		t.Fatal(err)
	}
	for _, cur := range []*oauth2.Token{nil, {AccessToken: "at"}} {
		if _, err := r.Refresh(t.Context(), cur); !errors.Is(err, auth.ErrReauthorize) || !strings.Contains(err.Error(), "no refresh token") {
			t.Errorf("Refresh(%v) = %v", cur != nil, err)
		}
	}
	if _, err := r.Fetch(t.Context()); !errors.Is(err, auth.ErrReauthorize) {
		t.Errorf("Fetch = %v", err)
	}
}

// TestRefreshBadClientIsNotReauthorize: a wrong client secret is a
// configuration error, not a dead refresh token.
func TestRefreshBadClientIsNotReauthorize(t *testing.T) {
	z := authtest.New(t, clientID, clientSecret)
	r, _ := auth.NewRefresh(auth.ClientConfig{TokenURL: z.URL, ClientID: clientID, ClientSecret: "wrong-secret-0123456789"})
	z.Allow(authtest.GrantRefreshToken, 1)
	_, err := r.Refresh(t.Context(), &oauth2.Token{RefreshToken: z.RefreshToken()})
	var te *auth.TokenError
	if errors.Is(err, auth.ErrReauthorize) || !errors.As(err, &te) || te.Code != "invalid_client" {
		t.Fatalf("err = %v", err)
	}
	if z.ValidRefreshTokens() != 1 {
		t.Errorf("a refused client rotated the refresh token")
	}
}
