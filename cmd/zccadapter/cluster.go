package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// clusterCmd is `zccadapter cluster`: operations on the pair's state in
// etcd.
func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Operate on the pair's state in etcd (bump-epoch after restoring etcd from a backup)",
	}
	cmd.AddCommand(clusterBumpEpochCmd())
	return cmd
}

func clusterBumpEpochCmd() *cobra.Command {
	var (
		path    string
		above   int64
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bump-epoch --config FILE --above N",
		Short: "Make every leader elected from now on carry an epoch above N",
		Long: "A leader's epoch is the cluster's epoch base plus the etcd revision of its election\n" +
			"key. An etcd restored from a backup (or rebuilt) issues revisions below the epochs the\n" +
			"recorder has already seen, and the recorder refuses every command as stale_epoch.\n" +
			"bump-epoch raises the base so that the next leader's epoch exceeds N, the recorder's\n" +
			"fence: the \"epoch\" of its 409 stale_epoch reply, which the nodes log as\n" +
			"recorder_epoch. The base never falls, so epochs keep rising; a bump below the base in\n" +
			"force changes nothing. A leader elected before the bump keeps its epoch until the\n" +
			"recorder refuses it; the node then campaigns again (within a minute) and the new\n" +
			"term's epoch is above N. Reads the config like status; the Zoom secret is not needed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			_, cl, err := connectForTool(ctx, path, timeout)
			if err != nil {
				return err
			}
			defer cl.Close()
			bctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			base, raised, err := cl.BumpEpoch(bctx, above)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if raised {
				fmt.Fprintf(out, "epoch base raised to %d: every leader elected from now on has an epoch above %d\n", base, above)
			} else {
				fmt.Fprintf(out, "epoch base %d already puts every leader elected from now on above %d; nothing written\n", base, above)
			}
			node, epoch, err := cl.Leader(bctx)
			switch {
			case err != nil:
				return fmt.Errorf("the base is raised, but the current leader could not be read: %w", err)
			case node == "":
				fmt.Fprintln(out, "no leader now: the next one will carry the new base")
			case epoch <= above:
				fmt.Fprintf(out, "leader %s still has epoch %d: the recorder refuses it, and its next term is above %d\n", node, epoch, above)
			default:
				fmt.Fprintf(out, "leader %s has epoch %d\n", node, epoch)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", "", "YAML configuration file of a node of the pair")
	f.Int64Var(&above, "above", 0, "the recorder's epoch fence: the next leader's epoch will exceed it (required)")
	f.DurationVar(&timeout, "timeout", 5*time.Second, "bound of the etcd calls")
	_ = cmd.MarkFlagRequired("above") // fails only for an undefined flag
	return cmd
}
