package doctor_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zccadapter/zccadapter/doctor"
	"github.com/zccadapter/zccadapter/internal/testcerts"
)

// TestNodeClient: the nodes' client sends the bearer token, follows no
// redirect, and with TLS sends an http:// URL over https, verified with the
// CA file, also when its base transport is one HTTP/2 was set up on (cloning
// such a transport with a new TLS config used to make the server speak
// HTTP/2 to an HTTP/1 client).
func TestNodeClient(t *testing.T) {
	pki := testcerts.New(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
			return
		}
		io.WriteString(w, r.Proto+" "+r.Header.Get("Authorization"))
	}))
	srv.TLS = pki.ServerTLS(t, false)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	base := &http.Client{Transport: &http.Transport{}}
	defer base.CloseIdleConnections()
	hc, err := doctor.NewNodeClient(doctor.NodeClientConfig{TLS: true, CAFile: pki.CAFile, BearerToken: "tok-1", Base: base})
	if err != nil {
		t.Fatal(err)
	}
	defer hc.CloseIdleConnections()
	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	for range 2 {
		resp, err := hc.Get(plain + "/status")
		if err != nil {
			t.Fatalf("GET over the node client: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := string(b); !strings.HasSuffix(got, " Bearer tok-1") {
			t.Errorf("server saw %q; want the bearer token", got)
		}
	}
	resp, err := hc.Get(plain + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect: %d; want the 302 itself, not followed", resp.StatusCode)
	}
	if _, err := doctor.NewNodeClient(doctor.NodeClientConfig{TLS: true, CAFile: pki.CAFile + ".missing"}); err == nil ||
		!strings.Contains(err.Error(), "http_tls_ca_file") {
		t.Errorf("missing CA file: %v; want an error naming http_tls_ca_file", err)
	}
	untrusted, err := doctor.NewNodeClient(doctor.NodeClientConfig{TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := untrusted.Get(plain + "/status"); err == nil {
		resp.Body.Close()
		t.Error("a client without the CA trusted the test certificate")
	}
	untrusted.CloseIdleConnections()
}
