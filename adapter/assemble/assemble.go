package assemble

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
)

// Parts are what Build assembles for one node.
type Parts struct {
	Node   *adapter.Node
	Client *events.Client
	Tokens *auth.SharedSource
	Sink   *adapter.HTTPSink
}

// Handler serves the node's endpoints (see adapter.Node.Handler) with the
// metrics of every part Build assembled: the node, its subscription client
// and its token source.
func (p *Parts) Handler() http.Handler {
	return p.Node.HandlerWith(adapter.MetricsOptions{TokenFetches: p.Tokens.Fetches})
}

// TokenFetcher returns the Fetcher of zoom.grant_type: the Server-to-Server
// grant (account_credentials, the default, or client_credentials) or the
// refresh-token grant (an auth.Refresher; the refresh token comes from the
// cluster store). httpClient (may be nil) is used for token requests. It
// does no I/O; errors name the config key at fault.
func TokenFetcher(z config.Zoom, httpClient *http.Client) (auth.Fetcher, error) {
	var (
		f   auth.Fetcher
		err error
	)
	switch z.GrantType {
	case auth.GrantRefreshToken:
		f, err = auth.NewRefresh(auth.ClientConfig{TokenURL: z.TokenURL, ClientID: z.ClientID,
			ClientSecret: z.ClientSecret, HTTPClient: httpClient})
	case "", auth.GrantAccountCredentials, auth.GrantClientCredentials:
		f, err = auth.NewS2S(auth.S2SConfig{TokenURL: z.TokenURL, ClientID: z.ClientID,
			ClientSecret: z.ClientSecret, AccountID: z.AccountID, GrantType: z.GrantType, HTTPClient: httpClient})
	default:
		err = fmt.Errorf("grant_type %q is not account_credentials, client_credentials or refresh_token", z.GrantType)
	}
	if err != nil {
		return nil, fmt.Errorf("zoom: %w", err)
	}
	return f, nil
}

// TokenSource returns the node's shared token source for the zoom section:
// the fetcher of zoom.grant_type over the cluster's token store (the token
// lives in etcd, sealed with a key derived from the client secret; one node
// fetches or refreshes at a time). Its alerts (re-authorisation needed) go
// to log with component "auth". It does no I/O.
func TokenSource(z config.Zoom, cl *cluster.Cluster, httpClient *http.Client, log zerolog.Logger) (*auth.SharedSource, error) {
	fetcher, err := TokenFetcher(z, httpClient)
	if err != nil {
		return nil, err
	}
	store, err := cl.NewTokenStore(z.ClientSecret)
	if err != nil {
		return nil, err
	}
	return auth.NewSharedSource(store, fetcher, 0, auth.WithLogger(log.With().Str("component", "auth").Logger())), nil
}

// Build assembles a node from its configuration on a connected cluster: the
// shared token source of zoom.grant_type (see TokenSource), the
// subscription client, the HTTP recorder sink and the node, which runs on
// cl's protocol view (cl.Protocol()). address is published in the
// membership record. httpClient (may be nil) is used for token requests.
// It does no I/O but reading the recorder's TLS files; errors name the
// config key at fault. The caller closes cl after the node's Run returned.
func Build(cfg *config.Config, cl *cluster.Cluster, address string, httpClient *http.Client, log zerolog.Logger) (*Parts, error) {
	tokens, err := TokenSource(cfg.Zoom, cl, httpClient, log)
	if err != nil {
		return nil, err
	}
	p := &Parts{Tokens: tokens}
	recClient, err := RecorderClient(cfg.Recorder)
	if err != nil {
		return nil, err
	}
	p.Sink, err = adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: cfg.Recorder.URL, RequestTimeout: cfg.Recorder.RequestTimeout,
		BearerToken: cfg.Recorder.BearerToken, Client: recClient, Logger: log.With().Str("component", "recorder").Logger()})
	if err != nil {
		return nil, err
	}
	limits := events.Limits{MaxFuture: cfg.Rules.MaxEventFuture, MaxPast: cfg.Rules.MaxEventPast}
	p.Client, err = events.NewClient(events.ClientConfig{
		URL: cfg.Zoom.SubscriptionURL, Tokens: p.Tokens,
		HeartbeatInterval: cfg.Zoom.HeartbeatInterval, WatchdogTimeout: cfg.Zoom.WatchdogTimeout,
		SecretToken: cfg.Zoom.SecretToken, SignatureMaxAge: cfg.Zoom.SignatureMaxAge,
		Logger: log.With().Str("component", "subscription").Logger(),
		Limits: limits,
		// The node counts and quarantines what does not parse; the client
		// delivers only once Node.Run runs it, after p.Node is set.
		OnMalformed: func(raw []byte, pe *events.ParseError) { p.Node.NoteMalformed(raw, pe) },
	})
	if err != nil {
		return nil, fmt.Errorf("zoom: %w", err)
	}
	// NewNode names its own fields; these two come from the config file.
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"rules.handoff_grace", cfg.Rules.HandoffGrace}, {"zoom.degraded_after", cfg.Zoom.DegradedAfter},
		{"rules.engagement_idle_timeout", cfg.Rules.EngagementIdleTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s: %s must not be negative", d.key, d.v)
		}
	}
	p.Node, err = adapter.NewNode(adapter.NodeConfig{
		Name:                  cfg.Node,
		Rules:                 adapter.Rules{PauseOnHold: cfg.Rules.PauseOnHold, MaxEventAge: cfg.Rules.MaxEventAge},
		HandoffGrace:          cfg.Rules.HandoffGrace,
		DegradedAfter:         cfg.Zoom.DegradedAfter,
		EngagementIdleTimeout: cfg.Rules.EngagementIdleTimeout,
		Limits:                limits,
		MaxAttempts:           cfg.Recorder.MaxAttempts,
		Version:               cfg.Version, Address: address,
		Logger: log,
	}, cl.Protocol(), p.Sink, p.Client)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ClusterConfig maps the etcd section of cfg (and its node) onto a
// cluster.Config with the given endpoints; cluster.Connect applies the
// defaults of the fields left zero.
func ClusterConfig(cfg *config.Config, endpoints []string) cluster.Config {
	return cluster.Config{
		Endpoints: endpoints, Prefix: cfg.Etcd.Prefix, Cluster: cfg.Etcd.Cluster, Node: cfg.Node,
		SessionTTL: cfg.Etcd.SessionTTL, FenceMargin: cfg.Etcd.FenceMargin, DedupWindow: cfg.Etcd.DedupWindow,
		QuarantineTTL: cfg.Etcd.QuarantineTTL, QuarantineMax: cfg.Etcd.QuarantineMax,
		Username: cfg.Etcd.Username, Password: cfg.Etcd.Password,
		CAFile: cfg.Etcd.TLS.CAFile, CertFile: cfg.Etcd.TLS.CertFile, KeyFile: cfg.Etcd.TLS.KeyFile,
	}
}

// RecorderClient returns the HTTP client for the recorder: keep-alives, and
// with recorder.tls set, TLS 1.2 or later trusting recorder.tls.ca_file
// (else the system's trust store) and presenting the client certificate of
// recorder.tls.cert_file/key_file when set. Errors name the key at fault.
// The bearer credential is not part of the client: callers set it per
// request.
func RecorderClient(r config.Recorder) (*http.Client, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, TLSHandshakeTimeout: 5 * time.Second}
	if r.TLS.Enabled() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(r.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("recorder.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("recorder.tls.ca_file: %s holds no PEM certificate", r.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if r.TLS.CertFile != "" || r.TLS.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(r.TLS.CertFile, r.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("recorder.tls.cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, nil
}
