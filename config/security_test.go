package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/config"
)

// TestCleartextCredentialsRefused: a credential that would travel in clear
// text to a host other than loopback is a configuration error naming the
// key, the file and the setting that allows it; that setting (per section
// or for all) turns it into a warning.
func TestCleartextCredentialsRefused(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s")
	dir := t.TempDir()
	cert, key := touch(t, dir, "cert.pem"), touch(t, dir, "key.pem")
	for _, c := range []struct {
		name    string
		env     map[string]string
		problem string // "" : accepted
		allow   string // the section's allow variable that accepts it
	}{
		{name: "zoom token over http", env: map[string]string{"ZCC_ZOOM_TOKEN_URL": "http://zoom-sim:9000/oauth/token"},
			problem: "zoom.token_url: sends the client secret in clear text to zoom-sim:9000", allow: "ZCC_ZOOM_ALLOW_INSECURE_CREDENTIALS"},
		{name: "zoom token over http to loopback", env: map[string]string{"ZCC_ZOOM_TOKEN_URL": "http://127.0.0.1:9000/oauth/token"}},
		{name: "zoom token over http to localhost", env: map[string]string{"ZCC_ZOOM_TOKEN_URL": "http://localhost:9000/oauth/token"}},
		{name: "zoom token over http to ::1", env: map[string]string{"ZCC_ZOOM_TOKEN_URL": "http://[::1]:9000/oauth/token"}},
		{name: "subscription over ws", env: map[string]string{"ZCC_ZOOM_SUBSCRIPTION_URL": "ws://zoom-sim:9000/ws?subscriptionId=s"},
			problem: "zoom.subscription_url: sends the access token in clear text to zoom-sim:9000", allow: "ZCC_ZOOM_ALLOW_INSECURE_CREDENTIALS"},
		{name: "subscription over ws to loopback", env: map[string]string{"ZCC_ZOOM_SUBSCRIPTION_URL": "ws://127.0.0.1:9000/ws?subscriptionId=s"}},
		{name: "recorder bearer over http", env: map[string]string{"ZCC_RECORDER_URL": "http://ris-recorder:8090", "ZCC_RECORDER_BEARER_TOKEN": "b"},
			problem: "recorder.url: sends the recorder bearer token in clear text to ris-recorder:8090", allow: "ZCC_RECORDER_ALLOW_INSECURE_CREDENTIALS"},
		{name: "recorder over http without a token", env: map[string]string{"ZCC_RECORDER_URL": "http://ris-recorder:8090"}},
		{name: "recorder bearer over https", env: map[string]string{"ZCC_RECORDER_URL": "https://ris-recorder:8090", "ZCC_RECORDER_BEARER_TOKEN": "b"}},
		{name: "etcd password in clear", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "127.0.0.1:2379,10.0.0.2:2379", "ZCC_ETCD_USERNAME": "u", "ZCC_ETCD_PASSWORD": "p"},
			problem: "etcd.endpoints: sends the etcd password in clear text to 10.0.0.2:2379", allow: "ZCC_ETCD_ALLOW_INSECURE_CREDENTIALS"},
		{name: "etcd password in clear to http://", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "http://etcd-1:2379", "ZCC_ETCD_USERNAME": "u", "ZCC_ETCD_PASSWORD": "p"},
			problem: "etcd.endpoints: sends the etcd password in clear text to etcd-1:2379", allow: "ZCC_ETCD_ALLOW_INSECURE_CREDENTIALS"},
		{name: "etcd password over https endpoints", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "https://etcd-1:2379", "ZCC_ETCD_USERNAME": "u", "ZCC_ETCD_PASSWORD": "p"}},
		{name: "etcd password with etcd.tls", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "etcd-1:2379", "ZCC_ETCD_USERNAME": "u", "ZCC_ETCD_PASSWORD": "p", "ZCC_ETCD_TLS_CA_FILE": cert}},
		{name: "etcd password on loopback", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "localhost:2379", "ZCC_ETCD_USERNAME": "u", "ZCC_ETCD_PASSWORD": "p"}},
		{name: "etcd endpoints without a user", env: map[string]string{"ZCC_ETCD_ENDPOINTS": "10.0.0.2:2379"}},
		{name: "ops token in clear", env: map[string]string{"ZCC_HTTP_ADDR": "0.0.0.0:8081", "ZCC_HTTP_BEARER_TOKEN": "t"},
			problem: "http_bearer_token: is sent in clear text to 0.0.0.0:8081", allow: "ZCC_ALLOW_INSECURE_CREDENTIALS"},
		{name: "ops token over https", env: map[string]string{"ZCC_HTTP_ADDR": "0.0.0.0:8081", "ZCC_HTTP_BEARER_TOKEN": "t",
			"ZCC_HTTP_TLS_CERT_FILE": cert, "ZCC_HTTP_TLS_KEY_FILE": key}},
		{name: "ops token on loopback", env: map[string]string{"ZCC_HTTP_BEARER_TOKEN": "t"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			p := write(t, good)
			cfg, err := config.Load(p)
			if c.problem == "" {
				if err != nil {
					t.Fatalf("Load = %v; want accepted", err)
				}
				if w := cfg.Warnings(); len(w) != 0 {
					t.Errorf("Warnings = %q; want none", w)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.problem) || !strings.Contains(err.Error(), p) {
				t.Fatalf("Load = %v; want a *config.Error from %s with %q", err, p, c.problem)
			}
			allowKey := map[string]string{"ZCC_ZOOM_ALLOW_INSECURE_CREDENTIALS": "zoom.allow_insecure_credentials",
				"ZCC_RECORDER_ALLOW_INSECURE_CREDENTIALS": "recorder.allow_insecure_credentials",
				"ZCC_ETCD_ALLOW_INSECURE_CREDENTIALS":     "etcd.allow_insecure_credentials",
				"ZCC_ALLOW_INSECURE_CREDENTIALS":          "allow_insecure_credentials"}[c.allow]
			if !strings.Contains(err.Error(), "set "+allowKey+": true") {
				t.Errorf("Load = %v; want it to name %s", err, allowKey)
			}
			for _, allow := range []string{c.allow, "ZCC_ALLOW_INSECURE_CREDENTIALS"} {
				t.Setenv(allow, "true")
				cfg, err := config.Load(p)
				if err != nil {
					t.Fatalf("with %s: Load = %v; want accepted", allow, err)
				}
				if w := cfg.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], c.problem) {
					t.Errorf("with %s: Warnings = %q; want one starting %q", allow, w, c.problem)
				}
				t.Setenv(allow, "false")
			}
		})
	}
}

func TestHTTPSettings(t *testing.T) {
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "s")
	dir := t.TempDir()
	cert, key, ca := touch(t, dir, "cert.pem"), touch(t, dir, "key.pem"), touch(t, dir, "ca.pem")
	tok := filepath.Join(dir, "ops-token")
	if err := os.WriteFile(tok, []byte("ops-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(write(t, good+`http_tls_cert_file: `+cert+`
http_tls_key_file: `+key+`
http_tls_ca_file: `+ca+`
http_bearer_token_file: `+tok+`
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.HTTPTLS() || c.HTTPBearerToken != "ops-token-1" || c.HTTPTLSCAFile != ca || c.HTTPAddr != "127.0.0.1:8081" {
		t.Errorf("http settings = tls %v, token %q, ca %q, addr %q", c.HTTPTLS(), c.HTTPBearerToken, c.HTTPTLSCAFile, c.HTTPAddr)
	}
	if c.Zoom.SignatureMaxAge != 5*time.Minute {
		t.Errorf("zoom.signature_max_age default = %v; want 5m", c.Zoom.SignatureMaxAge)
	}

	_, err = config.Load(write(t, good+"http_tls_cert_file: "+cert+"\nhttp_tls_ca_file: "+filepath.Join(dir, "missing.pem")+"\n"))
	for _, want := range []string{"http_tls_cert_file and http_tls_key_file: set both or neither", "http_tls_ca_file:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load = %v; want %q", err, want)
		}
	}
	t.Setenv("ZCC_ZOOM_SIGNATURE_MAX_AGE", "30s")
	if c, err := config.Load(write(t, good)); err != nil || c.Zoom.SignatureMaxAge != 30*time.Second {
		t.Errorf("ZCC_ZOOM_SIGNATURE_MAX_AGE=30s: %v, %v", c, err)
	}
}

func TestReadUncheckedAndSecretFiles(t *testing.T) {
	t.Setenv("ZCC_NODE", "from-process-env") // ReadUnchecked must not read it
	p := write(t, `node: a
zoom:
  client_secret_file: zoom-secret
  subscription_url: ws://zoom:9000/ws?subscriptionId=s
etcd:
  password_file: etcd-password
  tls:
    key_file: etcd-key.pem
recorder:
  tls:
    key_file: rec-key.pem
http_tls_key_file: http-key.pem
`)
	c, err := config.ReadUnchecked(p, []string{"ZCC_RECORDER_BEARER_TOKEN_FILE=rec-token", "ZCC_HTTP_BEARER_TOKEN_FILE=/abs/ops-token"})
	if err != nil {
		t.Fatalf("ReadUnchecked (no secrets, insecure URL: not checked) = %v", err)
	}
	if c.Node != "a" || c.DataDir != "./data-a" {
		t.Errorf("node %q, data_dir %q; want a, ./data-a", c.Node, c.DataDir)
	}
	var got []string
	for _, f := range c.SecretFiles() {
		got = append(got, f.Key+"="+f.Path)
	}
	want := []string{"zoom.client_secret_file=zoom-secret", "etcd.password_file=etcd-password", "etcd.tls.key_file=etcd-key.pem",
		"recorder.bearer_token_file=rec-token", "recorder.tls.key_file=rec-key.pem", "http_bearer_token_file=/abs/ops-token", "http_tls_key_file=http-key.pem"}
	if !slices.Equal(got, want) {
		t.Errorf("SecretFiles = %q\nwant %q", got, want)
	}
	if _, err := config.ReadUnchecked(write(t, "bogus: 1\n"), nil); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := config.ReadUnchecked(p, []string{"ZCC_RULES_PAUSE_ON_HOLD=maybe"}); err == nil || !strings.Contains(err.Error(), "ZCC_RULES_PAUSE_ON_HOLD") {
		t.Errorf("bad env value: %v", err)
	}
}
