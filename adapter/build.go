package adapter

import (
	"fmt"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
)

// Parts are what Build assembles for one node.
type Parts struct {
	Node   *Node
	Client *events.Client
	Tokens *auth.SharedSource
	Sink   *HTTPSink
}

// Build assembles a node from its configuration on a connected cluster: the
// shared Server-to-Server token source (the token lives in etcd, encrypted
// with the client secret), the subscription client, the HTTP recorder sink
// and the node. address is published in the membership record. httpClient
// (may be nil) is used for token requests. Errors name the config key at
// fault.
func Build(cfg *config.Config, cl *cluster.Cluster, address string, httpClient *http.Client, log zerolog.Logger) (*Parts, error) {
	fetcher, err := auth.NewS2S(auth.S2SConfig{TokenURL: cfg.Zoom.TokenURL, ClientID: cfg.Zoom.ClientID,
		ClientSecret: cfg.Zoom.ClientSecret, AccountID: cfg.Zoom.AccountID, GrantType: cfg.Zoom.GrantType,
		HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("zoom: %w", err)
	}
	store, err := cl.NewTokenStore(cfg.Zoom.ClientSecret)
	if err != nil {
		return nil, err
	}
	p := &Parts{Tokens: auth.NewSharedSource(store, fetcher, 0)}
	p.Sink, err = NewHTTPSink(HTTPSinkConfig{URL: cfg.Recorder.URL, RequestTimeout: cfg.Recorder.RequestTimeout,
		BearerToken: cfg.Recorder.BearerToken, Logger: log.With().Str("component", "recorder").Logger()})
	if err != nil {
		return nil, err
	}
	p.Client, err = events.NewClient(events.ClientConfig{
		URL: cfg.Zoom.SubscriptionURL, Tokens: p.Tokens,
		Handler:           func(ev *events.Event) { p.Node.Deliver(ev) },
		HeartbeatInterval: cfg.Zoom.HeartbeatInterval, WatchdogTimeout: cfg.Zoom.WatchdogTimeout,
		Logger: log.With().Str("component", "subscription").Logger(),
	})
	if err != nil {
		return nil, fmt.Errorf("zoom: %w", err)
	}
	p.Node, err = NewNode(NodeConfig{
		Name:         cfg.Node,
		Rules:        Rules{PauseOnHold: cfg.Rules.PauseOnHold, MaxEventAge: cfg.Rules.MaxEventAge},
		HandoffGrace: cfg.Rules.HandoffGrace,
		Version:      cfg.Version, Address: address,
		Logger: log,
	}, cl, p.Sink, p.Client)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ClusterConfig maps the etcd section of cfg onto a cluster.Config with the
// given endpoints.
func ClusterConfig(cfg *config.Config, endpoints []string) cluster.Config {
	return cluster.Config{
		Endpoints: endpoints, Prefix: cfg.Etcd.Prefix, Cluster: cfg.Etcd.Cluster, Node: cfg.Node,
		SessionTTL: cfg.Etcd.SessionTTL, FenceMargin: cfg.Etcd.FenceMargin, DedupWindow: cfg.Etcd.DedupWindow,
		Username: cfg.Etcd.Username, Password: cfg.Etcd.Password,
	}
}
