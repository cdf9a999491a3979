package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/sim/recorder"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func simCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a simulator: Zoom (tokens, event subscriptions, traffic) or the reference recorder",
	}
	cmd.AddCommand(simZoomCmd(), simRecorderCmd())
	return cmd
}

func simZoomCmd() *cobra.Command {
	var (
		listen, subs, secretFile string
		cfg                      = zoom.Config{Settings: zoom.DefaultSettings()}
	)
	cmd := &cobra.Command{
		Use:   "zoom",
		Short: "Run the simulated Zoom: /oauth/token, /ws subscriptions, /v2 REST subset, /sim/* control",
		Long: "Runs a stand-in for Zoom built from PROTOCOL.md. The client secret comes from\n" +
			"ZCC_SIM_CLIENT_SECRET or --client-secret-file, never from the command line; the\n" +
			"webhook secret token (message signatures) from ZCC_SIM_SECRET_TOKEN.\n\n" +
			"Every behaviour PROTOCOL.md marks M, L or ? is a setting: each flag below from --seed\n" +
			"on is also a field of GET/POST /sim/settings (its JSON name has '_' for '-'), so a\n" +
			"drill can change it while the simulator runs. Per-subscription faults can also be\n" +
			"changed with POST /sim/subscriptions/{id}/faults.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevelFlag(cmd, "info"))
			if err != nil {
				return err
			}
			cfg.ClientSecret = os.Getenv("ZCC_SIM_CLIENT_SECRET")
			if secretFile != "" {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return fmt.Errorf("--client-secret-file: %w", err)
				}
				cfg.ClientSecret = strings.TrimSpace(string(b))
			}
			if cfg.ClientSecret == "" {
				return errors.New("client secret not set: set ZCC_SIM_CLIENT_SECRET or --client-secret-file")
			}
			cfg.SecretToken = os.Getenv("ZCC_SIM_SECRET_TOKEN")
			cfg.Subscriptions = splitList(subs)
			cfg.Logger = log // the simulator adds "component":"zoomsim"
			s, err := zoom.New(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			return serve(cmd.Context(), listen, s.Handler(), log, "simulated zoom")
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9000", "address to listen on")
	f.StringVar(&cfg.AccountID, "account-id", "acct-sim", "account id of the OAuth app")
	f.StringVar(&cfg.ClientID, "client-id", "sim-client", "client id of the OAuth app")
	f.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret")
	f.StringVar(&subs, "subscriptions", "sub-a,sub-b", "comma-separated subscription ids")
	settings := flag.NewFlagSet("settings", flag.ContinueOnError)
	cfg.Settings.RegisterFlags(settings)
	f.AddGoFlagSet(settings)
	return cmd
}

func simRecorderCmd() *cobra.Command {
	var listen, state string
	cmd := &cobra.Command{
		Use:   "recorder",
		Short: "Run the reference recorder (Recording Control API v1 with a ledger)",
		Long: "Serves the Recording Control API v1 (rcapi/SPEC.md) with a ledger of every message.\n" +
			"With --state FILE its epoch fence, command ids, segments and ledger survive a restart\n" +
			"(an append-only journal, fsynced before each reply); without it, memory only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevelFlag(cmd, "info"))
			if err != nil {
				return err
			}
			r, err := recorder.NewWithOptions(log, recorder.Options{StateFile: state})
			if err != nil {
				return err
			}
			serr := serve(cmd.Context(), listen, r.Handler(), log, "reference recorder")
			return errors.Join(serr, r.Close())
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address to listen on")
	cmd.Flags().StringVar(&state, "state", "", "state file that keeps the fence, command ids and ledger across restarts (default: memory only)")
	return cmd
}

// serve runs h on addr until ctx ends, then shuts down within 2s.
func serve(ctx context.Context, addr string, h http.Handler, log zerolog.Logger, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg(what + " listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
