package main

// `zccadapter service`: one node as a Windows service. This file is the
// portable part (the commands, the install plan, the environment file, the
// supervisor that answers the service control manager, the event log
// writer), so that it builds and is tested on every OS; service_windows.go
// binds it to golang.org/x/sys/windows/svc, svc/mgr and svc/eventlog, and
// service_other.go refuses the commands elsewhere.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/zccadapter/zccadapter/config"
)

const (
	defaultServiceName        = "zccadapter"
	defaultServiceDisplayName = "Zoom Contact Center recording adapter"
	serviceDescription        = "One RIS node of the zccadapter redundant pair: Zoom Contact Center events to recording-control commands."

	// serviceStopWaitHint is the wait hint reported with StopPending: the
	// node stops sending, logs what it sent and resigns within about 2.5 s
	// (adapter.Node.Run), then runNode closes its HTTP server (≤1 s).
	serviceStopWaitHint = 4 * time.Second
	// serviceCheckpointEvery is how often a stopping service advances its
	// checkpoint, well inside serviceStopWaitHint, so that the SCM sees
	// progress.
	serviceCheckpointEvery = time.Second
	// serviceStopBudget bounds a stop: after it the service reports Stopped
	// without waiting for the node (the process then exits, and the
	// other node takes over by session expiry). It stays under the SCM's
	// preshutdown timeout (10 s by default since Windows 10 1703 and
	// Server 2019), so a reboot still stops the node gracefully.
	serviceStopBudget = 8 * time.Second
)

var (
	// errServiceWindowsOnly is returned by every `service` command on an
	// OS other than Windows.
	errServiceWindowsOnly = errors.New("service: Windows only; use deploy/systemd/zccadapter.service on Linux")
	// errStopTimeout is returned by supervisor.serve when the node has not
	// returned serviceStopBudget after it was asked to stop.
	errStopTimeout = errors.New("node did not stop within its budget")
	// errNodeEndedUnasked is returned by supervisor.serve when the node
	// returned nil although nobody asked it to stop.
	errNodeEndedUnasked = errors.New("node stopped although no stop was requested")
)

func serviceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install, remove or run a node as a Windows service",
		Long: "Windows only (RIS servers): `service install` registers this binary as an\n" +
			"automatic-start service that runs `service run --config FILE` and restarts\n" +
			"on failure; `service uninstall` stops and removes it. On Linux use\n" +
			"deploy/systemd/zccadapter.service.",
		Args: cobra.NoArgs,
		// Before any flag check of a subcommand: elsewhere than on Windows
		// the answer is always the same.
		PersistentPreRunE: func(*cobra.Command, []string) error { return serviceSupported() },
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(serviceInstallCmd(), serviceUninstallCmd(), serviceRunCmd())
	return cmd
}

func serviceInstallCmd() *cobra.Command {
	var f serviceInstallFlags
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Register this binary as a Windows service running one node",
		Long: "Registers the service (as Administrator): its own virtual account NT SERVICE\\<name>,\n" +
			"automatic start, restart on failure (2 s, 10 s, then every 60 s; the count resets\n" +
			"after 10 min without failure), start and stop events in the Application event log\n" +
			"under the service's name. The service runs `service run --config <absolute path>`\n" +
			"from the config file's directory (relative paths in it resolve there).\n\n" +
			"The config file and every secret file it names (*_file secrets, TLS private keys)\n" +
			"are restricted to the service's account (read) and Administrators (full control);\n" +
			"the embedded etcd's data directory (no etcd.endpoints) is created and given to the\n" +
			"service's account and Administrators. The files must exist.\n\n" +
			"Secrets never go into the service's command line. Give the node its Zoom\n" +
			"client secret with zoom.client_secret_file, or with --env-file: KEY=VALUE lines\n" +
			"(# comments) copied into the service's Environment registry value, which local\n" +
			"users can read.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("service install: locate this binary: %w", err)
			}
			plan, err := planServiceInstall(f, exe)
			if err != nil {
				return err
			}
			if err := installService(cmd.Context(), plan); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "installed service %s: %s %s\n", plan.Name, plan.Exe, strings.Join(plan.Args, " "))
			fmt.Fprintf(out, "runs as %s; automatic start; restarts on failure; events in the Application log, source %s\n", plan.Account, plan.Name)
			for _, f := range plan.Protect {
				fmt.Fprintf(out, "restricted to %s (read) and Administrators: %s (%s)\n", plan.Account, f.Path, f.Key)
			}
			if plan.DataDir != "" {
				fmt.Fprintf(out, "data directory for %s (modify) and Administrators: %s\n", plan.Account, plan.DataDir)
			}
			if len(plan.EnvNames) > 0 {
				fmt.Fprintf(out, "service environment from %s: %s\n", f.EnvFile, strings.Join(plan.EnvNames, ", "))
			}
			fmt.Fprintf(out, "start it with: sc.exe start %s   (or: Start-Service %s)\n", plan.Name, plan.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Config, "config", "", "YAML configuration file of this node (required)")
	cmd.Flags().StringVar(&f.Name, "name", defaultServiceName, "service name (also the event log source)")
	cmd.Flags().StringVar(&f.DisplayName, "display-name", defaultServiceDisplayName, "name shown in the Services console")
	cmd.Flags().StringVar(&f.EnvFile, "env-file", "", "KEY=VALUE file copied into the service's environment (e.g. ZCC_ZOOM_CLIENT_SECRET)")
	return cmd
}

func serviceUninstallCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop and remove the Windows service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkServiceName(name); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if err := uninstallService(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed service %s\n", name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", defaultServiceName, "service name")
	return cmd
}

func serviceRunCmd() *cobra.Command {
	var path, name string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node under the service control manager (what `service install` registers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkServiceName(name); err != nil {
				return err
			}
			if path == "" {
				return errors.New("service run: --config is required")
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return fmt.Errorf("service run: --config %s: %w", path, err)
			}
			return runService(cmd.Context(), name, abs)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "YAML configuration file (required)")
	cmd.Flags().StringVar(&name, "name", defaultServiceName, "service name, as installed")
	return cmd
}

// serviceInstallFlags are the operator's choices for `service install`.
type serviceInstallFlags struct {
	Config      string // config file, any form; made absolute
	Name        string // service name; default defaultServiceName
	DisplayName string // default defaultServiceDisplayName
	EnvFile     string // optional KEY=VALUE file for the service's environment
}

// serviceInstallPlan is what `service install` registers.
type serviceInstallPlan struct {
	Name, DisplayName, Description string
	// Exe is the absolute path of the binary the SCM starts.
	Exe string
	// Args follow Exe on the service's command line: `service run --config
	// <absolute config>`, and `--name` when not the default. Never a secret.
	Args []string
	// Env holds KEY=VALUE entries for the service's Environment registry
	// value (REG_MULTI_SZ), in file order; empty: the value is not set.
	Env []string
	// EnvNames are Env's keys, for printing.
	EnvNames []string
	// Account is the service's virtual account, NT SERVICE\<Name>: it needs
	// no password and holds only the rights given to it below.
	Account string
	// Protect are the files only Account (read) and Administrators (full
	// control) may use: the config file and the secret files it names,
	// absolute.
	Protect []config.SecretFile
	// DataDir is the embedded etcd's data directory (absolute), created and
	// given to Account and Administrators; "" when etcd.endpoints are set.
	DataDir string
}

// planServiceInstall validates f and builds the registration for the
// binary at exe. It reads the environment file but touches nothing else.
func planServiceInstall(f serviceInstallFlags, exe string) (serviceInstallPlan, error) {
	p := serviceInstallPlan{Name: f.Name, DisplayName: f.DisplayName, Description: serviceDescription}
	p.Name = cmp.Or(p.Name, defaultServiceName)
	p.DisplayName = cmp.Or(p.DisplayName, defaultServiceDisplayName)
	if err := checkServiceName(p.Name); err != nil {
		return p, err
	}
	if f.Config == "" {
		return p, errors.New("service install: --config is required")
	}
	cfg, err := filepath.Abs(f.Config)
	if err != nil {
		return p, fmt.Errorf("service install: --config %s: %w", f.Config, err)
	}
	if fi, err := os.Stat(cfg); err != nil {
		return p, fmt.Errorf("service install: --config: %w", err)
	} else if !fi.Mode().IsRegular() {
		return p, fmt.Errorf("service install: --config %s is not a file", cfg)
	}
	if !filepath.IsAbs(exe) {
		return p, fmt.Errorf("service install: binary path %q is not absolute", exe)
	}
	if tmp := os.TempDir(); tmp != "" && isWithin(tmp, exe) {
		return p, fmt.Errorf("service install: this binary (%s) is in the temporary directory (`go run`?): copy it to its own directory, e.g. C:\\Program Files\\zccadapter, and install from there", exe)
	}
	p.Exe = exe
	p.Args = serviceRunArgs(p.Name, cfg)
	p.Account = serviceAccount(p.Name)
	if f.EnvFile != "" {
		fh, err := os.Open(f.EnvFile)
		if err != nil {
			return p, fmt.Errorf("service install: --env-file: %w", err)
		}
		defer fh.Close()
		if p.Env, p.EnvNames, err = parseEnvFile(fh); err != nil {
			return p, fmt.Errorf("service install: --env-file %s: %w", f.EnvFile, err)
		}
	}
	// What the node will read and write, as the service sees it: the YAML
	// with the service's environment, paths relative to the config's
	// directory (its working directory).
	c, err := config.ReadUnchecked(cfg, p.Env)
	if err != nil {
		return p, fmt.Errorf("service install: %w", err)
	}
	dir := filepath.Dir(cfg)
	abs := func(path string) string {
		if filepath.IsAbs(path) {
			return filepath.Clean(path)
		}
		return filepath.Join(dir, path)
	}
	p.Protect = []config.SecretFile{{Key: "--config", Path: cfg}}
	for _, sf := range c.SecretFiles() {
		sf.Path = abs(sf.Path)
		if fi, err := os.Stat(sf.Path); err != nil {
			return p, fmt.Errorf("service install: %s: %w (create it first, so that it can be restricted to the service)", sf.Key, err)
		} else if !fi.Mode().IsRegular() {
			return p, fmt.Errorf("service install: %s: %s is not a file", sf.Key, sf.Path)
		}
		p.Protect = append(p.Protect, sf)
	}
	if len(c.Etcd.Endpoints) == 0 && c.DataDir != "" {
		p.DataDir = abs(c.DataDir)
	}
	return p, nil
}

// serviceAccount is the virtual account Windows creates for service name.
func serviceAccount(name string) string { return `NT SERVICE\` + name }

// serviceRunArgs are the arguments the SCM passes the binary: the config
// file's absolute path and, when not the default, the service's name. Only
// these two values vary; a secret can never get in.
func serviceRunArgs(name, absConfig string) []string {
	args := []string{"service", "run", "--config", absConfig}
	if name != defaultServiceName {
		args = append(args, "--name", name)
	}
	return args
}

// checkServiceName applies the SCM's rules for a service name (at most 256
// characters, no slash or backslash), which also name the event log source.
func checkServiceName(name string) error {
	switch {
	case name == "":
		return errors.New("service: --name is empty")
	case len(name) > 256:
		return fmt.Errorf("service: --name is %d characters long; at most 256", len(name))
	case strings.ContainsAny(name, `/\`+"\x00"):
		return fmt.Errorf("service: --name %q contains a slash or backslash", name)
	}
	return nil
}

func isWithin(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// parseEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile does:
// blank lines and lines starting with # are skipped, whitespace around key
// and value is trimmed, and a value wrapped in matching single or double
// quotes loses them (no escapes). Keys are [A-Za-z_][A-Za-z0-9_]*, each at
// most once. Errors name the line and the key, never a value.
func parseEnvFile(r io.Reader) (env, names []string, err error) {
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: not KEY=VALUE", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !validEnvName(k) {
			return nil, nil, fmt.Errorf("line %d: %q is not a variable name", n, k)
		}
		if seen[k] {
			return nil, nil, fmt.Errorf("line %d: %s set twice", n, k)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if strings.ContainsRune(v, 0) {
			return nil, nil, fmt.Errorf("line %d: the value of %s contains a NUL", n, k)
		}
		seen[k] = true
		env = append(env, k+"="+v)
		names = append(names, k)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return env, names, nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if c != '_' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Service control codes and states as winsvc.h defines them, so that the
// supervisor is portable and tested off Windows; service_windows.go checks
// at compile time that they equal golang.org/x/sys/windows's.
const (
	scmControlStop        uint32 = 0x1
	scmControlInterrogate uint32 = 0x4
	scmControlShutdown    uint32 = 0x5
	scmControlPreShutdown uint32 = 0xF

	scmStopped      uint32 = 1
	scmStartPending uint32 = 2
	scmStopPending  uint32 = 3
	scmRunning      uint32 = 4
)

// scmStatus is one status report to the SCM.
type scmStatus struct {
	State      uint32 // scmStartPending, scmRunning, scmStopPending
	Accepts    bool   // accepts stop, shutdown and preshutdown (only while running)
	CheckPoint uint32 // advances while a stop is pending
	WaitHint   time.Duration
}

// supervisor runs a node under the SCM's controls. The zero durations take
// the serviceStop… defaults.
type supervisor struct {
	// run runs the node until its ctx ends; its error is the node's.
	run func(ctx context.Context) error
	// report sends a status to the SCM; called from serve's goroutine only.
	report func(scmStatus)

	stopWaitHint    time.Duration // default serviceStopWaitHint
	checkpointEvery time.Duration // default serviceCheckpointEvery
	stopBudget      time.Duration // default serviceStopBudget
}

// serve starts run and answers controls from cmds until the node returns:
// Interrogate reports the current status; Stop, Shutdown, PreShutdown or
// the end of ctx (a console signal) cancel the node's context and report
// StopPending with the wait hint, advancing the checkpoint until the node
// returns. It returns why the stop was requested ("" when the node ended
// by itself) and the node's error: errNodeEndedUnasked for a nil return
// nobody asked for, errStopTimeout (wrapped) when the node has not returned
// stopBudget after the request; run's goroutine is then left behind, for
// the process to end. The SCM's final Stopped is the caller's to report.
func (s supervisor) serve(ctx context.Context, cmds <-chan uint32) (reason string, err error) {
	waitHint, every, budget := s.stopWaitHint, s.checkpointEvery, s.stopBudget
	if waitHint <= 0 {
		waitHint = serviceStopWaitHint
	}
	if every <= 0 {
		every = serviceCheckpointEvery
	}
	if budget <= 0 {
		budget = serviceStopBudget
	}
	s.report(scmStatus{State: scmStartPending, WaitHint: waitHint})
	nctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.run(nctx) }()
	cur := scmStatus{State: scmRunning, Accepts: true}
	s.report(cur)

	var (
		ticker   *time.Ticker
		timer    *time.Timer
		tick     <-chan time.Time
		deadline <-chan time.Time
		parent   = ctx.Done()
	)
	defer func() {
		if ticker != nil {
			ticker.Stop()
			timer.Stop()
		}
	}()
	beginStop := func(why string) {
		reason = why
		cancel()
		cur = scmStatus{State: scmStopPending, CheckPoint: 1, WaitHint: waitHint}
		ticker, timer = time.NewTicker(every), time.NewTimer(budget)
		tick, deadline = ticker.C, timer.C
	}
	for {
		select {
		case c := <-cmds:
			if reason == "" {
				switch c {
				case scmControlStop:
					beginStop("stop")
				case scmControlShutdown:
					beginStop("shutdown")
				case scmControlPreShutdown:
					beginStop("preshutdown")
				}
			}
			// The new status, or (Interrogate, a repeated stop, anything
			// unexpected) the current one.
			s.report(cur)
		case <-parent:
			parent = nil
			if reason == "" {
				beginStop("signal")
				s.report(cur)
			}
		case <-tick:
			cur.CheckPoint++
			s.report(cur)
		case <-deadline:
			return reason, fmt.Errorf("%w (%s after the %s request)", errStopTimeout, budget, reason)
		case err := <-done:
			if err == nil && reason == "" {
				err = errNodeEndedUnasked
			}
			return reason, err
		}
	}
}

// serviceExitCode is the exit code the service reports on Stopped: 0 after
// a requested stop (whatever the node returned: a non-zero code would make
// the SCM's recovery restart a service the operator stopped), else the
// node's exit code (an exitCoder's, or 1), so that recovery restarts it.
func serviceExitCode(reason string, err error) uint32 {
	if reason != "" {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) && ec.ExitCode() > 0 {
		return uint32(ec.ExitCode())
	}
	return 1
}

// eventLog is the part of golang.org/x/sys/windows/svc/eventlog.Log the
// service uses.
type eventLog interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event ids in the Application log (1–1000: the EventCreate message file).
const (
	eventIDStart uint32 = 1
	eventIDStop  uint32 = 2
	eventIDFail  uint32 = 3
	eventIDLog   uint32 = 10
)

// maxEventLogMessage stays under ReportEvent's 31,839-character limit.
const maxEventLogMessage = 31000

// eventLogWriter is a zerolog.LevelWriter that writes each log line at or
// above min to the event log, formatted as on a console without colours:
// a service has no console, and the event log is where Windows operators
// look (size-capped and rotated by Windows). Debug and trace never go there:
// min is at least info. Safe for concurrent use.
type eventLogWriter struct {
	el  eventLog
	min zerolog.Level

	mu  sync.Mutex
	buf bytes.Buffer
	cw  zerolog.ConsoleWriter
}

func newEventLogWriter(el eventLog, min zerolog.Level) *eventLogWriter {
	if min < zerolog.InfoLevel {
		min = zerolog.InfoLevel
	}
	w := &eventLogWriter{el: el, min: min}
	w.cw = zerolog.ConsoleWriter{Out: &w.buf, NoColor: true, TimeFormat: time.RFC3339Nano}
	return w
}

// Write is for lines without a level: logged as info.
func (w *eventLogWriter) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

// WriteLevel formats p (one JSON line) and reports it: warn as a warning,
// error and above as an error, anything else at or above min as
// information.
func (w *eventLogWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	if l != zerolog.NoLevel && l < w.min {
		return len(p), nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	if _, err := w.cw.Write(p); err != nil {
		w.buf.Reset()
		w.buf.Write(p)
	}
	msg := strings.TrimRight(w.buf.String(), "\n")
	if len(msg) > maxEventLogMessage {
		msg = msg[:maxEventLogMessage] + " …"
	}
	var err error
	switch {
	case l == zerolog.WarnLevel:
		err = w.el.Warning(eventIDLog, msg)
	case l >= zerolog.ErrorLevel && l <= zerolog.PanicLevel:
		err = w.el.Error(eventIDLog, msg)
	default:
		err = w.el.Info(eventIDLog, msg)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
