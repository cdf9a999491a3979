package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/config"
)

const good = `node: a
etcd:
  endpoints: ["127.0.0.1:2379"]
zoom:
  account_id: acct
  client_id: cid
  subscription_url: wss://ws.zoom.us/ws?subscriptionId=sub-a
recorder:
  url: http://127.0.0.1:8090
`

func write(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadWithSecretFromEnvironment(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s3cret")
	t.Setenv("ZCC_ETCD_SESSION_TTL", "7s")
	t.Setenv("ZCC_ETCD_ENDPOINTS", "10.0.0.1:2379, 10.0.0.2:2379")
	c, err := config.Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Zoom.ClientSecret != "s3cret" || c.Etcd.SessionTTL != 7*time.Second || len(c.Etcd.Endpoints) != 2 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	if c.Zoom.HeartbeatInterval != 30*time.Second || c.Rules.MaxEventAge != 10*time.Minute || c.HTTPAddr == "" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestSecretFromFile(t *testing.T) {
	sf := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(sf, []byte("from-file\n"), 0o600)
	c, err := config.Load(write(t, strings.Replace(good, "  client_id: cid\n", "  client_id: cid\n  client_secret_file: "+sf+"\n", 1)))
	if err != nil || c.Zoom.ClientSecret != "from-file" {
		t.Fatalf("secret file: %v", err)
	}
}

func TestBadConfigNamesEveryKeyAndTheFile(t *testing.T) {
	p := write(t, "node: a b\nzoom:\n  subscription_url: https://x/ws?access_token=abc\n  heartbeat_interval: 1m\nrecorder:\n  url: ftp://r\n")
	_, err := config.Load(p)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("want *config.Error, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{p, "node:", "zoom.account_id", "zoom.client_id", "ZCC_ZOOM_CLIENT_SECRET",
		"zoom.subscription_url", "access_token", "recorder.url", "zoom.watchdog_timeout"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "abc") {
		t.Errorf("error echoes the token from the URL: %s", msg)
	}
}

func TestUnknownKeyAndBadEnvAreErrors(t *testing.T) {
	if _, err := config.Load(write(t, good+"bogus: 1\n")); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown key: %v", err)
	}
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "x")
	t.Setenv("ZCC_RULES_PAUSE_ON_HOLD", "maybe")
	if _, err := config.Load(write(t, good)); err == nil || !strings.Contains(err.Error(), "ZCC_RULES_PAUSE_ON_HOLD") {
		t.Errorf("bad env value: %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestDeployExamplesLoad keeps the shipped example configs valid.
func TestDeployExamplesLoad(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "example")
	files, _ := filepath.Glob("../deploy/examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d example configs, want ≥ 3", len(files))
	}
	for _, f := range files {
		if _, err := config.Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestYAMLTypeErrorNamesTheKey(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "x")
	p := write(t, strings.Replace(good, "etcd:\n", "etcd:\n  session_ttl: banana\n", 1))
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "etcd.session_ttl (line 3)") || !strings.Contains(err.Error(), p) {
		t.Fatalf("error does not name the key and file: %v", err)
	}
}

func TestTokenInSubscriptionURLInAnyForm(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "x")
	for _, q := range []string{"access_token=SECRETV", "ACCESS_TOKEN=SECRETV", "access%5Ftoken=SECRETV", "token=SECRETV"} {
		_, err := config.Load(write(t, strings.Replace(good, "subscriptionId=sub-a", "subscriptionId=sub-a&"+q, 1)))
		if err == nil || !strings.Contains(err.Error(), "zoom.subscription_url") || strings.Contains(err.Error(), "SECRETV") {
			t.Errorf("%s: %v", q, err)
		}
	}
}
