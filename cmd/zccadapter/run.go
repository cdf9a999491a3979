package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/events"
)

func runCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run one RIS node",
		Long: "Runs one node of the pair: its own Zoom event subscription, the etcd election,\n" +
			"and, as leader, the recorder commands. Settings come from --config (YAML) and\n" +
			"ZCC_* environment variables; secrets from the environment or *_file keys.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := newLogger(logLevelFlag(cmd, cfg.LogLevel))
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), cfg, log.With().Str("node", cfg.Node).Logger())
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file")
	return cmd
}

// runNode runs one node until ctx ends, then shuts down within ~5s.
func runNode(ctx context.Context, cfg *config.Config, log zerolog.Logger) error {
	endpoints := cfg.Etcd.Endpoints
	if len(endpoints) == 0 {
		m, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: cfg.EtcdDataDir(), ClientURL: cfg.Etcd.EmbeddedClientURL,
			PeerURL: "http://127.0.0.1:0"})
		if err != nil {
			return err
		}
		defer m.Close()
		endpoints = m.Endpoints()
		log.Warn().Strs("endpoints", endpoints).Msg("no etcd endpoints configured: running an embedded single-member etcd (one node alone, not a pair)")
	}
	cl, err := cluster.Connect(ctx, cluster.Config{
		Endpoints: endpoints, Prefix: cfg.Etcd.Prefix, Cluster: cfg.Etcd.Cluster, Node: cfg.Node,
		SessionTTL: cfg.Etcd.SessionTTL, FenceMargin: cfg.Etcd.FenceMargin, DedupWindow: cfg.Etcd.DedupWindow,
		Username: cfg.Etcd.Username, Password: cfg.Etcd.Password,
	}, log)
	if err != nil {
		return err
	}
	defer cl.Close()

	fetcher, err := auth.NewS2S(auth.S2SConfig{TokenURL: cfg.Zoom.TokenURL, ClientID: cfg.Zoom.ClientID,
		ClientSecret: cfg.Zoom.ClientSecret, AccountID: cfg.Zoom.AccountID, GrantType: cfg.Zoom.GrantType})
	if err != nil {
		return fmt.Errorf("zoom: %w", err)
	}
	store, err := cl.NewTokenStore(cfg.Zoom.ClientSecret)
	if err != nil {
		return err
	}
	tokens := auth.NewSharedSource(store, fetcher, 0)

	sink, err := adapter.NewHTTPSink(adapter.HTTPSinkConfig{URL: cfg.Recorder.URL, RequestTimeout: cfg.Recorder.RequestTimeout,
		BearerToken: cfg.Recorder.BearerToken, Logger: log.With().Str("component", "recorder").Logger()})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http_addr %s: %w", cfg.HTTPAddr, err)
	}
	var node *adapter.Node
	client, err := events.NewClient(events.ClientConfig{
		URL: cfg.Zoom.SubscriptionURL, Tokens: tokens,
		Handler:           func(ev *events.Event) { node.Deliver(ev) },
		HeartbeatInterval: cfg.Zoom.HeartbeatInterval, WatchdogTimeout: cfg.Zoom.WatchdogTimeout,
		Logger: log.With().Str("component", "subscription").Logger(),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("zoom: %w", err)
	}
	node, err = adapter.NewNode(adapter.NodeConfig{
		Name:         cfg.Node,
		Rules:        adapter.Rules{PauseOnHold: cfg.Rules.PauseOnHold, MaxEventAge: cfg.Rules.MaxEventAge},
		HandoffGrace: cfg.Rules.HandoffGrace,
		Version:      version, Address: ln.Addr().String(),
		Logger: log,
	}, cl, sink, client)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info().Str("http", ln.Addr().String()).Str("subscription", client.SubscriptionID()).Str("version", version).Msg("node starting")

	runErr := node.Run(ctx)

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-srvErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn().Err(err).Msg("http server")
	}
	log.Info().Msg("node stopped")
	return runErr
}
