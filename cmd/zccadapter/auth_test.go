package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/auth/authtest"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/redact"
)

const (
	testClientID     = "cid-cmd"
	testClientSecret = "cmd-client-secret-81f3a2"
	testRedirect     = "https://ops.example.com/cb"
)

// writeAuthConfig writes a node config for the auth commands; etcd is the
// given endpoint, or the embedded member (data_dir) when endpoint is "".
func writeAuthConfig(t *testing.T, tokenURL, grant, endpoint string) string {
	t.Helper()
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", testClientSecret)
	dir := t.TempDir()
	etcd := fmt.Sprintf("  endpoints: [%q]\n", endpoint)
	if endpoint == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		etcd = fmt.Sprintf("  embedded_client_url: http://127.0.0.1:%d\n", port)
	}
	cfg := fmt.Sprintf(`node: a
data_dir: %s
etcd:
%s  cluster: cmdtest
zoom:
  token_url: %s
  grant_type: %s
  account_id: acct
  client_id: %s
  subscription_url: ws://127.0.0.1:1/ws?subscriptionId=sub-a
recorder:
  url: http://127.0.0.1:1
`, filepath.Join(dir, "data"), etcd, tokenURL, grant, testClientID)
	p := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runAuth runs `zccadapter auth args...` in-process and returns stdout.
func runAuth(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := authCmd()
	cmd.PersistentFlags().String("log-level", "", "")
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

func startTestEtcd(t *testing.T) string {
	t.Helper()
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.Endpoints()[0]
}

func noLeak(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s leaks a secret (%s):\n%s", what, redact.Tail(s), text)
		}
	}
}

// TestAuthExchangeThenToken: `auth exchange` stores the refresh token and
// prints only a redacted confirmation; `auth token --json` then reads the
// stored token (no request to Zoom) and lists the missing minimum scopes
// with exit status 2.
func TestAuthExchangeThenToken(t *testing.T) {
	z := authtest.New(t, testClientID, testClientSecret)
	cfg := writeAuthConfig(t, z.URL, "refresh_token", startTestEtcd(t))
	code := z.Code(testRedirect)
	z.Allow(authtest.GrantAuthorizationCode, 1)
	out, err := runAuth(t, "exchange", "--config", cfg, "--code", code, "--redirect-uri", testRedirect)
	if err != nil {
		t.Fatalf("exchange: %v\n%s", err, out)
	}
	if !strings.Contains(out, "refresh token stored (…") || !strings.Contains(out, "access token expires 20") ||
		!strings.Contains(out, "scopes: contact_center:read:task:admin") {
		t.Errorf("confirmation:\n%s", out)
	}
	noLeak(t, "exchange output", out, append(z.Issued(), testClientSecret)...)

	out, err = runAuth(t, "token", "--config", cfg, "--json")
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 2 {
		t.Fatalf("token: %v, want exit status 2 for missing scopes\n%s", err, out)
	}
	var rep struct {
		GrantType string   `json:"grant_type"`
		Source    string   `json:"source"`
		ExpiresIn int64    `json:"expires_in_seconds"`
		Scopes    []string `json:"scopes"`
		Missing   []struct {
			Scope   string   `json:"scope"`
			Classic []string `json:"classic"`
		} `json:"missing_scopes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.GrantType != "refresh_token" || rep.Source != "cluster store" || rep.ExpiresIn < 3000 || len(rep.Scopes) != 2 {
		t.Errorf("report: %+v", rep)
	}
	if len(rep.Missing) != 3 || rep.Missing[0].Scope != "user:read:presence_status:admin" || len(rep.Missing[0].Classic) == 0 {
		t.Errorf("missing: %+v", rep.Missing)
	}
	noLeak(t, "token output", out, append(z.Issued(), testClientSecret)...)

	// The text form says the same for a human.
	out, _ = runAuth(t, "token", "--config", cfg)
	for _, want := range []string{"grant type:  refresh_token", "from the cluster store", "minimum scopes missing (3)", "contact_center_user:read:admin"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// TestAuthExchangeErrors: a used code and a wrong grant type give the
// operator the next step, and nothing secret.
func TestAuthExchangeErrors(t *testing.T) {
	z := authtest.New(t, testClientID, testClientSecret)
	endpoint := startTestEtcd(t)
	cfg := writeAuthConfig(t, z.URL, "refresh_token", endpoint)
	code := z.Code(testRedirect)
	z.Allow(authtest.GrantAuthorizationCode, 2)
	if out, err := runAuth(t, "exchange", "--config", cfg, "--code", code, "--redirect-uri", testRedirect); err != nil {
		t.Fatalf("first exchange: %v\n%s", err, out)
	}
	_, err := runAuth(t, "exchange", "--config", cfg, "--code", code, "--redirect-uri", testRedirect)
	if err == nil || !strings.Contains(err.Error(), "codes are single-use and expire after 5 minutes; get a new one") ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("used code: %v", err)
	}
	noLeak(t, "error", err.Error(), append(z.Issued(), testClientSecret)...)

	s2s := writeAuthConfig(t, z.URL, "account_credentials", endpoint)
	if _, err := runAuth(t, "exchange", "--config", s2s, "--code", z.Code(testRedirect), "--redirect-uri", testRedirect); err == nil ||
		!strings.Contains(err.Error(), "zoom.grant_type") {
		t.Fatalf("exchange with account_credentials: %v", err)
	}
}

// TestAuthTokenWithoutExchange: refresh_token grant, nothing stored: the
// error tells the operator to run auth exchange, and Zoom is not asked.
func TestAuthTokenWithoutExchange(t *testing.T) {
	z := authtest.New(t, testClientID, testClientSecret)
	cfg := writeAuthConfig(t, z.URL, "refresh_token", startTestEtcd(t))
	_, err := runAuth(t, "token", "--config", cfg)
	if !errors.Is(err, auth.ErrReauthorize) || !strings.Contains(err.Error(), "zccadapter auth exchange") {
		t.Fatalf("token: %v", err)
	}
}

// TestAuthEmbeddedEtcd: with no endpoints configured, both commands use the
// embedded member in data_dir, as run does: the token exchange stores is
// the one token reads back.
func TestAuthEmbeddedEtcd(t *testing.T) {
	z := authtest.New(t, testClientID, testClientSecret)
	cfg := writeAuthConfig(t, z.URL, "refresh_token", "")
	z.Allow(authtest.GrantAuthorizationCode, 1)
	if out, err := runAuth(t, "exchange", "--config", cfg, "--code", z.Code(testRedirect), "--redirect-uri", testRedirect); err != nil {
		t.Fatalf("exchange: %v\n%s", err, out)
	}
	out, err := runAuth(t, "token", "--config", cfg, "--json")
	if !strings.Contains(out, `"source": "cluster store"`) {
		t.Fatalf("token: %v\n%s", err, out)
	}
}
