package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…" (the
// image build does); otherwise it comes from the build information Go
// records (see buildVersion).
var version = "dev"

func init() { version = buildVersion(version, debug.ReadBuildInfo) }

// buildVersion returns set when it was set at link time; else the module
// version Go records: the tag of a `go install …@version` build, or, for
// `go build` in a git checkout, a pseudo-version of the commit such as
// v0.0.0-20261129213148-763be3a49b39 (+dirty with uncommitted changes);
// else, from a toolchain that records only the VCS settings, the revision
// (first 12 hex digits, "+dirty", the commit time); else "dev" (`go run`,
// `go test`, and builds with -buildvcs=false record none).
func buildVersion(set string, read func() (*debug.BuildInfo, bool)) string {
	if set != "dev" {
		return set
	}
	bi, ok := read()
	if !ok {
		return set
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return set
	}
	v := "dev-" + rev[:min(12, len(rev))]
	if dirty {
		v += "+dirty"
	}
	if at != "" {
		v += " (" + at + ")"
	}
	return v
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zccadapter:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

type exitCoder interface{ ExitCode() int }

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "zccadapter",
		Short:         "Zoom Contact Center recording adapter, run as a 1+1 redundant pair",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("log-level", "", "log level: debug, info, warn, error (default: the config's, else info)")
	root.AddCommand(runCmd(), drillCmd(), etcdCmd(), simCmd(), versionCmd(), authCmd())
	root.AddCommand(statusCmd(), doctorCmd())
	root.AddCommand(clusterCmd(), deadletterCmd())
	root.AddCommand(healthCmd())
	root.AddCommand(serviceCmd())
	return root.ExecuteContext(ctx)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), version) },
	}
}

// newLogger returns a zerolog logger on stderr: JSON, or console on a
// terminal.
func newLogger(level string) (zerolog.Logger, error) {
	level = cmp.Or(level, "info")
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level %q: %w", level, err)
	}
	var w = zerolog.New(os.Stderr)
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		w = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"})
	}
	return w.Level(lvl).With().Timestamp().Logger(), nil
}

func logLevelFlag(cmd *cobra.Command, fallback string) string {
	if l, _ := cmd.Flags().GetString("log-level"); l != "" {
		return l
	}
	return fallback
}
