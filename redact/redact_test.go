package redact_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/zccadapter/zccadapter/redact"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestURL(t *testing.T) {
	const secret = "s3cr3t.TOKEN-value_1"
	tests := []struct {
		name   string
		in     string
		keep   []string // substrings that must survive
		secret []string // substrings that must not
	}{
		{"zoom url", "wss://ws.zoom.us/ws?subscriptionId=sub-123&access_token=" + secret,
			[]string{"wss://ws.zoom.us/ws", "subscriptionId=sub-123", "access_token=REDACTED"}, []string{secret}},
		{"token first", "wss://h/ws?access_token=" + secret + "&subscriptionId=s", []string{"subscriptionId=s"}, []string{secret}},
		{"escaped value", "wss://h/ws?subscriptionId=s&access_token=" + url.QueryEscape("a/b+c="+secret), []string{"subscriptionId=s"}, []string{secret, "a%2Fb"}},
		{"escaped name", "wss://h/ws?access%5Ftoken=" + secret, nil, []string{secret}},
		{"other token params", "https://h/cb?code=" + secret + "&refresh_token=" + secret + "&client_secret=" + secret + "&state=ok",
			[]string{"state=ok"}, []string{secret}},
		{"fragment", "https://h/cb#access_token=" + secret + "&x=1", []string{"x=1"}, []string{secret}},
		{"userinfo", "https://user:" + secret + "@h/", []string{"user"}, []string{secret}},
		{"no query", "wss://h/ws", []string{"wss://h/ws"}, nil},
		{"not a url", "%zz?access_token=" + secret, nil, []string{secret}},
		{"error text", `failed to WebSocket dial: Get "ws://127.0.0.1:1/ws?subscriptionId=s&access_token=` + secret + `": dial tcp: refused`,
			[]string{"subscriptionId=s", "refused"}, []string{secret}},
		{"control chars", "wss://h/\x00?access_token=" + secret, nil, []string{secret}},
		{"empty", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := redact.URL(tt.in)
			for _, s := range tt.secret {
				if strings.Contains(got, s) {
					t.Errorf("URL(%q) = %q; still contains %q", tt.in, got, s)
				}
			}
			for _, s := range tt.keep {
				if !strings.Contains(got, s) {
					t.Errorf("URL(%q) = %q; lost %q", tt.in, got, s)
				}
			}
		})
	}
}

func FuzzRedactURL(f *testing.F) {
	f.Add("wss://ws.zoom.us/ws?subscriptionId=s&access_token=abc")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, u string) {
		got := redact.URL(u)
		if strings.Contains(u, "access_token=") && !strings.Contains(got, "REDACTED") && strings.Contains(got, "access_token=") {
			// A value may legitimately be empty; anything else must be gone.
			if i := strings.Index(got, "access_token="); i >= 0 {
				rest := got[i+len("access_token="):]
				if rest != "" && !strings.ContainsAny(rest[:1], "&#; \"'") {
					t.Fatalf("URL(%q) = %q keeps a token", u, got)
				}
			}
		}
	})
}

func TestIsSecretParam(t *testing.T) {
	for _, name := range []string{"access_token", "Refresh_Token", "client_secret", "x-zm-signature", "password", "api_key", "apikey", "code", "KEY", "sig", "auth", "Authorization"} {
		if !redact.IsSecretParam(name) {
			t.Errorf("IsSecretParam(%q) = false", name)
		}
	}
	for _, name := range []string{"subscriptionId", "state", "grant_type", "account_id", "keyboard", "codec"} {
		if redact.IsSecretParam(name) {
			t.Errorf("IsSecretParam(%q) = true", name)
		}
	}
}

func TestText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"refused: access_token=abc&x=1", "refused: access_token=REDACTED&x=1"},
		{`Get "https://h/?code=abc": EOF`, `Get "https://h/?code=REDACTED": EOF`},
		{"Authorization: Bearer eyJ.abc-def", "Authorization: Bearer REDACTED"},
		{"basic dXNlcjpwYXNz and more", "basic REDACTED and more"},
		{"nothing to hide", "nothing to hide"},
	} {
		got := redact.Text(tt.in)
		if got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := redact.Text(got); again != got {
			t.Errorf("Text is not idempotent: %q → %q", got, again)
		}
	}
}

func TestSecrets(t *testing.T) {
	const sec = "a/b+c=d e"
	s := "raw " + sec + " escaped " + url.QueryEscape(sec) + " other x"
	got := redact.Secrets(s, "", sec, "x")
	if want := "raw REDACTED escaped REDACTED other REDACTED"; got != want {
		t.Errorf("Secrets = %q, want %q", got, want)
	}
	if got := redact.Secrets("keep me", ""); got != "keep me" {
		t.Errorf("an empty secret changed the text: %q", got)
	}
}

func TestErrorDropsTheURL(t *testing.T) {
	const tok = "tok-9f8e7d6c5b4a"
	ue := &url.Error{Op: "Post", URL: "https://user:pw@h/v1/commands?access_token=" + tok, Err: context.DeadlineExceeded}
	err := redact.Error(fmt.Errorf("outer: %w", ue))
	if got, want := err.Error(), "post: context deadline exceeded"; got != want {
		t.Errorf("Error = %q, want %q", got, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Error lost the cause of the *url.Error: %v", err)
	}
	var oe *net.OpError
	cause := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	if err := redact.Error(&url.Error{Op: "Get", URL: "http://h/", Err: cause}); !errors.As(err, &oe) {
		t.Errorf("Error hides the *net.OpError: %v", err)
	}
	if redact.Error(nil) != nil || redact.Scrub(nil) != nil {
		t.Error("a nil error became non-nil")
	}
}

func TestErrorScrubsSecrets(t *testing.T) {
	const sec = "client-secret-5ae1c09d7b"
	plain := errors.New("nothing secret here")
	if got := redact.Error(plain, sec); got != plain {
		t.Errorf("a clean error was replaced: %v", got)
	}
	wrapped := fmt.Errorf("fetch: %w: %s", context.Canceled, sec)
	got := redact.Error(wrapped, sec)
	if strings.Contains(got.Error(), sec) || !strings.Contains(got.Error(), "REDACTED") {
		t.Errorf("Error = %q, want the secret REDACTED", got)
	}
	if errors.Is(got, context.Canceled) {
		t.Error("a scrubbed error still unwraps to the chain that holds the secret")
	}
	tokenish := redact.Scrub(errors.New(`Get "http://h/?refresh_token=abc": EOF`))
	if strings.Contains(tokenish.Error(), "abc") {
		t.Errorf("Scrub kept a token-ish value: %v", tokenish)
	}
}

func TestTruncate(t *testing.T) {
	if got := redact.Truncate("abcdef", 3); got != "abc…" {
		t.Errorf("Truncate = %q", got)
	}
	if got := redact.Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate of a short text = %q", got)
	}
}

func TestTail(t *testing.T) {
	if got := redact.Tail("abcdefghijklmnopa1b2"); got != "…a1b2" {
		t.Errorf("Tail = %q", got)
	}
	if got := redact.Tail("short-secret"); got != "…" {
		t.Errorf("Tail of a short secret = %q", got)
	}
}
