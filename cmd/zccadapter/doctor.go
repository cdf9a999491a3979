package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
)

func doctorCmd() *cobra.Command {
	var (
		path         string
		asJSON       bool
		opts         doctor.Options
		probeRunning bool
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node's setup end to end and say how to fix each failure",
		Long: "Checks, for the node of --config: the Server-to-Server credentials get a token; the\n" +
			"token's scopes cover the minimum list; Zoom's clock; etcd is reachable, has a quorum,\n" +
			"writes fast enough, and agrees on the time; no other live node uses this node's\n" +
			"subscription; the subscription connects and answers a heartbeat (not probed while this\n" +
			"node runs with its socket up, unless --probe-running); the recorder answers.\n" +
			"Each check prints pass, fail (with a one-line fix) or skip. Exit status 1 on any failure.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			opts.ProbeRunning = probeRunning
			rep := doctor.Run(cmd.Context(), cfg, opts)
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else if err := writeReport(out, rep); err != nil {
				return err
			}
			if !rep.OK {
				n := 0
				for _, r := range rep.Results {
					if r.Outcome == doctor.Fail {
						n++
					}
				}
				return &exitError{code: 1, msg: fmt.Sprintf("doctor: %d check(s) failed", n)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file of this node")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Second, "bound of each network step")
	cmd.Flags().DurationVar(&opts.MaxClockSkew, "max-clock-skew", time.Second, "largest clock offset that passes")
	cmd.Flags().DurationVar(&opts.MaxWriteLatency, "max-write-latency", 250*time.Millisecond, "slowest etcd write that passes")
	cmd.Flags().BoolVar(&probeRunning, "probe-running", false,
		"probe the subscription even while this node runs (Zoom may close the node's socket for the probe's)")
	return cmd
}

// writeReport prints one line per check, and the fix under each failure.
func writeReport(w io.Writer, rep *doctor.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "doctor: node %s, cluster %s\n", rep.Node, rep.Cluster)
	width := 0
	for _, r := range rep.Results {
		width = max(width, len(r.Check))
	}
	failed := 0
	for _, r := range rep.Results {
		mark := map[doctor.Outcome]string{doctor.Pass: "PASS", doctor.Fail: "FAIL", doctor.Skip: "SKIP"}[r.Outcome]
		fmt.Fprintf(&b, "%s  %-*s  %s\n", mark, width, r.Check, r.Detail)
		if r.Outcome == doctor.Fail {
			failed++
			fmt.Fprintf(&b, "      %-*s  fix: %s\n", width, "", r.Fix)
		}
	}
	if failed == 0 {
		b.WriteString("all checks passed\n")
	} else {
		fmt.Fprintf(&b, "%d check(s) failed\n", failed)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
