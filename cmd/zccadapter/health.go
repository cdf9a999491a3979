package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthCmd is the container healthcheck of the compose lab: images built
// FROM scratch have no shell and no curl, so the binary probes itself.
func healthCmd() *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health --url URL",
		Short: "Exit 0 when URL answers HTTP 200 (a healthcheck for containers without a shell)",
		Long: "GETs URL once and exits 0 on HTTP 200, 1 otherwise (another status, no answer within\n" +
			"--timeout). Used by docker-compose.yml's healthchecks, e.g.\n" +
			"  zccadapter health --url http://127.0.0.1:8081/readyz\n" +
			"It reads the node's variables: with ZCC_HTTP_BEARER_TOKEN(_FILE) it sends the token, with\n" +
			"ZCC_HTTP_TLS_CERT_FILE it uses https (verified with ZCC_HTTP_TLS_CA_FILE).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return probe(cmd.Context(), url, timeout)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to GET (required)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the answer")
	_ = cmd.MarkFlagRequired("url")
	return cmd
}

// probe GETs url and returns nil on HTTP 200. It gives up after timeout or
// when ctx ends. The error carries the status and the first line of the
// body, which `docker inspect` shows as the health log.
func probe(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	hc, err := nodeClientFromEnv(nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 256))
	if rerr != nil {
		return fmt.Errorf("health: %s: HTTP %d: reading the reply: %w", url, resp.StatusCode, rerr)
	}
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return fmt.Errorf("health: %s: HTTP %d: %s", url, resp.StatusCode, line)
	}
	return nil
}
