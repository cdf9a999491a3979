package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
)

// exitError carries an exit code for main.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) ExitCode() int { return e.code }

func statusCmd() *cobra.Command {
	var (
		path    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the pair at a glance: leader, epoch, each node, the recorder",
		Long: "Reads the membership and the leader from etcd, each live node's /status, and the\n" +
			"recorder's open recordings, and prints a table (--json for machines). Exit status:\n" +
			"0 when all is well, 2 when it lists a problem (two nodes on one subscription, no\n" +
			"leader, a node or the recorder unreachable), 1 when etcd cannot be read.\n" +
			"The Zoom client secret is not needed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, cl, err := connectForTool(ctx, path, timeout)
			if err != nil {
				return err
			}
			defer cl.Close()
			v, err := doctor.Survey(ctx, cl, cfg, doctor.SurveyOptions{Timeout: timeout})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(v); err != nil {
					return err
				}
			} else if err := v.WriteTable(out); err != nil {
				return err
			}
			if len(v.Problems) > 0 {
				return &exitError{code: 2, msg: fmt.Sprintf("%d problem(s)", len(v.Problems))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file of a node of the pair")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "bound of each request")
	return cmd
}

// connectForTool loads the config at path as the operator tools read it (no
// Zoom secret needed: config.LoadForStatus) and connects to its etcd cluster
// with timeout per request. The caller closes the cluster. Errors name the
// file or the etcd endpoints at fault.
func connectForTool(ctx context.Context, path string, timeout time.Duration) (*config.Config, *cluster.Cluster, error) {
	cfg, err := config.LoadForStatus(path)
	if err != nil {
		return nil, nil, err
	}
	cl, err := cluster.Connect(ctx, doctor.ClusterConfig(cfg, timeout), zerolog.Nop())
	if err != nil {
		return nil, nil, err
	}
	return cfg, cl, nil
}
