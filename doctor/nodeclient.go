package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/zccadapter/zccadapter/config"
)

// NodeClientConfig says how to reach the nodes' HTTP endpoints (/status).
// The zero value is plain HTTP without a token.
type NodeClientConfig struct {
	// TLS is set when the nodes serve HTTPS (http_tls_cert_file): a request
	// to an http:// node URL, or to an address without a scheme (which
	// fetchStatus makes http://), goes to https:// instead.
	TLS bool
	// CAFile is a PEM bundle that verifies the nodes' certificates
	// (http_tls_ca_file). Empty: the system's trust store.
	CAFile string
	// BearerToken is sent as "Authorization: Bearer …" on every request
	// (http_bearer_token). Empty: none.
	BearerToken string
	// Base supplies the transport and timeout: a *http.Transport (or nil,
	// http.DefaultTransport) is cloned and given the CA; any other
	// RoundTripper is used as it is. nil: a client of its own.
	Base *http.Client
}

// NodeClientConfigOf returns cfg's settings for reaching the nodes of its
// pair: both nodes share the token and the CA.
func NodeClientConfigOf(cfg *config.Config) NodeClientConfig {
	return NodeClientConfig{TLS: cfg.HTTPTLS(), CAFile: cfg.HTTPTLSCAFile, BearerToken: cfg.HTTPBearerToken}
}

// NewNodeClient returns an HTTP client for the nodes' endpoints, and for
// nothing else: it hands every host it is sent to the bearer token. It
// follows no redirect. It reads CAFile once; errors name http_tls_ca_file.
func NewNodeClient(c NodeClientConfig) (*http.Client, error) {
	var hc http.Client
	if c.Base != nil {
		hc = *c.Base
	}
	rt := hc.Transport
	if c.TLS {
		var tr *http.Transport
		switch t := rt.(type) {
		case nil:
			if dt, ok := http.DefaultTransport.(*http.Transport); ok {
				tr = dt.Clone()
			}
		case *http.Transport:
			tr = t.Clone()
		}
		if tr != nil {
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if tr.TLSClientConfig != nil {
				tc = tr.TLSClientConfig.Clone()
				// Clone set up the original's HTTP/2 and copied its ALPN list
				// and upgrade map; a new TLS config must start without them,
				// or the server answers in HTTP/2 to an HTTP/1 client.
				tc.NextProtos = nil
			}
			tr.TLSNextProto = nil
			if c.CAFile != "" {
				pem, err := os.ReadFile(c.CAFile)
				if err != nil {
					return nil, fmt.Errorf("http_tls_ca_file: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("http_tls_ca_file: %s holds no PEM certificate", c.CAFile)
				}
				tc.RootCAs = pool
			}
			tr.TLSClientConfig = tc
			rt = tr
		}
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	hc.Transport = &nodeTransport{rt: rt, token: c.BearerToken, upgrade: c.TLS}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

// nodeTransport adds the bearer token and upgrades http:// to https://.
type nodeTransport struct {
	rt      http.RoundTripper
	token   string
	upgrade bool
}

func (t *nodeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	up := t.upgrade && req.URL.Scheme == "http"
	if t.token == "" && !up {
		return t.rt.RoundTrip(req)
	}
	r := req.Clone(req.Context()) // a RoundTripper must not change the caller's request
	if up {
		r.URL.Scheme = "https"
	}
	if t.token != "" {
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.rt.RoundTrip(r)
}
