//go:build windows

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/zccadapter/zccadapter/config"
)

// The portable control codes and states of service.go are winsvc.h's:
// each index below is out of range (a compile error) if one differs.
var _ = [1]struct{}{}[windows.SERVICE_CONTROL_STOP-scmControlStop+
	windows.SERVICE_CONTROL_INTERROGATE-scmControlInterrogate+
	windows.SERVICE_CONTROL_SHUTDOWN-scmControlShutdown+
	windows.SERVICE_CONTROL_PRESHUTDOWN-scmControlPreShutdown]
var _ = [1]struct{}{}[windows.SERVICE_STOPPED-scmStopped+
	windows.SERVICE_START_PENDING-scmStartPending+
	windows.SERVICE_STOP_PENDING-scmStopPending+
	windows.SERVICE_RUNNING-scmRunning]

// What the SCM does when the node fails (crashes, or stops with a non-zero
// exit code without being asked): restart after 2 s, then 10 s, then every
// 60 s; the failure count resets after 10 minutes without a failure.
var (
	serviceRecovery = []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 2 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 60 * time.Second},
	}
	serviceRecoveryResetSeconds uint32 = 600
)

func serviceSupported() error { return nil }

// installService registers p with the SCM (needs Administrator): the
// virtual account p.Account, automatic start, the recovery actions above
// also on non-crash failures, p.Env as the service's Environment registry
// value, and the service's name as an Application event log source; then it
// restricts p.Protect to the account and Administrators and gives them
// p.DataDir (see restrictFiles). On a failure after the service was created
// it deletes the service again.
func installService(_ context.Context, p serviceInstallPlan) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service install: connect to the service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(p.Name); err == nil {
		s.Close()
		return fmt.Errorf("service install: service %s exists; remove it first with `zccadapter service uninstall --name %s`", p.Name, p.Name)
	}
	s, err := m.CreateService(p.Name, p.Exe, mgr.Config{
		StartType:        mgr.StartAutomatic,
		ErrorControl:     mgr.ErrorNormal,
		DisplayName:      p.DisplayName,
		Description:      p.Description,
		ServiceStartName: p.Account, // a virtual account: no password
	}, p.Args...)
	if err != nil {
		return fmt.Errorf("service install: create %s: %w", p.Name, err)
	}
	defer s.Close()
	err = configureService(s, p)
	if err == nil {
		err = restrictFiles(p)
	}
	if err != nil {
		if derr := s.Delete(); derr != nil {
			return fmt.Errorf("service install: %s: %w (and deleting the half-installed service failed: %v)", p.Name, err, derr)
		}
		return fmt.Errorf("service install: %s: %w (the service was deleted again)", p.Name, err)
	}
	return nil
}

func configureService(s *mgr.Service, p serviceInstallPlan) error {
	if err := s.SetRecoveryActions(serviceRecovery, serviceRecoveryResetSeconds); err != nil {
		return fmt.Errorf("set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("set recovery on non-crash failures: %w", err)
	}
	if len(p.Env) > 0 {
		k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\`+p.Name, registry.SET_VALUE)
		if err != nil {
			return fmt.Errorf("open the service's registry key: %w", err)
		}
		err = k.SetStringsValue("Environment", p.Env)
		k.Close()
		if err != nil { // the error carries no value
			return fmt.Errorf("set the service's Environment value: %w", err)
		}
	}
	const kinds = eventlog.Error | eventlog.Warning | eventlog.Info
	if err := eventlog.InstallAsEventCreate(p.Name, kinds); err != nil {
		// Most likely a source left by an earlier install: replace it.
		if rerr := eventlog.Remove(p.Name); rerr != nil {
			return fmt.Errorf("register event log source: %w", err)
		}
		if err := eventlog.InstallAsEventCreate(p.Name, kinds); err != nil {
			return fmt.Errorf("register event log source: %w", err)
		}
	}
	return nil
}

// restrictFiles gives each file of p.Protect a protected DACL (nothing
// inherited) granting p.Account read and Administrators full control, and
// creates p.DataDir (when set) with a protected DACL granting both full
// control, inherited by everything in it. The account exists once the
// service does.
func restrictFiles(p serviceInstallPlan) error {
	account, _, _, err := windows.LookupSID("", p.Account)
	if err != nil {
		return fmt.Errorf("look up %s: %w", p.Account, err)
	}
	admins, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return fmt.Errorf("the Administrators SID: %w", err)
	}
	for _, f := range p.Protect {
		if err := setDACL(f.Path,
			grant(account, windows.TRUSTEE_IS_USER, windows.FILE_GENERIC_READ, windows.NO_INHERITANCE),
			grant(admins, windows.TRUSTEE_IS_WELL_KNOWN_GROUP, windows.GENERIC_ALL, windows.NO_INHERITANCE)); err != nil {
			return fmt.Errorf("restrict %s (%s): %w", f.Path, f.Key, err)
		}
	}
	if p.DataDir != "" {
		if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		const inherit = windows.SUB_CONTAINERS_AND_OBJECTS_INHERIT
		if err := setDACL(p.DataDir,
			grant(account, windows.TRUSTEE_IS_USER, windows.GENERIC_ALL, inherit),
			grant(admins, windows.TRUSTEE_IS_WELL_KNOWN_GROUP, windows.GENERIC_ALL, inherit)); err != nil {
			return fmt.Errorf("data directory %s: %w", p.DataDir, err)
		}
	}
	return nil
}

func grant(sid *windows.SID, typ windows.TRUSTEE_TYPE, mask windows.ACCESS_MASK, inherit uint32) windows.EXPLICIT_ACCESS {
	return windows.EXPLICIT_ACCESS{
		AccessPermissions: mask,
		AccessMode:        windows.SET_ACCESS,
		Inheritance:       inherit,
		Trustee: windows.TRUSTEE{
			TrusteeForm:  windows.TRUSTEE_IS_SID,
			TrusteeType:  typ,
			TrusteeValue: windows.TrusteeValueFromSID(sid),
		},
	}
}

// setDACL replaces path's DACL with entries only, protected from
// inheritance (an ACL of its parent no longer applies).
func setDACL(path string, entries ...windows.EXPLICIT_ACCESS) error {
	acl, err := windows.ACLFromEntries(entries, nil)
	if err != nil {
		return err
	}
	return windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, acl, nil)
}

// uninstallService stops the service (waiting until ctx ends for it to
// report Stopped), deletes it and removes its event log source.
func uninstallService(ctx context.Context, name string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service uninstall: connect to the service control manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return fmt.Errorf("service uninstall: no service named %s", name)
	} else if err != nil {
		return fmt.Errorf("service uninstall: open %s: %w", name, err)
	}
	defer s.Close()
	if err := stopService(ctx, s); err != nil {
		return fmt.Errorf("service uninstall: stop %s: %w", name, err)
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("service uninstall: delete %s: %w", name, err)
	}
	if err := eventlog.Remove(name); err != nil {
		return fmt.Errorf("service uninstall: service %s deleted, but not its event log source: %w", name, err)
	}
	return nil
}

// stopService asks s to stop and polls until it reports Stopped or ctx
// ends (the SCM offers no wait without a callback).
func stopService(ctx context.Context, s *mgr.Service) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	asked := false
	for {
		st, err := s.Query()
		if err != nil {
			return err
		}
		switch {
		case st.State == svc.Stopped:
			return nil
		case !asked && st.State != svc.StopPending:
			_, err := s.Control(svc.Stop)
			switch {
			case err == nil, errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE):
				asked = true
			case errors.Is(err, windows.ERROR_SERVICE_CANNOT_ACCEPT_CTRL):
				// Still starting: ask again on the next tick.
			default:
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not stopped (state %d): %w", st.State, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// runService runs the node at configPath under the SCM until it is stopped
// or fails. It returns once the SCM has been told Stopped; the exit status
// the SCM acts on is in that report, not in the error.
func runService(ctx context.Context, name, configPath string) error {
	isService, err := svc.IsWindowsService()
	if err != nil {
		return fmt.Errorf("service run: %w", err)
	}
	if !isService {
		return fmt.Errorf("service run: not started by the service control manager; in a console use `zccadapter run --config %s`", configPath)
	}
	var el eventLog = nopEventLog{}
	if l, err := eventlog.Open(name); err == nil {
		defer l.Close()
		el = l
	}
	return svc.Run(name, &nodeService{ctx: ctx, name: name, config: configPath, elog: el})
}

// nodeService is the svc.Handler of `service run`.
type nodeService struct {
	ctx    context.Context // ends on a console signal; the SCM's controls end the node too
	name   string
	config string // absolute
	elog   eventLog
}

// Execute runs the node under supervisor.serve, translating the SCM's
// change requests and statuses, and returns the exit code of
// serviceExitCode as a service-specific code.
func (h *nodeService) Execute(_ []string, r <-chan svc.ChangeRequest, changes chan<- svc.Status) (bool, uint32) {
	cmds := make(chan uint32)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case c := <-r:
				select {
				case cmds <- uint32(c.Cmd):
				case <-quit:
					return
				}
			case <-quit:
				return
			}
		}
	}()
	_ = h.elog.Info(eventIDStart, fmt.Sprintf("%s starting (version %s, config %s)", h.name, version, h.config))
	sup := supervisor{run: h.runNode, report: func(st scmStatus) { changes <- svcStatus(st) }}
	reason, err := sup.serve(h.ctx, cmds)
	close(quit)
	wg.Wait()
	code := serviceExitCode(reason, err)
	switch {
	case reason == "":
		_ = h.elog.Error(eventIDFail, fmt.Sprintf("%s failed: %v; exit code %d (the service's recovery actions restart it)", h.name, err, code))
	case err != nil:
		_ = h.elog.Warning(eventIDStop, fmt.Sprintf("%s stopped on a %s request: %v", h.name, reason, err))
	default:
		_ = h.elog.Info(eventIDStop, fmt.Sprintf("%s stopped on a %s request", h.name, reason))
	}
	return true, code
}

// runNode loads the config and runs the node, its log going to the event
// log. The working directory becomes the config file's, so that relative
// paths in it (data_dir, *_file) do not resolve in C:\Windows\System32.
func (h *nodeService) runNode(ctx context.Context) error {
	if err := os.Chdir(filepath.Dir(h.config)); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	cfg, err := config.Load(h.config)
	if err != nil {
		return err
	}
	lvl, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	if lvl < zerolog.InfoLevel {
		lvl = zerolog.InfoLevel
	}
	log := zerolog.New(newEventLogWriter(h.elog, lvl)).Level(lvl).With().Timestamp().Logger()
	return runNode(ctx, cfg, log.With().Str("node", cfg.Node).Logger())
}

func svcStatus(st scmStatus) svc.Status {
	s := svc.Status{State: svc.State(st.State), CheckPoint: st.CheckPoint, WaitHint: uint32(st.WaitHint / time.Millisecond)}
	if st.Accepts {
		s.Accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown
	}
	return s
}

type nopEventLog struct{}

func (nopEventLog) Info(uint32, string) error    { return nil }
func (nopEventLog) Warning(uint32, string) error { return nil }
func (nopEventLog) Error(uint32, string) error   { return nil }
