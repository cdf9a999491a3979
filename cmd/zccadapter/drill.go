package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

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
		o                   drill.Options
		report, scenario    string
		t                   drill.Traffic
		ttl                 time.Duration
		crashAt, gracefulAt time.Duration
		compose             string
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a failover drill on local processes and verify the guarantees",
		Long: "Starts one etcd member, the simulated Zoom, the reference recorder and the RIS nodes\n" +
			"as separate processes on 127.0.0.1, runs call traffic and the scenario's faults, then\n" +
			"checks the recorder's ledger against the simulator's ground truth (G1–G4, G6).\n" +
			"Without --scenario: SIGKILL the leader mid-traffic and restart it, later SIGTERM the\n" +
			"new leader. Scenario files: deploy/scenarios/. Exit status 1 when any check fails.\n" +
			"With --compose: the same against the docker-compose lab (docker-compose.yml), through\n" +
			"the Docker CLI; images from deploy/docker/build.sh. A lab it brings up it takes down.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevelFlag(cmd, "warn"))
			if err != nil {
				return err
			}
			sc := drill.DefaultScenario()
			if scenario != "" {
				if sc, err = drill.LoadScenario(scenario); err != nil {
					return err
				}
			}
			if err := applyDrillFlags(sc, scenario == "", t, ttl, crashAt, gracefulAt); err != nil {
				return err
			}
			o.Scenario, o.Logger, o.Progress = sc, log, cmd.ErrOrStderr()
			if o.NodeClient, err = nodeClientFromEnv(nil); err != nil {
				return err
			}
			if compose != "" {
				file := compose
				if file == "auto" {
					file = ""
				}
				be, err := drill.NewCompose(drill.ComposeConfig{File: file, WorkDir: o.WorkDir, Progress: o.Progress}, sc)
				if err != nil {
					return err
				}
				o.Backend, o.WorkDir = be, be.Dir()
			}
			if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				o.Live = true
			}
			rep, err := drill.Run(cmd.Context(), o)
			if rep != nil {
				drill.PrintTable(cmd.OutOrStdout(), rep)
				if report != "" {
					b, merr := json.MarshalIndent(rep, "", "  ")
					if merr != nil {
						return fmt.Errorf("--report: encode: %w", merr)
					}
					if werr := os.WriteFile(report, append(b, '\n'), 0o644); werr != nil {
						return fmt.Errorf("--report: %w", werr)
					}
				}
			}
			if err != nil && cmd.Context().Err() != nil {
				return exitErr{msg: "drill interrupted; every process it started was stopped", code: 130}
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
	f.StringVar(&scenario, "scenario", "", "scenario file (YAML); default: crash then graceful failover")
	f.StringVar(&compose, "compose", "", "drill the docker-compose lab instead of local processes; =FILE: its compose file (default: docker-compose.yml here or above)")
	f.Lookup("compose").NoOptDefVal = "auto"
	f.StringVar(&report, "report", "", "write the JSON report to this file")
	f.StringVar(&o.Timeline, "timeline", "", "write an HTML timeline (roles, faults, segments) to this file")
	f.StringVar(&o.WorkDir, "work-dir", "", "directory for configs, data and logs (default: a new temporary one)")
	f.BoolVar(&o.KeepWorkDir, "keep", false, "keep the work directory after a passing run")
	f.DurationVar(&t.Duration, "traffic", 0, "how long calls arrive (default: the scenario's, 45s)")
	f.IntVar(&t.Agents, "agents", 0, "agents (default 80)")
	f.Float64Var(&t.CallsPerSecond, "calls-per-second", 0, "new calls per second (default 2)")
	f.DurationVar(&t.MinCall, "min-call", 0, "shortest call (default 5s)")
	f.DurationVar(&t.MaxCall, "max-call", 0, "longest call (default 60s)")
	f.Int64Var(&t.Seed, "seed", 0, "traffic seed (default 1)")
	f.DurationVar(&ttl, "session-ttl", 0, "etcd session TTL of the nodes (default 5s)")
	f.DurationVar(&crashAt, "crash-at", 0, "default scenario: when the leader is SIGKILLed (default 25% of --traffic)")
	f.DurationVar(&gracefulAt, "graceful-at", 0, "default scenario: when the leader is SIGTERMed (default 60% of --traffic, and at least --session-ttl + 3s after --crash-at)")
	return cmd
}

// applyDrillFlags overrides a scenario's settings with the flags given.
func applyDrillFlags(sc *drill.Scenario, isDefault bool, t drill.Traffic, ttl, crashAt, gracefulAt time.Duration) error {
	if (crashAt != 0 || gracefulAt != 0) && !isDefault {
		return errors.New("--crash-at and --graceful-at apply to the default scenario only; edit the scenario's actions instead")
	}
	st := &sc.Traffic
	if t.Duration != 0 {
		st.Duration = t.Duration
	}
	if t.Agents != 0 {
		st.Agents = t.Agents
	}
	if t.CallsPerSecond != 0 {
		st.CallsPerSecond = t.CallsPerSecond
	}
	if t.MinCall != 0 {
		st.MinCall = t.MinCall
	}
	if t.MaxCall != 0 {
		st.MaxCall = t.MaxCall
	}
	if t.Seed != 0 {
		st.Seed = t.Seed
	}
	if ttl != 0 {
		sc.SessionTTL = ttl
	}
	if isDefault {
		sc.Actions[0].At = st.Duration / 4
		sc.Actions[1].At = st.Duration * 6 / 10
		if crashAt != 0 {
			sc.Actions[0].At = crashAt
		}
		gap := sc.SessionTTL + 3*time.Second // the crash failover finishes first
		if gracefulAt != 0 {
			sc.Actions[1].At = gracefulAt
		} else {
			sc.Actions[1].At = max(sc.Actions[1].At, sc.Actions[0].At+gap)
			if sc.Actions[1].At >= st.Duration {
				return fmt.Errorf("--traffic %s is too short for a crash at %s and a graceful stop --session-ttl + 3s later, inside the traffic; "+
					"give more --traffic, or set --crash-at and --graceful-at", st.Duration, sc.Actions[0].At)
			}
		}
		if sc.Actions[1].At-sc.Actions[0].At < gap {
			return fmt.Errorf("--graceful-at (%s) must come at least --session-ttl + 3s after --crash-at (%s), so the first failover finishes",
				sc.Actions[1].At, sc.Actions[0].At)
		}
	}
	return sc.Validate()
}
