package adapter_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/testcerts"
	"github.com/zccadapter/zccadapter/sim/recorder"
)

// tlsRecorder is the reference recorder behind httptest.NewTLSServer with
// the test PKI's server certificate, requiring the bearer credential and,
// with mtls, a client certificate.
func tlsRecorder(t *testing.T, pki *testcerts.Set, mtls bool) *httptest.Server {
	t.Helper()
	rec := recorder.New(zerolog.New(zerolog.NewTestWriter(t)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+labBearer {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rec.Handler().ServeHTTP(w, r)
	})
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = pki.ServerTLS(t, mtls)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func TestRecorderOverHTTPS(t *testing.T) {
	pki := testcerts.New(t)
	plain := tlsRecorder(t, pki, false)
	mtls := tlsRecorder(t, pki, true)
	other := testcerts.New(t) // a CA that did not sign the recorder's certificate
	for _, c := range []struct {
		name    string
		url     string
		tls     config.TLS
		bearer  string
		wantErr string
	}{
		{"custom CA", plain.URL, config.TLS{CAFile: pki.CAFile}, labBearer, ""},
		{"system trust store only", plain.URL, config.TLS{}, labBearer, "certificate"},
		{"wrong CA", plain.URL, config.TLS{CAFile: other.CAFile}, labBearer, "certificate"},
		{"wrong bearer", plain.URL, config.TLS{CAFile: pki.CAFile}, "nope", "HTTP 401"},
		{"client certificate", mtls.URL, config.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, labBearer, ""},
		{"client certificate missing", mtls.URL, config.TLS{CAFile: pki.CAFile}, labBearer, "tls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hc, err := assemble.RecorderClient(config.Recorder{URL: c.url, TLS: c.tls})
			if err != nil {
				t.Fatal(err)
			}
			sink, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: c.url, Client: hc, BearerToken: c.bearer,
				RequestTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sink.OpenRecordings(t.Context())
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("OpenRecordings: %v, want success", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("OpenRecordings succeeded, want an error with %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.wantErr)):
				t.Fatalf("OpenRecordings: %v, want an error with %q", err, c.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), c.bearer) {
				t.Errorf("the error %q holds the bearer credential", err)
			}
		})
	}
}

func TestRecorderClientRejectsBadFiles(t *testing.T) {
	pki := testcerts.New(t)
	for _, c := range []struct {
		name string
		tls  config.TLS
		want string
	}{
		{"missing CA file", config.TLS{CAFile: pki.CAFile + ".missing"}, "recorder.tls.ca_file"},
		{"CA file without a certificate", config.TLS{CAFile: pki.ClientKey}, "recorder.tls.ca_file"},
		{"key without certificate", config.TLS{KeyFile: pki.ClientKey}, "recorder.tls.cert_file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := assemble.RecorderClient(config.Recorder{URL: "https://127.0.0.1:1", TLS: c.tls})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("RecorderClient: %v, want an error naming %s", err, c.want)
			}
		})
	}
}

// The node built from a config with recorder.tls drives an HTTPS recorder
// that requires a client certificate and the bearer credential: it can
// only become leader if its epoch claim gets through.
func TestBuildUsesRecorderTLS(t *testing.T) {
	pki := testcerts.New(t)
	l := newLab(t)
	rec := recorder.New(l.Log)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+labBearer || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		rec.Handler().ServeHTTP(w, r)
	}))
	ts.TLS = pki.ServerTLS(t, true)
	ts.StartTLS()
	l.OnClose(ts.Close) // after the node that uses it stops
	l.Rec, l.RecTS = rec, ts
	a := l.serve("a", func(c *config.Config) {
		c.Recorder.TLS = config.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	})
	s := a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	claimed := false
	for _, e := range rec.Ledger().Entries {
		claimed = claimed || (e.Kind == "epoch" && e.Claim != nil && e.Claim.Epoch == s.Epoch)
	}
	if !claimed {
		t.Errorf("the recorder's ledger shows no epoch claim %d over TLS: %+v", s.Epoch, rec.Ledger().Entries)
	}
}
