package drill

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// locate finds the compose file and names the project.
func (c *Compose) locate() error {
	f := c.cfg.File
	if f == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("compose lab: %w", err)
		}
		if f = findComposeFile(wd); f == "" {
			return fmt.Errorf("compose lab: no docker-compose.yml in %s or any parent; run from the repository or pass --compose=FILE", wd)
		}
	}
	abs, err := filepath.Abs(f)
	if err != nil {
		return fmt.Errorf("compose lab: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("compose lab: %w", err)
	}
	c.file = abs
	c.project = cmp.Or(c.cfg.Project, os.Getenv("COMPOSE_PROJECT_NAME"), projectName(filepath.Base(filepath.Dir(abs))))
	if c.project == "" {
		return fmt.Errorf("compose lab: cannot derive a project name from %s; set COMPOSE_PROJECT_NAME", filepath.Dir(abs))
	}
	return nil
}

// findComposeFile returns docker-compose.yml (or .yaml) in dir or its
// nearest parent that has one, or "".
func findComposeFile(dir string) string {
	for {
		for _, name := range []string{"docker-compose.yml", "docker-compose.yaml"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

var projectNameJunk = regexp.MustCompile(`[^a-z0-9_-]`)

// projectName normalises a directory name as both compose tools do.
func projectName(dir string) string {
	return strings.TrimLeft(projectNameJunk.ReplaceAllString(strings.ToLower(dir), ""), "-_")
}

// findTool picks `docker compose` (the plugin) if it runs, else
// docker-compose, and checks that the engine answers.
func (c *Compose) findTool(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("%w: no docker CLI in PATH", ErrComposeUnavailable)
	}
	if out, err := c.run(ctx, nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil || len(bytes.TrimSpace(out)) == 0 {
		return fmt.Errorf("%w: the docker engine does not answer: %v", ErrComposeUnavailable, err)
	}
	if _, err := c.run(ctx, nil, "docker", "compose", "version"); err == nil {
		c.compose = []string{"docker", "compose"}
		return nil
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		if _, err := c.run(ctx, nil, "docker-compose", "version"); err == nil {
			c.compose = []string{"docker-compose"}
			return nil
		}
	}
	return fmt.Errorf("%w: neither `docker compose` nor `docker-compose` runs", ErrComposeUnavailable)
}

// composeCmd runs the compose tool on the lab's file and project.
func (c *Compose) composeCmd(ctx context.Context, env []string, args ...string) ([]byte, error) {
	full := append(append(append([]string{}, c.compose[1:]...), "-f", c.file, "-p", c.project), args...)
	return c.run(ctx, env, c.compose[0], full...)
}

func (c *Compose) docker(ctx context.Context, args ...string) ([]byte, error) {
	return c.run(ctx, nil, "docker", args...)
}

// Shutdown implements Backend. It saves every container's log to Logs(),
// then takes down a lab Start brought up (`down`, -v when its volumes were
// new), or restores a lab it found running: unpauses, reconnects and starts
// what the drill paused, cut off or stopped. Idempotent; it reports
// problems on Progress, as it has no error to return.
func (c *Compose) Shutdown() {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		c.mu.Lock()
		paused, cut, created, newVolumes := keys(c.paused), keys(c.cut), c.created, c.newVolumes
		ids := make(map[string]string, len(c.ids))
		for k, v := range c.ids {
			ids[k] = v
		}
		c.mu.Unlock()
		for _, svc := range paused {
			if _, err := c.docker(ctx, "unpause", ids[svc]); err != nil {
				c.progress("unpause %s: %v", svc, err)
			}
		}
		for _, svc := range cut {
			if _, err := c.docker(ctx, "network", "connect", "--alias", svc, c.network(), ids[svc]); err != nil {
				c.progress("reconnect %s to etcd: %v", svc, err)
			}
		}
		c.saveLogs(ctx, ids)
		if created {
			args := []string{"down", "--remove-orphans"}
			if newVolumes {
				args = append(args, "-v")
			}
			c.progress("taking the lab down (%s)", strings.Join(args, " "))
			if _, err := c.composeCmd(ctx, nil, args...); err != nil {
				c.progress("down: %v", err)
			}
			return
		}
		if len(ids) == 0 {
			return
		}
		c.invalidate()
		st := c.state(ctx)
		var started []string
		for _, svc := range composeServices {
			if s, ok := st[svc]; ok && !s.Running {
				if _, err := c.docker(ctx, "start", ids[svc]); err != nil {
					c.progress("start %s: %v", svc, err)
					continue
				}
				started = append(started, svc)
			}
		}
		if len(started) > 0 {
			c.progress("started %s again; the lab keeps running", strings.Join(started, ", "))
		} else {
			c.progress("the lab keeps running (project %s)", c.project)
		}
	})
}

// saveLogs writes each container's log (docker logs -t) to Logs()/SERVICE.log.
func (c *Compose) saveLogs(ctx context.Context, ids map[string]string) {
	if len(ids) == 0 {
		return
	}
	dir := c.Logs()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.progress("logs: %v", err)
		return
	}
	for svc, id := range ids {
		if err := c.saveLog(ctx, id, filepath.Join(dir, svc+".log")); err != nil {
			c.progress("logs of %s: %v", svc, err)
		}
	}
}

// execSaveLog writes a container's output, both streams, to path.
func execSaveLog(ctx context.Context, id, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "docker", "logs", "--timestamps", id)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = groupAttr()
	return cmd.Run()
}

// execRunner runs a command in its own process group, so a terminal's
// Ctrl-C reaches the drill only (which then shuts the lab down in order).
func execRunner(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = groupAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 800 {
			msg = "…" + msg[len(msg)-800:]
		}
		if msg == "" {
			return stdout.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}
