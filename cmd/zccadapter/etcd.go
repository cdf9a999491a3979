package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/cluster"
)

func etcdCmd() *cobra.Command {
	var cfg cluster.EmbedConfig
	var retention string
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run an etcd member (embedded etcd server) until interrupted",
		Long: "Runs one etcd member from the etcd server module this binary is built with.\n" +
			"Used by the drill and the compose lab; production may run any etcd v3.6 cluster.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevelFlag(cmd, "info"))
			if err != nil {
				return err
			}
			if cfg.AutoCompactionRetention, err = parseRetention(retention); err != nil {
				return err
			}
			m, err := cluster.StartEmbedded(cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			log.Info().Strs("endpoints", m.Endpoints()).Str("name", cfg.Name).Msg("etcd member ready")
			select {
			case <-cmd.Context().Done():
				log.Info().Msg("etcd member stopping")
				return nil
			case err := <-m.Err():
				return fmt.Errorf("etcd member: %w", err)
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "default", "member name")
	f.StringVar(&cfg.Dir, "data-dir", "", "data directory (required)")
	f.StringVar(&cfg.ClientURL, "listen-client-url", "http://127.0.0.1:2379", "client URL to listen on")
	f.StringVar(&cfg.PeerURL, "listen-peer-url", "http://127.0.0.1:2380", "peer URL to listen on")
	f.StringVar(&cfg.AdvertiseClientURL, "advertise-client-url", "", "client URL to advertise (default: the listen URL)")
	f.StringVar(&cfg.AdvertisePeerURL, "advertise-peer-url", "", "peer URL to advertise (default: the listen URL)")
	f.StringVar(&cfg.InitialCluster, "initial-cluster", "", "name=peerURL,... of every member (default: this member alone)")
	f.StringVar(&cfg.ClusterState, "initial-cluster-state", "new", "new or existing")
	f.StringVar(&cfg.LogLevel, "etcd-log-level", "error", "etcd's own log level")
	f.StringVar(&retention, "auto-compaction-retention", "5m",
		"MVCC history to keep, compacted periodically, as etcd's flag of that name takes it: a duration (5m) or a number of hours (1); 0 keeps everything and the database grows until its quota")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// parseRetention reads --auto-compaction-retention as etcd reads it in
// periodic mode: a duration, or a bare number of hours; "0" turns
// compaction off (returned as a negative duration, EmbedConfig's "off").
func parseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if h, err := strconv.ParseFloat(s, 64); err == nil {
		if h < 0 {
			return 0, fmt.Errorf("--auto-compaction-retention %q: negative", s)
		}
		if h == 0 {
			return -1, nil
		}
		return time.Duration(h * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("--auto-compaction-retention %q: not a duration (5m) or a number of hours (1)", s)
	case d < 0:
		return 0, fmt.Errorf("--auto-compaction-retention %q: negative", s)
	case d == 0:
		return -1, nil
	}
	return d, nil
}
