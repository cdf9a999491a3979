package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
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
	for _, w := range cfg.Warnings() {
		log.Warn().Str("setting", "allow_insecure_credentials").Msg("credential in clear text: " + w)
	}
	tlsCfg, err := opsTLS(cfg)
	if err != nil {
		return err
	}
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
	cl, err := cluster.Connect(ctx, assemble.ClusterConfig(cfg, endpoints), log)
	if err != nil {
		return err
	}
	defer cl.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http_addr %s: %w", cfg.HTTPAddr, err)
	}
	cfg.Version = version
	address := advertiseAddr(cfg.HTTPAdvertiseAddr, ln.Addr())
	if tlsCfg != nil && !strings.Contains(address, "://") {
		address = "https://" + address // so that status and doctor use https
	}
	parts, err := assemble.Build(cfg, cl, address, nil, log)
	if err != nil {
		ln.Close()
		return err
	}
	node, client := parts.Node, parts.Client
	srv := &http.Server{Handler: requireBearer(cfg.HTTPBearerToken, parts.Handler()), ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsCfg}
	srvErr := make(chan error, 1)
	if tlsCfg != nil {
		go func() { srvErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { srvErr <- srv.Serve(ln) }()
	}
	log.Info().Str("http", ln.Addr().String()).Bool("https", tlsCfg != nil).Bool("bearer", cfg.HTTPBearerToken != "").
		Str("subscription", client.SubscriptionID()).Str("version", version).Msg("node starting")

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

// advertiseAddr is the HTTP address published in the membership record:
// configured, else the listener's, with an unspecified host (0.0.0.0, ::)
// replaced by the hostname so that other hosts can reach it.
func advertiseAddr(configured string, ln net.Addr) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(ln.String())
	if err != nil {
		return ln.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil && h != "" {
			return net.JoinHostPort(h, port)
		}
	}
	return ln.String()
}
