package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
)

// openPaths are the endpoints served without the bearer token: liveness
// probes, which say nothing but "the process runs".
var openPaths = map[string]bool{"/healthz": true, "/livez": true}

// requireBearer wraps next so that every request but those for openPaths
// must carry "Authorization: Bearer <token>" (the scheme in any case),
// compared in constant time; others get 401 with a WWW-Authenticate
// challenge. An empty token returns next unchanged.
func requireBearer(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token)) // equal lengths: the compare leaks nothing
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPaths[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		g := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(g[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="zccadapter"`)
			http.Error(w, "unauthorized: this endpoint needs the node's http_bearer_token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// opsTLS returns the server TLS configuration of cfg's endpoints (TLS 1.2
// or later, the certificate of http_tls_cert_file/http_tls_key_file, read
// once), or nil when they serve plain HTTP. Errors name the keys.
func opsTLS(cfg *config.Config) (*tls.Config, error) {
	if !cfg.HTTPTLS() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("http_tls_cert_file/http_tls_key_file: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// nodeClientFromEnv returns the client for nodes' endpoints of commands
// without a node config (the drill, `health`), from the same variables the
// nodes read: ZCC_HTTP_BEARER_TOKEN or ZCC_HTTP_BEARER_TOKEN_FILE (the
// token), ZCC_HTTP_TLS_CERT_FILE (set: the nodes serve https) and
// ZCC_HTTP_TLS_CA_FILE (verifies them). The drill's local nodes inherit the
// drill's environment, so they serve what the drill expects. base may be
// nil.
func nodeClientFromEnv(base *http.Client) (*http.Client, error) {
	nc := doctor.NodeClientConfig{
		TLS:         os.Getenv("ZCC_HTTP_TLS_CERT_FILE") != "",
		CAFile:      os.Getenv("ZCC_HTTP_TLS_CA_FILE"),
		BearerToken: os.Getenv("ZCC_HTTP_BEARER_TOKEN"),
		Base:        base,
	}
	if f := os.Getenv("ZCC_HTTP_BEARER_TOKEN_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ZCC_HTTP_BEARER_TOKEN_FILE: %w", err)
		}
		nc.BearerToken = strings.TrimSpace(string(b))
	}
	return doctor.NewNodeClient(nc)
}
