package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/redact"
)

// authCmd is `zccadapter auth`: the operator's side of the OAuth grants.
func authCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Zoom OAuth: store a refresh token from an authorization code, show the cluster's token",
		Long: "exchange replaces the seed's Postman step: it trades an authorization code for a\n" +
			"refresh token and stores it, sealed, in the cluster's etcd (zoom.grant_type: refresh_token).\n" +
			"token shows the token the nodes share: granted scopes, expiry, missing minimum scopes.\n" +
			"Neither prints a secret.",
	}
	cmd.AddCommand(authExchangeCmd(), authTokenCmd())
	return cmd
}

// authExit carries an exit status for main (exitCoder).
type authExit struct {
	code int
	msg  string
}

func (e *authExit) Error() string { return e.msg }
func (e *authExit) ExitCode() int { return e.code }

func authExchangeCmd() *cobra.Command {
	var (
		path, code, redirectURI string
		timeout                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "exchange --config FILE --code CODE --redirect-uri URI",
		Short: "Trade an authorization code for a refresh token and store it in the cluster",
		Long: "Trades a one-time authorization code (single-use, valid 5 minutes) for an access\n" +
			"token and a refresh token (grant_type=authorization_code) and stores both in the\n" +
			"cluster's encrypted token store, where the nodes' refresh_token grant finds them.\n" +
			"etcd is reached first, so an unreachable cluster does not burn the code. --code -\n" +
			"reads the code from stdin. Prints only a redacted confirmation.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			if cfg.Zoom.GrantType != auth.GrantRefreshToken {
				return fmt.Errorf("zoom.grant_type is %q: auth exchange stores a refresh token for the refresh_token grant; "+
					"set zoom.grant_type: refresh_token (or ZCC_ZOOM_GRANT_TYPE=refresh_token) first", cfg.Zoom.GrantType)
			}
			if code == "-" {
				if code, err = readLine(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("--code -: %w", err)
				}
			}
			if code == "" || redirectURI == "" {
				return errors.New("--code and --redirect-uri are required")
			}
			log, err := newLogger(logLevelFlag(cmd, "warn"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return authExchange(ctx, cmd.OutOrStdout(), cfg, code, redirectURI, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", "", "YAML configuration file of a node of the cluster")
	f.StringVar(&code, "code", "", "the authorization code from the app's redirect (\"-\": read it from stdin)")
	f.StringVar(&redirectURI, "redirect-uri", "", "the redirect URL the code was issued for, exactly")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "bound of the whole command")
	return cmd
}

// authExchange connects to etcd, exchanges the code and stores the token,
// then prints a redacted confirmation to out.
func authExchange(ctx context.Context, out io.Writer, cfg *config.Config, code, redirectURI string, log zerolog.Logger) error {
	cl, closeCluster, err := authCluster(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCluster()
	store, err := cl.NewTokenStore(cfg.Zoom.ClientSecret)
	if err != nil {
		return err
	}
	tok, err := auth.Exchange(ctx, auth.ClientConfig{TokenURL: cfg.Zoom.TokenURL, ClientID: cfg.Zoom.ClientID,
		ClientSecret: cfg.Zoom.ClientSecret}, code, redirectURI)
	if err != nil {
		return err
	}
	// The code is spent: storing must not give up with the caller's ctx.
	var stored error
	for attempt := 0; attempt < 3; attempt++ {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, stored = store.Update(sctx, func(*oauth2.Token) (*oauth2.Token, error) { return tok, nil })
		cancel()
		if stored == nil {
			break
		}
	}
	if stored != nil {
		return fmt.Errorf("the code was exchanged but the token could not be stored in etcd (%w); "+
			"fix etcd, get a new code and run auth exchange again", stored)
	}
	scopes := auth.GrantedScopes(tok)
	fmt.Fprintf(out, "refresh token stored (%s), access token expires %s, scopes: %s\n",
		redact.Tail(tok.RefreshToken), tok.Expiry.UTC().Format(time.RFC3339), strings.Join(scopes, " "))
	if missing := auth.MissingScopes(scopes); len(missing) > 0 {
		fmt.Fprintf(out, "warning: %d minimum scope(s) missing: %s — add them to the app and re-authorise\n",
			len(missing), scopeNames(missing))
	}
	return nil
}

func authTokenCmd() *cobra.Command {
	var (
		path    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --config FILE [--json]",
		Short: "Show the cluster's token: granted scopes, expiry, missing minimum scopes",
		Long: "Reads the token the nodes share from etcd, or fetches (refreshes) one the way a node\n" +
			"would when none is usable, and prints its granted scopes, its expiry and which of the\n" +
			"minimum scopes (PROTOCOL.md §4; granular or classic form) are missing. The token\n" +
			"itself is never printed. Exit status: 0, 2 when a minimum scope is missing, 1 on error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := newLogger(logLevelFlag(cmd, "warn"))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return authToken(ctx, cmd.OutOrStdout(), cfg, asJSON, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", "", "YAML configuration file of a node of the cluster")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "bound of the whole command")
	return cmd
}

// tokenReport is what `auth token` prints; it holds no secret.
type tokenReport struct {
	GrantType string                  `json:"grant_type"`
	Source    string                  `json:"source"` // "cluster store" or "token endpoint"
	Token     string                  `json:"token"`  // redacted: redact.Tail
	ExpiresAt time.Time               `json:"expires_at"`
	ExpiresIn int64                   `json:"expires_in_seconds"`
	Scopes    []string                `json:"scopes"`
	Missing   []auth.ScopeRequirement `json:"missing_scopes"`
}

func authToken(ctx context.Context, out io.Writer, cfg *config.Config, asJSON bool, log zerolog.Logger) error {
	cl, closeCluster, err := authCluster(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCluster()
	// The error is returned and printed once; the source's alert log would
	// repeat it.
	src, err := assemble.TokenSource(cfg.Zoom, cl, nil, zerolog.Nop())
	if err != nil {
		return err
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return err
	}
	rep := tokenReport{GrantType: cfg.Zoom.GrantType, Source: "cluster store", Token: redact.Tail(tok.AccessToken),
		Scopes: auth.GrantedScopes(tok), Missing: auth.MissingScopes(auth.GrantedScopes(tok))}
	if src.Fetches() > 0 {
		rep.Source = "token endpoint"
	}
	if rep.Scopes == nil {
		rep.Scopes = []string{}
	}
	if rep.Missing == nil {
		rep.Missing = []auth.ScopeRequirement{}
	}
	if !tok.Expiry.IsZero() {
		rep.ExpiresAt = tok.Expiry.UTC().Truncate(time.Second)
		rep.ExpiresIn = int64(time.Until(tok.Expiry).Seconds())
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printTokenReport(out, rep)
	}
	if len(rep.Missing) > 0 {
		return &authExit{code: 2, msg: fmt.Sprintf("%d minimum scope(s) missing: %s", len(rep.Missing), scopeNames(rep.Missing))}
	}
	return nil
}

func printTokenReport(out io.Writer, rep tokenReport) {
	fmt.Fprintf(out, "grant type:  %s\n", rep.GrantType)
	exp := "no expiry given"
	if !rep.ExpiresAt.IsZero() {
		exp = fmt.Sprintf("expires %s (in %s)", rep.ExpiresAt.Format(time.RFC3339), (time.Duration(rep.ExpiresIn) * time.Second).String())
	}
	fmt.Fprintf(out, "token:       %s from the %s, %s\n", rep.Token, rep.Source, exp)
	fmt.Fprintf(out, "scopes:      %s\n", strings.Join(rep.Scopes, " "))
	if len(rep.Missing) == 0 {
		fmt.Fprintln(out, "minimum scopes: all granted")
		return
	}
	fmt.Fprintf(out, "minimum scopes missing (%d) — add them to the app in the Zoom App Marketplace:\n", len(rep.Missing))
	for _, m := range rep.Missing {
		fmt.Fprintf(out, "  %s (or classic %s): %s\n", m.Scope, strings.Join(m.Classic, ", "), m.Purpose)
	}
}

func scopeNames(rs []auth.ScopeRequirement) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Scope
	}
	return strings.Join(names, ", ")
}

// readLine reads one trimmed line.
func readLine(r io.Reader) (string, error) {
	s, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// authCluster connects to the cluster's etcd the way `run` does: the
// configured endpoints; with none, the embedded single member — the running
// node's, when one answers at etcd.embedded_client_url, else one started
// from data_dir for this command only (as run would start it). The returned
// func closes the connection and any member started here. ctx bounds the
// connection.
func authCluster(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*cluster.Cluster, func(), error) {
	endpoints := cfg.Etcd.Endpoints
	stop := func() {}
	if len(endpoints) == 0 {
		u, err := url.Parse(cfg.Etcd.EmbeddedClientURL)
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("etcd.embedded_client_url %q is not a URL", cfg.Etcd.EmbeddedClientURL)
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		conn, err := d.DialContext(dctx, "tcp", u.Host)
		cancel()
		if err == nil {
			conn.Close()
			endpoints = []string{u.String()}
			log.Info().Strs("endpoints", endpoints).Msg("no etcd endpoints configured: using the running node's embedded etcd")
		} else {
			m, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: cfg.EtcdDataDir(), ClientURL: cfg.Etcd.EmbeddedClientURL,
				PeerURL: "http://127.0.0.1:0"})
			if err != nil {
				return nil, nil, err
			}
			stop = m.Close
			endpoints = m.Endpoints()
			log.Info().Strs("endpoints", endpoints).Str("data_dir", cfg.EtcdDataDir()).
				Msg("no etcd endpoints configured and no node running: using the embedded etcd in data_dir")
		}
	}
	cl, err := cluster.Connect(ctx, assemble.ClusterConfig(cfg, endpoints), log)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); stop() }, nil
}
