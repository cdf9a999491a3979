package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/config"
)

func touch(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLSKeysLoadFromYAMLAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := touch(t, dir, "ca.pem"), touch(t, dir, "cert.pem"), touch(t, dir, "key.pem")
	p := write(t, good+`  tls:
    ca_file: `+ca+`
`)
	// recorder.url must be https:// with recorder.tls; the YAML above put
	// tls under recorder.
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s")
	t.Setenv("ZCC_RECORDER_URL", "https://rec.example:8090")
	t.Setenv("ZCC_ETCD_TLS_CA_FILE", ca)
	t.Setenv("ZCC_ETCD_TLS_CERT_FILE", cert)
	t.Setenv("ZCC_ETCD_TLS_KEY_FILE", key)
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Recorder.TLS.CAFile != ca || !c.Recorder.TLS.Enabled() {
		t.Errorf("recorder.tls = %+v, want ca_file %s", c.Recorder.TLS, ca)
	}
	if got := c.Etcd.TLS; got.CAFile != ca || got.CertFile != cert || got.KeyFile != key {
		t.Errorf("etcd.tls = %+v, want the files from ZCC_ETCD_TLS_*", got)
	}
}

func TestTLSProblemsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	cert := touch(t, dir, "cert.pem")
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s")
	p := write(t, `node: a
etcd:
  tls:
    cert_file: `+cert+`
zoom:
  account_id: acct
  client_id: cid
  subscription_url: wss://ws.zoom.us/ws?subscriptionId=sub-a
recorder:
  url: http://127.0.0.1:8090
  tls:
    ca_file: `+filepath.Join(dir, "missing.pem")+`
`)
	_, err := config.Load(p)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("Load: %v, want a *config.Error", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"etcd.tls.cert_file and etcd.tls.key_file: set both or neither",
		"etcd.tls: applies to etcd.endpoints only",
		"recorder.tls.ca_file:",
		"recorder.tls: set, but recorder.url is http://",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Load error %q does not report %q", msg, want)
		}
	}
}

func TestLoadForStatusNeedsNoSecret(t *testing.T) {
	p := write(t, good)
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "")
	os.Unsetenv("ZCC_ZOOM_CLIENT_SECRET")
	if _, err := config.Load(p); err == nil {
		t.Fatal("Load without a client secret succeeded, want an error")
	}
	c, err := config.LoadForStatus(p)
	if err != nil {
		t.Fatalf("LoadForStatus: %v", err)
	}
	if c.Zoom.ClientSecret != "" {
		t.Errorf("LoadForStatus invented a client secret %q", c.Zoom.ClientSecret)
	}
}
