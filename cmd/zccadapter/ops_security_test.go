package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
	"github.com/zccadapter/zccadapter/internal/testcerts"
)

func TestRequireBearer(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inner " + r.URL.Path)) })
	h := requireBearer("ops-token-1", inner)
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200},
		{"/livez", "", 200},
		{"/status", "", 401},
		{"/metrics", "", 401},
		{"/readyz", "", 401},
		{"/healthz/", "", 401},
		{"/status", "Bearer wrong", 401},
		{"/status", "Bearer ops-token-1x", 401},
		{"/status", "Basic ops-token-1", 401},
		{"/status", "Bearer", 401},
		{"/status", "Bearer ops-token-1", 200},
		{"/metrics", "bearer ops-token-1", 200},
	} {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("GET %s with %q: %d; want %d", c.path, c.auth, rec.Code, c.want)
		}
		if rec.Code == 401 && (rec.Header().Get("WWW-Authenticate") == "" || strings.Contains(rec.Body.String(), "inner")) {
			t.Errorf("GET %s with %q: 401 without a challenge, or the endpoint answered anyway", c.path, c.auth)
		}
	}
	if requireBearer("", inner) == nil {
		t.Error("requireBearer without a token returned nil")
	}
}

// TestOpsEndpointsWithTLSAndBearer: a node configured with
// http_tls_cert_file/key_file and http_bearer_token serves HTTPS only,
// answers /healthz without the token and /status only with it; `status`,
// `doctor` and `health` read it with the same configuration.
func TestOpsEndpointsWithTLSAndBearer(t *testing.T) {
	l := newOpsLab(t)
	pki := testcerts.New(t)
	const token = "ops-bearer-5c7d"
	tokFile := filepath.Join(l.dir, "ops-token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", opsSecret)
	t.Setenv("ZCC_HTTP_TLS_CERT_FILE", pki.ServerCert)
	t.Setenv("ZCC_HTTP_TLS_KEY_FILE", pki.ServerKey)
	t.Setenv("ZCC_HTTP_TLS_CA_FILE", pki.CAFile)
	t.Setenv("ZCC_HTTP_BEARER_TOKEN_FILE", tokFile)
	pa := l.configFile(t, "a", "sub-a")
	l.runNode(t, pa)

	var v doctor.ClusterView
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := execute(t, "status", "--config", pa, "--json", "--timeout", "2s")
		if jerr := json.Unmarshal([]byte(out), &v); jerr == nil && len(v.Nodes) == 1 && v.Nodes[0].Status != nil && v.Nodes[0].Status.SocketUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never read the node's /status over https with the token: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not a correctness wait
	}
	addr := v.Nodes[0].Address
	if !strings.HasPrefix(addr, "https://127.0.0.1:") {
		t.Fatalf("advertised address %q; want https://127.0.0.1:port", addr)
	}

	pool := pki.Pool
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	get := func(url, auth string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", 200},
		{"/status", "", 401},
		{"/metrics", "", 401},
		{"/status", "Bearer " + token, 200},
	} {
		if got := get(addr+c.path, c.auth); got != c.want {
			t.Errorf("GET %s (auth %q): %d; want %d", c.path, c.auth, got, c.want)
		}
	}
	if got := get("http://"+strings.TrimPrefix(addr, "https://")+"/healthz", ""); got == 200 {
		t.Errorf("plain http answered 200; want https only")
	}

	out, err := execute(t, "doctor", "--config", pa, "--json", "--max-write-latency", "2s")
	var rep doctor.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("doctor --json: %v, %v\n%s", err, jerr, out)
	}
	if r := rep.Result(doctor.CheckSubscription); r.Outcome != doctor.Pass || !strings.Contains(r.Detail, "reports its socket up") {
		t.Errorf("doctor: %s = %s (%s); want pass from the running node's /status", doctor.CheckSubscription, r.Outcome, r.Detail)
	}
	if strings.Contains(out, token) {
		t.Errorf("doctor output shows the ops token")
	}

	if err := probe(t.Context(), "http://"+strings.TrimPrefix(addr, "https://")+"/readyz", 5*time.Second); err != nil {
		t.Errorf("health with the node's environment: %v", err)
	}
	t.Setenv("ZCC_HTTP_BEARER_TOKEN_FILE", "")
	if err := probe(t.Context(), addr+"/readyz", 5*time.Second); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("health without the token: %v; want HTTP 401", err)
	}
}

// TestEtcdCredentialsReachTheClusterConfig: etcd.username and
// etcd.password_file end up in the cluster configuration of the node and of
// `status`/`doctor`.
func TestEtcdCredentialsReachTheClusterConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "etcd-password")
	if err := os.WriteFile(pw, []byte("etcd-pw-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "node.yaml")
	y := "node: a\netcd:\n  endpoints: [\"127.0.0.1:2379\"]\n  username: zcc\n  password_file: " + pw +
		"\nzoom:\n  account_id: a\n  client_id: c\n  subscription_url: wss://ws.zoom.us/ws?subscriptionId=s\nrecorder:\n  url: http://127.0.0.1:1\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZCC_ZOOM_CLIENT_SECRET", "x")
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cc := doctor.ClusterConfig(cfg, time.Second); cc.Username != "zcc" || cc.Password != "etcd-pw-1" {
		t.Errorf("cluster config has username %q, password set %v; want zcc and the file's password", cc.Username, cc.Password != "")
	}
}
