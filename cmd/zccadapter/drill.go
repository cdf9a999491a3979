package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/deploy/drill"
)

type exitErr struct {
	msg  string
	code int
}

func (e exitErr) Error() string { return e.msg }
func (e exitErr) ExitCode() int { return e.code }

func drillCmd() *cobra.Command {
	var (
		o      drill.Options
		report string
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a failover drill on local processes and verify G1–G4 (and G6)",
		Long: "Starts one etcd member, the simulated Zoom, the reference recorder and RIS nodes A\n" +
			"and B as separate processes on 127.0.0.1, runs call traffic, SIGKILLs the leader and\n" +
			"restarts it, SIGTERMs the new leader, then checks the recorder's ledger against the\n" +
			"simulator's ground truth. Exit status 1 when any guarantee fails.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevelFlag(cmd, "warn"))
			if err != nil {
				return err
			}
			o.Logger = log
			o.Progress = cmd.ErrOrStderr()
			rep, err := drill.Run(cmd.Context(), o)
			if rep != nil {
				drill.PrintTable(cmd.OutOrStdout(), rep)
				if report != "" {
					b, _ := json.MarshalIndent(rep, "", "  ")
					if werr := os.WriteFile(report, append(b, '\n'), 0o644); werr != nil {
						return fmt.Errorf("--report: %w", werr)
					}
				}
			}
			if err != nil {
				return err
			}
			if rep.Verdict != "pass" {
				return exitErr{msg: "drill failed: see the table above", code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&report, "report", "", "write the JSON report to this file")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory for configs, data and logs (default: a new temporary one)")
	f.BoolVar(&o.KeepWorkDir, "keep", false, "keep the work directory after a passing run")
	f.DurationVar(&o.Traffic, "traffic", 0, "how long calls arrive (default 45s)")
	f.IntVar(&o.Agents, "agents", 0, "agents (default 80)")
	f.Float64Var(&o.CallsPerSecond, "calls-per-second", 0, "new calls per second (default 2)")
	f.DurationVar(&o.MinCall, "min-call", 0, "shortest call (default 5s)")
	f.DurationVar(&o.MaxCall, "max-call", 0, "longest call (default 60s)")
	f.Int64Var(&o.Seed, "seed", 0, "traffic seed (default 1)")
	f.DurationVar(&o.SessionTTL, "session-ttl", 0, "etcd session TTL of the nodes (default 5s)")
	f.DurationVar(&o.CrashAt, "crash-at", 0, "when the leader is SIGKILLed, after traffic starts (default 25% of --traffic)")
	f.DurationVar(&o.GracefulAt, "graceful-at", 0, "when the leader is SIGTERMed (default 60% of --traffic)")
	return cmd
}
