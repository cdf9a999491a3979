package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

// TestS2SGrantRequest asserts the request Zoom expects (PROTOCOL.md §2):
// POST, Basic client auth, a form body with grant_type=account_credentials
// and account_id, and nothing secret in the query.
func TestS2SGrantRequest(t *testing.T) {
	var seen *http.Request
	var form string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		r.ParseForm()
		form = r.PostForm.Encode()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at-1","token_type":"bearer","expires_in":3600,"scope":"a b"}`))
	}))
	defer ts.Close()
	f, err := auth.NewS2S(auth.S2SConfig{TokenURL: ts.URL + "/oauth/token", ClientID: "cid", ClientSecret: "csecret", AccountID: "acct"})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := f.Fetch(t.Context())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Fetch = %v, %v", tok, err)
	}
	id, secret, ok := seen.BasicAuth()
	if seen.Method != http.MethodPost || !ok || id != "cid" || secret != "csecret" {
		t.Fatalf("request: %s basic=%v %q", seen.Method, ok, id)
	}
	if form != "account_id=acct&grant_type=account_credentials" || seen.URL.RawQuery != "" {
		t.Fatalf("form %q, query %q", form, seen.URL.RawQuery)
	}
}

func TestS2SAgainstSimulatedZoom(t *testing.T) {
	z, err := zoom.New(zoom.Config{AccountID: "acct", ClientID: "cid", ClientSecret: "right-secret",
		Subscriptions: []string{"s"}, Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	ts := httptest.NewServer(z.Handler())
	defer ts.Close()
	for _, grant := range []string{auth.GrantAccountCredentials, auth.GrantClientCredentials} {
		f, _ := auth.NewS2S(auth.S2SConfig{TokenURL: ts.URL + "/oauth/token", ClientID: "cid", ClientSecret: "right-secret", AccountID: "acct", GrantType: grant})
		if tok, err := f.Fetch(t.Context()); err != nil || tok.AccessToken == "" {
			t.Fatalf("%s: %v", grant, err)
		}
	}
	f, _ := auth.NewS2S(auth.S2SConfig{TokenURL: ts.URL + "/oauth/token", ClientID: "cid", ClientSecret: "wrong-secret", AccountID: "acct"})
	_, err = f.Fetch(t.Context())
	var te *auth.TokenError
	if !errors.As(err, &te) || te.Status != http.StatusUnauthorized || te.Code != "invalid_client" || te.Reason == "" {
		t.Fatalf("bad secret: %#v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatal("error echoes the secret")
	}
}

func TestS2SConfigNamesMissingField(t *testing.T) {
	for field, cfg := range map[string]auth.S2SConfig{
		"client_id":     {ClientSecret: "s", AccountID: "a"},
		"client_secret": {ClientID: "c", AccountID: "a"},
		"account_id":    {ClientID: "c", ClientSecret: "s"},
		"grant_type":    {ClientID: "c", ClientSecret: "s", AccountID: "a", GrantType: "password"},
	} {
		if _, err := auth.NewS2S(cfg); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}
