package drill

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// proc is one OS process the drill started. Its output goes to a log file
// in the drill's work directory.
type proc struct {
	name string
	bin  string
	args []string
	env  []string
	logs string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	starts  int
}

func newProc(name, bin, logDir string, env []string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, env: env, logs: filepath.Join(logDir, name+".log")}
}

// start launches the process. Its own process group keeps a terminal's
// Ctrl-C away from it (the drill stops it in order), and the parent-death
// signal kills it if the drill itself dies.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.logs, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log file: %w", p.name, err)
	}
	p.starts++
	fmt.Fprintf(f, "---- start %d at %s\n", p.starts, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// signal sends sig to the running process.
func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s: not running", p.name)
	}
	if sig == 0 {
		return fmt.Errorf("%s: this fault is not supported on this operating system", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// exited returns a channel closed when the current run has exited.
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.done
}

func (p *proc) running() bool {
	select {
	case <-p.exited():
		return false
	default:
		return true
	}
}

// exitCode of the last run (-1 for a signal death, 0 for success).
func (p *proc) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	return 0
}

// stop sends SIGTERM and waits up to grace, then SIGKILLs.
func (p *proc) stop(grace time.Duration) {
	if !p.running() {
		return
	}
	_ = p.signal(syscall.SIGTERM)
	select {
	case <-p.exited():
	case <-time.After(grace):
		_ = p.signal(syscall.SIGKILL)
		<-p.exited()
	}
}

// freePort returns a loopback port that was free a moment ago, drawn at
// random from [20000, 32000): below the ephemeral ranges of Linux
// (32768–60999), Windows and macOS (49152–65535), so that while a process of
// the drill is down (an etcd member restarted on its own ports, a node
// restarted) no outgoing connection of another program is given its port.
// After 200 taken ports it falls back to a port the kernel picks.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
