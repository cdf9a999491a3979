package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
)

func TestServiceCommandsOffWindows(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the commands work on Windows")
	}
	for _, args := range [][]string{
		{},
		{"install", "--config", "node-a.yaml"},
		{"install"}, // no --config: the OS answer comes first
		{"uninstall"},
		{"run", "--config", "node-a.yaml"},
	} {
		cmd := serviceCmd()
		cmd.SetArgs(args)
		cmd.SetOut(&strings.Builder{})
		cmd.SetErr(&strings.Builder{})
		err := cmd.ExecuteContext(t.Context())
		if !errors.Is(err, errServiceWindowsOnly) {
			t.Errorf("service %v: err = %v, want errServiceWindowsOnly", args, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "Windows only") || !strings.Contains(msg, "deploy/systemd/zccadapter.service") {
			t.Errorf("service %v: message %q does not say Windows only and name the systemd unit", args, msg)
		}
	}
}

func TestPlanServiceInstall(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "node-a.yaml")
	writeFile(t, cfg, "node: a\n")
	const secret = "s3cret-not-in-args"
	envFile := filepath.Join(dir, "zccadapter.env")
	writeFile(t, envFile, "# secrets\nZCC_ZOOM_CLIENT_SECRET="+secret+"\n\nZCC_ETCD_PASSWORD='p w'\n")
	exe := filepath.Join(string(filepath.Separator)+"opt", "zccadapter", "zccadapter.exe")
	t.Chdir(dir)

	tests := []struct {
		name     string
		flags    serviceInstallFlags
		exe      string
		wantArgs []string
		wantEnv  []string
		wantErr  string
	}{
		{name: "default name, relative config", flags: serviceInstallFlags{Config: "node-a.yaml"}, exe: exe,
			wantArgs: []string{"service", "run", "--config", cfg}},
		{name: "own name", flags: serviceInstallFlags{Config: cfg, Name: "zccadapter-b"}, exe: exe,
			wantArgs: []string{"service", "run", "--config", cfg, "--name", "zccadapter-b"}},
		{name: "env file", flags: serviceInstallFlags{Config: cfg, EnvFile: envFile}, exe: exe,
			wantArgs: []string{"service", "run", "--config", cfg},
			wantEnv:  []string{"ZCC_ZOOM_CLIENT_SECRET=" + secret, "ZCC_ETCD_PASSWORD=p w"}},
		{name: "no config", flags: serviceInstallFlags{}, exe: exe, wantErr: "--config is required"},
		{name: "missing config", flags: serviceInstallFlags{Config: "nope.yaml"}, exe: exe, wantErr: "nope.yaml"},
		{name: "config is a directory", flags: serviceInstallFlags{Config: dir}, exe: exe, wantErr: "is not a file"},
		{name: "backslash in name", flags: serviceInstallFlags{Config: cfg, Name: `a\b`}, exe: exe, wantErr: "backslash"},
		{name: "binary from go run", flags: serviceInstallFlags{Config: cfg}, exe: filepath.Join(os.TempDir(), "go-build1", "exe", "zccadapter"),
			wantErr: "temporary directory"},
		{name: "missing env file", flags: serviceInstallFlags{Config: cfg, EnvFile: "nope.env"}, exe: exe, wantErr: "--env-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planServiceInstall(tt.flags, tt.exe)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Exe != tt.exe {
				t.Errorf("Exe = %q, want %q", p.Exe, tt.exe)
			}
			if !slices.Equal(p.Args, tt.wantArgs) {
				t.Errorf("Args = %q, want %q", p.Args, tt.wantArgs)
			}
			if !slices.Equal(p.Env, tt.wantEnv) {
				t.Errorf("Env has %d entries, want %d", len(p.Env), len(tt.wantEnv))
			}
			if strings.Contains(strings.Join(p.Args, " "), secret) || strings.Contains(p.Exe, secret) {
				t.Error("a secret is on the service's command line")
			}
			if p.Name == "" || p.DisplayName == "" || p.Description == "" {
				t.Errorf("plan without name, display name or description: %+v", p)
			}
		})
	}
}

func TestParseEnvFile(t *testing.T) {
	const secret = "hunter2-value"
	tests := []struct {
		name, in  string
		want      []string
		wantErr   string
		wantNames []string
	}{
		{name: "comments, blanks, quotes, spaces, BOM",
			in:        "\ufeff# c\n\nA=1\n B = two words \nC=\"q\"\nD='s'\nE=\nF=\"unbalanced'\n",
			want:      []string{"A=1", "B=two words", "C=q", "D=s", "E=", "F=\"unbalanced'"},
			wantNames: []string{"A", "B", "C", "D", "E", "F"}},
		{name: "value with =", in: "URL=https://x/?a=b\n", want: []string{"URL=https://x/?a=b"}, wantNames: []string{"URL"}},
		{name: "no =", in: "A=1\n" + secret + "\n", wantErr: "line 2: not KEY=VALUE"},
		{name: "bad name", in: "1A=" + secret + "\n", wantErr: `line 1: "1A" is not a variable name`},
		{name: "export prefix", in: "export A=" + secret + "\n", wantErr: "is not a variable name"},
		{name: "twice", in: "ZCC_X=" + secret + "\nZCC_X=" + secret + "\n", wantErr: "line 2: ZCC_X set twice"},
		{name: "empty", in: "", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, names, err := parseEnvFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q shows a value", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(env, tt.want) || !slices.Equal(names, tt.wantNames) {
				t.Fatalf("got %q %q, want %q %q", env, names, tt.want, tt.wantNames)
			}
		})
	}
}

// scmRecorder collects the statuses a supervisor reports.
type scmRecorder struct {
	mu  sync.Mutex
	got []scmStatus
}

func (r *scmRecorder) report(s scmStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *scmRecorder) statuses() []scmStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

type codeErr struct{ code int }

func (e codeErr) Error() string { return fmt.Sprintf("exit %d", e.code) }
func (e codeErr) ExitCode() int { return e.code }

func TestSupervisorStop(t *testing.T) {
	for _, tc := range []struct {
		cmd    uint32
		reason string
	}{{scmControlStop, "stop"}, {scmControlShutdown, "shutdown"}, {scmControlPreShutdown, "preshutdown"}} {
		t.Run(tc.reason, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &scmRecorder{}
				const nodeStop = 2500 * time.Millisecond // the node's shutdown: under the wait hint
				var stoppedAt time.Time
				run := func(ctx context.Context) error {
					<-ctx.Done()
					time.Sleep(nodeStop)
					stoppedAt = time.Now()
					return nil
				}
				cmds := make(chan uint32)
				type result struct {
					reason string
					err    error
				}
				res := make(chan result, 1)
				go func() {
					r, err := supervisor{run: run, report: rec.report}.serve(t.Context(), cmds)
					res <- result{r, err}
				}()
				cmds <- scmControlInterrogate
				synctest.Wait()
				if got := rec.statuses(); len(got) != 3 || got[0].State != scmStartPending || got[1] != (scmStatus{State: scmRunning, Accepts: true}) || got[2] != got[1] {
					t.Fatalf("statuses before the stop = %+v, want StartPending, Running accepting controls, Running again (Interrogate)", got)
				}
				askedAt := time.Now()
				cmds <- tc.cmd
				cmds <- scmControlInterrogate
				r := <-res
				if r.reason != tc.reason || r.err != nil {
					t.Fatalf("serve = %q, %v; want %q, nil", r.reason, r.err, tc.reason)
				}
				if code := serviceExitCode(r.reason, r.err); code != 0 {
					t.Errorf("exit code %d after a requested stop, want 0", code)
				}
				if took := stoppedAt.Sub(askedAt); took != nodeStop {
					t.Errorf("node stopped %s after the request, want %s", took, nodeStop)
				}
				pending := rec.statuses()[3:]
				if len(pending) < 3 {
					t.Fatalf("statuses while stopping = %+v, want StopPending reports with advancing checkpoints", pending)
				}
				for i, s := range pending {
					if s.State != scmStopPending || s.Accepts || s.WaitHint != serviceStopWaitHint {
						t.Errorf("status %d while stopping = %+v, want StopPending, accepting nothing, wait hint %s", i, s, serviceStopWaitHint)
					}
					if i > 0 && s.CheckPoint < pending[i-1].CheckPoint {
						t.Errorf("checkpoint went back: %+v", pending)
					}
				}
				if last := pending[len(pending)-1].CheckPoint; last < 3 {
					t.Errorf("last checkpoint %d after %s, want one per %s", last, nodeStop, serviceCheckpointEvery)
				}
				if serviceStopWaitHint < nodeStop || serviceStopWaitHint >= serviceStopBudget || serviceStopBudget >= 10*time.Second {
					t.Errorf("wait hint %s and budget %s: want node stop %s ≤ hint < budget < the SCM's 10 s preshutdown timeout",
						serviceStopWaitHint, serviceStopBudget, nodeStop)
				}
			})
		})
	}
}

func TestSupervisorNodeEnds(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantErr  error
		wantCode uint32
	}{
		{name: "exit coder", err: codeErr{2}, wantErr: codeErr{2}, wantCode: 2},
		{name: "plain error", err: errors.New("etcd: no endpoints"), wantCode: 1},
		{name: "nil without a stop", err: nil, wantErr: errNodeEndedUnasked, wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &scmRecorder{}
				run := func(context.Context) error { time.Sleep(time.Second); return tt.err }
				reason, err := supervisor{run: run, report: rec.report}.serve(t.Context(), make(chan uint32))
				if reason != "" {
					t.Errorf("reason = %q, want none", reason)
				}
				if (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || (tt.wantErr == nil && err != tt.err) {
					t.Errorf("err = %v, want %v", err, tt.err)
				}
				if code := serviceExitCode(reason, err); code != tt.wantCode {
					t.Errorf("exit code = %d, want %d", code, tt.wantCode)
				}
			})
		})
	}
}

func TestSupervisorStopBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		run := func(ctx context.Context) error { <-release; return nil } // ignores ctx
		cmds := make(chan uint32, 1)
		cmds <- scmControlStop
		start := time.Now()
		reason, err := supervisor{run: run, report: func(scmStatus) {}}.serve(t.Context(), cmds)
		close(release)
		if !errors.Is(err, errStopTimeout) || reason != "stop" {
			t.Fatalf("serve = %q, %v; want stop, errStopTimeout", reason, err)
		}
		if took := time.Since(start); took != serviceStopBudget {
			t.Errorf("gave up after %s, want %s", took, serviceStopBudget)
		}
		if code := serviceExitCode(reason, err); code != 0 {
			t.Errorf("exit code %d after a requested stop, want 0", code)
		}
	})
}

func TestSupervisorParentContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		run := func(ctx context.Context) error { <-ctx.Done(); return nil }
		go func() { time.Sleep(time.Second); cancel() }()
		reason, err := supervisor{run: run, report: func(scmStatus) {}}.serve(ctx, make(chan uint32))
		if reason != "signal" || err != nil {
			t.Fatalf("serve = %q, %v; want signal, nil", reason, err)
		}
	})
}

type fakeEventLog struct{ got []string }

func (f *fakeEventLog) Info(id uint32, m string) error    { return f.add("info", id, m) }
func (f *fakeEventLog) Warning(id uint32, m string) error { return f.add("warning", id, m) }
func (f *fakeEventLog) Error(id uint32, m string) error   { return f.add("error", id, m) }
func (f *fakeEventLog) add(kind string, id uint32, m string) error {
	f.got = append(f.got, fmt.Sprintf("%s %d %s", kind, id, m))
	return nil
}

func TestEventLogWriter(t *testing.T) {
	el := &fakeEventLog{}
	log := zerolog.New(newEventLogWriter(el, zerolog.DebugLevel)).Level(zerolog.DebugLevel).With().Str("node", "a").Logger()
	log.Debug().Msg("not in the event log")
	log.Info().Str("role", "leader").Int64("epoch", 4).Msg("role changed")
	log.Warn().Msg("resign incomplete")
	log.Error().Err(errors.New("boom")).Msg("promotion failed")
	want := []string{"info 10 ", "warning 10 ", "error 10 "}
	if len(el.got) != len(want) {
		t.Fatalf("event log got %q, want %d entries (debug dropped)", el.got, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(el.got[i], w) || strings.HasSuffix(el.got[i], "\n") {
			t.Errorf("entry %d = %q, want prefix %q and no trailing newline", i, el.got[i], w)
		}
	}
	for _, part := range []string{"role changed", "role=leader", "epoch=4", "node=a"} {
		if !strings.Contains(el.got[0], part) {
			t.Errorf("entry %q lacks %q", el.got[0], part)
		}
	}
	if !strings.Contains(el.got[2], "boom") {
		t.Errorf("error entry %q lacks the error", el.got[2])
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPlanServiceInstallAccountAndFiles: the service runs as its virtual
// account; the plan restricts the config file and every secret file the
// node will read (from the YAML and from the service's environment,
// relative paths resolved in the config's directory), and gives the
// account the embedded etcd's data directory.
func TestPlanServiceInstallAccountAndFiles(t *testing.T) {
	dir := t.TempDir()
	keys := t.TempDir()
	cfg := filepath.Join(dir, "node-a.yaml")
	writeFile(t, filepath.Join(dir, "zoom-secret"), "x")
	writeFile(t, filepath.Join(keys, "etcd-key.pem"), "x")
	writeFile(t, filepath.Join(dir, "rec-token"), "x")
	writeFile(t, cfg, "node: a\nzoom:\n  client_secret_file: zoom-secret\netcd:\n  tls:\n    key_file: "+filepath.Join(keys, "etcd-key.pem")+"\n")
	envFile := filepath.Join(dir, "zccadapter.env")
	writeFile(t, envFile, "ZCC_RECORDER_BEARER_TOKEN_FILE=rec-token\n")
	exe := filepath.Join(string(filepath.Separator)+"opt", "zccadapter", "zccadapter.exe")

	p, err := planServiceInstall(serviceInstallFlags{Config: cfg, Name: "zccadapter-a", EnvFile: envFile}, exe)
	if err != nil {
		t.Fatal(err)
	}
	if p.Account != `NT SERVICE\zccadapter-a` {
		t.Errorf("Account = %q; want NT SERVICE\\zccadapter-a", p.Account)
	}
	var got []string
	for _, f := range p.Protect {
		got = append(got, f.Key+"="+f.Path)
	}
	want := []string{"--config=" + cfg, "zoom.client_secret_file=" + filepath.Join(dir, "zoom-secret"),
		"etcd.tls.key_file=" + filepath.Join(keys, "etcd-key.pem"), "recorder.bearer_token_file=" + filepath.Join(dir, "rec-token")}
	if !slices.Equal(got, want) {
		t.Errorf("Protect = %q\nwant %q", got, want)
	}
	if p.DataDir != filepath.Join(dir, "data-a") {
		t.Errorf("DataDir = %q; want %q", p.DataDir, filepath.Join(dir, "data-a"))
	}

	writeFile(t, cfg, "node: a\netcd:\n  endpoints: [\"ris-a:2379\"]\n  password_file: missing-password\n")
	if _, err := planServiceInstall(serviceInstallFlags{Config: cfg}, exe); err == nil || !strings.Contains(err.Error(), "etcd.password_file") {
		t.Errorf("missing secret file: %v; want an error naming etcd.password_file", err)
	}
	writeFile(t, cfg, "node: a\netcd:\n  endpoints: [\"ris-a:2379\"]\n")
	if p, err := planServiceInstall(serviceInstallFlags{Config: cfg}, exe); err != nil || p.DataDir != "" || len(p.Protect) != 1 {
		t.Errorf("external etcd: plan %+v, %v; want no data directory and the config file only", p, err)
	}
	writeFile(t, cfg, "node: a\nbogus: 1\n")
	if _, err := planServiceInstall(serviceInstallFlags{Config: cfg}, exe); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("malformed config: %v; want the config error", err)
	}
}
