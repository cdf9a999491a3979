package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/doctor"
	"github.com/zccadapter/zccadapter/redact"
)

// deadletterCmd is `zccadapter deadletter`: the dead-letter set in etcd.
func deadletterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletter",
		Short: "List, retry or drop engagements parked behind a command the recorder kept refusing",
		Long: "When the recorder keeps refusing one engagement's command (after recorder.max_attempts\n" +
			"attempts, twice) while it takes other commands, the leader parks the engagement in a dead\n" +
			"letter in etcd with the refused command's reason and every later event of the engagement,\n" +
			"in order; the other engagements go on. The leader alerts (zccadapter_deadletters, /status\n" +
			"deadletters, an error log with the recorder's reply). Fix the cause at the recorder, then\n" +
			"retry; drop only what must be abandoned. Reads the config like status; the Zoom secret\n" +
			"is not needed.",
	}
	cmd.AddCommand(deadletterListCmd(), deadletterRetryCmd(), deadletterDropCmd())
	return cmd
}

// deadletterFlags are the flags every deadletter subcommand takes.
type deadletterFlags struct {
	path       string
	engagement string
	timeout    time.Duration
}

func (f *deadletterFlags) add(cmd *cobra.Command, engagementHelp string) {
	cmd.Flags().StringVar(&f.path, "config", "", "YAML configuration file of a node of the pair")
	cmd.Flags().StringVar(&f.engagement, "engagement", "", engagementHelp)
	cmd.Flags().DurationVar(&f.timeout, "timeout", 5*time.Second, "bound of the etcd calls")
}

// connect reads the config and connects to the pair's etcd; ctx bounds the
// calls that follow (f.timeout).
func (f *deadletterFlags) connect(cmd *cobra.Command) (*cluster.Cluster, context.Context, func(), error) {
	cfg, err := config.LoadForStatus(f.path)
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err := cluster.Connect(cmd.Context(), doctor.ClusterConfig(cfg, f.timeout), zerolog.Nop())
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	return cl, ctx, func() { cancel(); cl.Close() }, nil
}

func deadletterListCmd() *cobra.Command {
	var f deadletterFlags
	cmd := &cobra.Command{
		Use:   "list [--engagement ID]",
		Short: "Print each dead-lettered engagement: reason, attempts, events held, age",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, ctx, done, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			list, err := cl.DeadLetters(ctx)
			if err != nil {
				return err
			}
			return writeDeadLetters(cmd.OutOrStdout(), list, f.engagement, time.Now())
		},
	}
	f.add(cmd, "only this engagement")
	return cmd
}

// writeDeadLetters prints list (only engagement's entry when set) as a table.
func writeDeadLetters(out io.Writer, list []cluster.DeadLetterEntry, engagement string, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ENGAGEMENT\tATTEMPTS\tEVENTS\tAGE\tREASON")
	n := 0
	for _, e := range list {
		if engagement != "" && e.Engagement != engagement {
			continue
		}
		n++
		if e.Err != nil {
			fmt.Fprintf(w, "%s\t-\t-\t-\tunreadable entry (drop it): %s\n", e.Engagement, redact.Truncate(e.Err.Error(), 200))
			continue
		}
		events := fmt.Sprint(len(e.Events))
		if e.Overflow > 0 {
			events = fmt.Sprintf("%d+%d queued", len(e.Events), e.Overflow)
		}
		age := now.Sub(e.FirstFailed).Round(time.Second)
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", e.Engagement, e.Attempts, events, age, redact.Truncate(redact.Text(e.Reason), 300))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if engagement != "" && n == 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("no dead letter for engagement %q", engagement)}
	}
	return nil
}

func deadletterRetryCmd() *cobra.Command {
	var f deadletterFlags
	cmd := &cobra.Command{
		Use:   "retry --engagement ID",
		Short: "Put an engagement's parked events back in the handoff queue; the leader applies them in order",
		Long: "Moves the engagement's events back to the handoff queue and deletes its dead letter, in\n" +
			"one etcd transaction; the leader notices, unblocks the engagement and applies the events\n" +
			"in order with their original command ids (the recorder absorbs any it already took). If\n" +
			"the recorder still refuses the command, the engagement is dead-lettered again.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.engagement == "" {
				return errors.New("--engagement is required")
			}
			cl, ctx, done, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			n, err := cl.RetryDeadLetter(ctx, f.engagement)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "engagement %s: %d events back in the handoff queue\n", f.engagement, n)
			return nil
		},
	}
	f.add(cmd, "the engagement to retry (required)")
	return cmd
}

func deadletterDropCmd() *cobra.Command {
	var (
		f   deadletterFlags
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "drop --engagement ID --yes",
		Short: "Abandon an engagement's parked events (a stop among them may never reach the recorder)",
		Long: "Deletes the engagement's dead letter: the leader logs its events as applied without sending\n" +
			"their commands, and forgets the later events it held. They are abandoned: a stop among\n" +
			"them may then never be sent, so check the recorder for a recording of the engagement\n" +
			"left open and close it there. Needs --yes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.engagement == "" {
				return errors.New("--engagement is required")
			}
			if !yes {
				return errors.New("drop abandons the engagement's events; confirm with --yes")
			}
			cl, ctx, done, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer done()
			e, err := cl.DropDeadLetter(ctx, f.engagement)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "engagement %s: dead letter dropped, %d events abandoned; check the recorder for a recording left open\n",
				f.engagement, len(e.Events)+e.Overflow)
			return nil
		},
	}
	f.add(cmd, "the engagement to drop (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that the events are abandoned")
	return cmd
}
