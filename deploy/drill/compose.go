package drill

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/zccadapter/zccadapter/wait"
)

// The compose lab's services (docker-compose.yml at the repository's root).
const (
	svcZoom     = "zoom"
	svcRecorder = "recorder"
	// composeEtcdNetwork is the compose network joining the etcd members and
	// the nodes; a partition disconnects a node from it.
	composeEtcdNetwork = "etcd"
	// composeBuildHint is how to build what the lab runs.
	composeBuildHint = "deploy/docker/build.sh"
)

var (
	// composeNodeService maps a drill node to its compose service.
	composeNodeService = map[string]string{"a": "ris-a", "b": "ris-b"}
	// composeEtcdMembers are the etcd members' services (and member names).
	composeEtcdMembers = []string{"etcd-1", "etcd-2", "etcd-3"}
	// composeServices is every service the lab must run, in start order.
	composeServices = []string{"etcd-1", "etcd-2", "etcd-3", svcZoom, svcRecorder, "ris-a", "ris-b"}
	// composePort is the container port each service publishes on 127.0.0.1.
	composePort = map[string]string{"etcd-1": "2379/tcp", "etcd-2": "2379/tcp", "etcd-3": "2379/tcp",
		svcZoom: "9000/tcp", svcRecorder: "8090/tcp", "ris-a": "8081/tcp", "ris-b": "8081/tcp"}
)

var (
	// ErrComposeUnavailable is returned by NewCompose when the docker CLI,
	// its engine, or both compose tools (`docker compose`, `docker-compose`)
	// are missing.
	ErrComposeUnavailable = errors.New("compose lab: docker or compose is not available")
	// ErrLabImageMissing is returned by Compose.Start when an image the
	// compose file names is not in the engine: build it with
	// deploy/docker/build.sh (nothing is pulled).
	ErrLabImageMissing = errors.New("compose lab: image not built")
)

// ComposeConfig configures a Compose backend. The zero value finds
// docker-compose.yml from the working directory up.
type ComposeConfig struct {
	// File is the compose file. Default: docker-compose.yml (or .yaml) in
	// the working directory or its nearest parent that has one.
	File string
	// Project is the compose project name. Default: $COMPOSE_PROJECT_NAME,
	// else the compose file's directory name normalised as compose does
	// (lower case; letters, digits, '-' and '_'), so a lab brought up by hand
	// with `docker-compose up -d` next to the file is found.
	Project string
	// WorkDir receives each container's log at Shutdown (WorkDir/logs).
	// Default: a new temporary directory; see Dir.
	WorkDir string
	// Progress receives one line per step of bringing the lab up and down
	// (nil: none).
	Progress io.Writer
	// StartTimeout bounds Start: `up` and the wait until every service is
	// healthy. Default 3m.
	StartTimeout time.Duration
}

// Compose runs a drill against the docker-compose redundancy lab through
// the Docker CLI: three etcd members, nodes a and b (services ris-a and
// ris-b), the simulated Zoom and the reference recorder, reached on the
// ports they publish on 127.0.0.1.
//
// Faults map onto docker: kill is `docker kill -s KILL`, stop is `docker
// kill -s TERM` (WaitExit waits with `docker wait`), pause and resume are
// `docker pause`/`unpause` (the cgroup freezer), partition and heal
// disconnect and reconnect the node's container from the lab's etcd network
// (it keeps Zoom and the recorder on the app network), Restart is `docker
// start`, and StopEtcd/StartEtcd stop (SIGTERM) and start one member's
// container, by default the etcd leader, found with the clientv3 Status
// call on the published client ports.
//
// The drill leaves the lab as it found it. A lab with no containers is
// brought up (`up -d`, no build) and taken down at Shutdown (`down`, with
// -v when its volumes were new too). A running lab is used as it is and left
// running, every node and member it stopped started again, paused ones
// resumed, partitions healed; a lab that has already run a drill (the
// recorder's ledger holds commands) or whose nodes run another session TTL
// or pause_on_hold than the scenario is recreated first (`down -v`, `up
// -d`), as simulators and etcd must start empty for the ledger to match the
// ground truth; a partial lab is completed with `up -d` and left running.
//
// The lab runs two nodes: NewCompose refuses a scenario with more. A
// Compose is used by one drill at a time; its methods are safe for
// concurrent use (the drill heals and resumes from a background goroutine).
type Compose struct {
	cfg     ComposeConfig
	sc      *Scenario
	file    string   // absolute path of the compose file
	project string   // compose project name
	compose []string // the compose command: docker compose, or docker-compose
	run     runner   // runs CLI commands; a fake in tests
	saveLog func(ctx context.Context, id, path string) error
	t0      time.Time
	hc      *http.Client

	mu         sync.Mutex
	ids        map[string]string // service → container id
	urls       map[string]string // service → http://127.0.0.1:port
	etcdNet    string            // docker name of the lab's etcd network
	created    bool              // Start ran up on an absent lab: Shutdown runs down
	newVolumes bool              // … and its volumes were new: down -v
	paused     map[string]bool   // services paused by the drill
	cut        map[string]bool   // services disconnected from etcdNet by the drill
	cache      map[string]containerState
	cacheAt    time.Time
	once       sync.Once
}

// runner runs one command (name args...) with extra environment variables
// and returns its standard output; a failure's error carries the end of its
// standard error.
type runner func(ctx context.Context, env []string, name string, args ...string) ([]byte, error)

// containerState is what the drill reads of a container.
type containerState struct {
	Running  bool
	Paused   bool
	Status   string // created, running, paused, exited, dead, …
	Health   string // starting, healthy, unhealthy; "" without a healthcheck
	ExitCode int
}

// NewCompose returns a backend for the lab described by cfg, checked
// against the scenario: two nodes, and the docker CLI with a compose tool
// (ErrComposeUnavailable). It starts nothing.
func NewCompose(cfg ComposeConfig, sc *Scenario) (*Compose, error) {
	if sc.Nodes != 2 {
		return nil, fmt.Errorf("compose lab: the scenario %q runs %d nodes, the lab in docker-compose.yml runs 2 (ris-a, ris-b); run it on local processes (without --compose)", sc.Name, sc.Nodes)
	}
	c := newCompose(cfg, sc, execRunner)
	if err := c.locate(); err != nil {
		return nil, err
	}
	if err := c.findTool(context.Background()); err != nil {
		return nil, err
	}
	if c.cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "zccadapter-drill-compose-")
		if err != nil {
			return nil, fmt.Errorf("compose lab: work dir: %w", err)
		}
		c.cfg.WorkDir = dir
	}
	return c, nil
}

func newCompose(cfg ComposeConfig, sc *Scenario, run runner) *Compose {
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, 3*time.Minute)
	return &Compose{cfg: cfg, sc: sc, run: run, saveLog: execSaveLog, t0: time.Now(), hc: &http.Client{Timeout: 3 * time.Second},
		ids: map[string]string{}, urls: map[string]string{}, paused: map[string]bool{}, cut: map[string]bool{}}
}

// Dir is the work directory: the containers' logs go to Dir()/logs.
func (c *Compose) Dir() string { return c.cfg.WorkDir }

// Logs implements Backend.
func (c *Compose) Logs() string { return filepath.Join(c.cfg.WorkDir, "logs") }

// NodeURL implements Backend.
func (c *Compose) NodeURL(node string) string { return c.url(composeNodeService[node]) }

// ZoomURL implements Backend.
func (c *Compose) ZoomURL() string { return c.url(svcZoom) }

// RecorderURL implements Backend.
func (c *Compose) RecorderURL() string { return c.url(svcRecorder) }

func (c *Compose) url(svc string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.urls[svc]
}

func (c *Compose) id(svc string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[svc]
}

func (c *Compose) progress(format string, args ...any) {
	if c.cfg.Progress != nil {
		fmt.Fprintf(c.cfg.Progress, "%7.1fs  lab: %s\n", time.Since(c.t0).Seconds(), fmt.Sprintf(format, args...))
	}
}

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

// Start implements Backend: it brings the lab up unless it already runs
// fresh with the scenario's settings, waits until every service is
// healthy, and learns the published ports.
func (c *Compose) Start(ctx context.Context) error {
	c.t0 = time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	if err := c.checkImages(ctx); err != nil {
		return err
	}
	existing, err := c.containers(ctx)
	if err != nil {
		return err
	}
	running := 0
	for _, st := range existing {
		if st.Running {
			running++
		}
	}
	switch {
	case len(existing) == 0:
		vols, err := c.docker(ctx, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+c.project)
		if err != nil {
			return fmt.Errorf("compose lab: %w", err)
		}
		c.mu.Lock()
		c.created, c.newVolumes = true, len(bytes.TrimSpace(vols)) == 0
		c.mu.Unlock()
		c.progress("bringing the lab up (project %s, %s)", c.project, c.file)
		if err := c.up(ctx); err != nil {
			return err
		}
	case running == len(composeServices):
		if err := c.learn(ctx); err != nil {
			return err
		}
		why, err := c.unfit(ctx)
		if err != nil {
			return err
		}
		if why == "" {
			c.progress("using the running lab (project %s)", c.project)
			break
		}
		c.progress("recreating the running lab (down -v, up -d): %s", why)
		if _, err := c.composeCmd(ctx, nil, "down", "-v", "--remove-orphans"); err != nil {
			return fmt.Errorf("compose lab: down: %w", err)
		}
		if err := c.up(ctx); err != nil {
			return err
		}
	default:
		c.progress("completing the lab (%d of %d services running): up -d", running, len(composeServices))
		if err := c.up(ctx); err != nil {
			return err
		}
	}
	if err := c.waitHealthy(ctx); err != nil {
		return err
	}
	if err := c.learn(ctx); err != nil {
		return err
	}
	if why, err := c.settingsDiffer(ctx); err != nil || why != "" {
		if err == nil {
			err = fmt.Errorf("compose lab: %s; bring it down (docker-compose down -v) and let the drill start it", why)
		}
		return err
	}
	c.progress("every service healthy; nodes %s and %s, zoom %s, recorder %s",
		c.url("ris-a"), c.url("ris-b"), c.url(svcZoom), c.url(svcRecorder))
	return nil
}

// checkImages fails with ErrLabImageMissing when an image of the compose
// file is not in the engine: `up` would try to pull it.
func (c *Compose) checkImages(ctx context.Context) error {
	out, err := c.composeCmd(ctx, nil, "config")
	if err != nil {
		return fmt.Errorf("compose lab: %s: %w", c.file, err)
	}
	var f struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &f); err != nil {
		return fmt.Errorf("compose lab: read `compose config`: %w", err)
	}
	seen := map[string]bool{}
	for _, svc := range composeServices {
		s, ok := f.Services[svc]
		if !ok {
			return fmt.Errorf("compose lab: %s has no service %q (the drill needs %s)", c.file, svc, strings.Join(composeServices, ", "))
		}
		if s.Image == "" || seen[s.Image] {
			continue
		}
		seen[s.Image] = true
		if _, err := c.docker(ctx, "image", "inspect", "--format", "{{.Id}}", s.Image); err != nil {
			return fmt.Errorf("%w: %s is not in the docker engine; build it with %s (the lab pulls nothing)", ErrLabImageMissing, s.Image, composeBuildHint)
		}
	}
	return nil
}

// up runs `up -d` without building, with the scenario's session TTL and
// pause_on_hold for the nodes (docker-compose.yml reads ZCC_LAB_*).
func (c *Compose) up(ctx context.Context) error {
	env := []string{"ZCC_LAB_SESSION_TTL=" + c.sc.SessionTTL.String(),
		"ZCC_LAB_PAUSE_ON_HOLD=" + strconv.FormatBool(*c.sc.PauseOnHold)}
	if _, err := c.composeCmd(ctx, env, "up", "-d", "--no-build"); err != nil {
		return fmt.Errorf("compose lab: up: %w", err)
	}
	return nil
}

// containers lists the project's service containers, running or not, by
// service.
func (c *Compose) containers(ctx context.Context) (map[string]containerState, error) {
	out, err := c.docker(ctx, "ps", "-a", "-q", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+c.project, "--filter", "label=com.docker.compose.oneoff=False")
	if err != nil {
		return nil, fmt.Errorf("compose lab: %w", err)
	}
	ids := strings.Fields(string(out))
	if len(ids) == 0 {
		return map[string]containerState{}, nil
	}
	cs, err := c.inspect(ctx, ids...)
	if err != nil {
		return nil, err
	}
	byService := map[string]containerState{}
	for _, ci := range cs {
		byService[ci.Config.Labels["com.docker.compose.service"]] = ci.state()
	}
	return byService, nil
}

// container is the part of `docker inspect` the drill reads.
type container struct {
	ID    string `json:"Id"`
	State struct {
		Status   string
		Running  bool
		Paused   bool
		ExitCode int
		Health   *struct{ Status string }
	}
	Config struct {
		Env    []string
		Labels map[string]string
	}
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIp, HostPort string } //nolint:revive // docker's field names
		Networks map[string]json.RawMessage
	}
}

func (ci container) state() containerState {
	s := containerState{Running: ci.State.Running, Paused: ci.State.Paused, Status: ci.State.Status, ExitCode: ci.State.ExitCode}
	if ci.State.Health != nil {
		s.Health = ci.State.Health.Status
	}
	return s
}

// env returns the value of an environment variable of the container.
func (ci container) env(name string) (string, bool) {
	for _, kv := range ci.Config.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

func (c *Compose) inspect(ctx context.Context, ids ...string) ([]container, error) {
	out, err := c.docker(ctx, append([]string{"inspect"}, ids...)...)
	if err != nil {
		return nil, fmt.Errorf("compose lab: inspect: %w", err)
	}
	var cs []container
	if err := json.Unmarshal(out, &cs); err != nil {
		return nil, fmt.Errorf("compose lab: inspect: %w", err)
	}
	return cs, nil
}

// learn records each service's container id and published URL, and the
// etcd network's docker name.
func (c *Compose) learn(ctx context.Context) error {
	out, err := c.docker(ctx, "ps", "-a", "-q", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+c.project, "--filter", "label=com.docker.compose.oneoff=False")
	if err != nil {
		return fmt.Errorf("compose lab: %w", err)
	}
	cs, err := c.inspect(ctx, strings.Fields(string(out))...)
	if err != nil {
		return err
	}
	ids, urls := map[string]string{}, map[string]string{}
	for _, ci := range cs {
		svc := ci.Config.Labels["com.docker.compose.service"]
		port, ok := composePort[svc]
		if !ok {
			continue
		}
		ids[svc] = ci.ID
		u, err := publishedURL(ci, port)
		if err != nil {
			return fmt.Errorf("compose lab: service %s: %w", svc, err)
		}
		urls[svc] = u
	}
	for _, svc := range composeServices {
		if ids[svc] == "" {
			return fmt.Errorf("compose lab: service %s has no container in project %s", svc, c.project)
		}
	}
	nets, err := c.docker(ctx, "network", "ls", "--format", "{{.Name}}",
		"--filter", "label=com.docker.compose.project="+c.project, "--filter", "label=com.docker.compose.network="+composeEtcdNetwork)
	if err != nil {
		return fmt.Errorf("compose lab: %w", err)
	}
	names := strings.Fields(string(nets))
	if len(names) != 1 {
		return fmt.Errorf("compose lab: expected one %q network in project %s, found %v", composeEtcdNetwork, c.project, names)
	}
	c.mu.Lock()
	c.ids, c.urls, c.etcdNet = ids, urls, names[0]
	c.cache = nil
	c.mu.Unlock()
	return nil
}

// publishedURL is the http URL of a container port published on the host.
func publishedURL(ci container, port string) (string, error) {
	for _, b := range ci.NetworkSettings.Ports[port] {
		if b.HostPort == "" {
			continue
		}
		host := b.HostIp
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return "http://" + host + ":" + b.HostPort, nil
	}
	return "", fmt.Errorf("port %s is not published", port)
}

// unfit says why a running lab cannot serve this drill as it is ("" if it
// can): it ran a drill already, or its nodes' settings differ.
func (c *Compose) unfit(ctx context.Context) (string, error) {
	l, err := readLedger(ctx, c.hc, c.url(svcRecorder))
	if err != nil {
		return "", fmt.Errorf("compose lab: read the recorder's ledger: %w", err)
	}
	commands := 0
	for _, e := range l.Entries {
		if e.Kind == "command" {
			commands++
		}
	}
	if commands > 0 {
		return fmt.Sprintf("it has run a drill already (the recorder's ledger holds %d commands)", commands), nil
	}
	if resp, err := c.hc.Get(c.url(svcZoom) + "/sim/truth"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return "it has run traffic already (the simulated Zoom holds a ground truth)", nil
		}
	}
	return c.settingsDiffer(ctx)
}

// settingsDiffer compares the nodes' session TTL and pause_on_hold (their
// ZCC_* environment from docker-compose.yml) with the scenario's.
func (c *Compose) settingsDiffer(ctx context.Context) (string, error) {
	cs, err := c.inspect(ctx, c.id("ris-a"), c.id("ris-b"))
	if err != nil {
		return "", err
	}
	want := map[string]string{"ZCC_ETCD_SESSION_TTL": c.sc.SessionTTL.String(), "ZCC_RULES_PAUSE_ON_HOLD": strconv.FormatBool(*c.sc.PauseOnHold)}
	for _, ci := range cs {
		for k, v := range want {
			got, ok := ci.env(k)
			if !ok {
				return "", fmt.Errorf("compose lab: container %.12s has no %s: is %s the lab's compose file?", ci.ID, k, c.file)
			}
			if !sameSetting(k, got, v) {
				return fmt.Sprintf("its nodes run with %s=%s, the scenario needs %s", k, got, v), nil
			}
		}
	}
	return "", nil
}

func sameSetting(key, got, want string) bool {
	if key == "ZCC_ETCD_SESSION_TTL" {
		g, err1 := time.ParseDuration(got)
		w, err2 := time.ParseDuration(want)
		return err1 == nil && err2 == nil && g == w
	}
	g, err1 := strconv.ParseBool(got)
	w, err2 := strconv.ParseBool(want)
	return err1 == nil && err2 == nil && g == w
}

// waitHealthy waits until every service's container is healthy; one that
// exits fails the wait with the end of its log.
func (c *Compose) waitHealthy(ctx context.Context) error {
	var last map[string]containerState
	for {
		cs, err := c.containers(ctx)
		if err != nil {
			return err
		}
		last = cs
		healthy := 0
		for _, svc := range composeServices {
			st, ok := cs[svc]
			switch {
			case !ok:
				return fmt.Errorf("compose lab: service %s has no container after up", svc)
			case st.Status == "exited" || st.Status == "dead":
				return fmt.Errorf("compose lab: service %s exited with code %d during start-up: %s", svc, st.ExitCode, c.tail(ctx, svc))
			case st.Health == "healthy":
				healthy++
			}
		}
		if healthy == len(composeServices) {
			return nil
		}
		if err := wait.Sleep(ctx, 500*time.Millisecond); err != nil {
			var waiting []string
			for _, svc := range composeServices {
				if last[svc].Health != "healthy" {
					waiting = append(waiting, fmt.Sprintf("%s %s", svc, last[svc].Health))
				}
			}
			return fmt.Errorf("compose lab: not healthy within %s: %s", c.cfg.StartTimeout, strings.Join(waiting, ", "))
		}
	}
}

// tail returns the last lines of a service's log, for errors.
func (c *Compose) tail(ctx context.Context, svc string) string {
	out, _ := c.composeCmd(ctx, nil, "logs", "--no-color", "--tail=5", svc)
	return strings.TrimSpace(string(out))
}

// state returns the container states of every service, read at most every
// 200ms unless an action of the drill invalidated them.
func (c *Compose) state(ctx context.Context) map[string]containerState {
	c.mu.Lock()
	if c.cache != nil && time.Since(c.cacheAt) < 200*time.Millisecond {
		defer c.mu.Unlock()
		return c.cache
	}
	ids := make([]string, 0, len(c.ids))
	svcOf := map[string]string{}
	for svc, id := range c.ids {
		ids = append(ids, id)
		svcOf[id] = svc
	}
	c.mu.Unlock()
	slices.Sort(ids)
	cs, err := c.inspect(ctx, ids...)
	st := map[string]containerState{}
	if err == nil {
		for _, ci := range cs {
			st[svcOf[ci.ID]] = ci.state()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache, c.cacheAt = st, time.Now()
	return st
}

func (c *Compose) invalidate() {
	c.mu.Lock()
	c.cache = nil
	c.mu.Unlock()
}

// Running implements Backend: the node's container runs (a paused one
// counts, as a stopped process does locally).
func (c *Compose) Running(node string) bool {
	return c.state(context.Background())[composeNodeService[node]].Running
}

// Fault implements Backend.
func (c *Compose) Fault(ctx context.Context, node, action string) error {
	svc, ok := composeNodeService[node]
	if !ok {
		return fmt.Errorf("compose lab: no node %q (the lab runs a and b)", node)
	}
	id := c.id(svc)
	defer c.invalidate()
	var err error
	switch action {
	case ActKill:
		_, err = c.docker(ctx, "kill", "--signal", "KILL", id)
	case ActStop:
		_, err = c.docker(ctx, "kill", "--signal", "TERM", id)
	case ActPause:
		if _, err = c.docker(ctx, "pause", id); err == nil {
			c.mark(c.paused, svc, true)
		}
	case ActResume:
		if _, err = c.docker(ctx, "unpause", id); err == nil {
			c.mark(c.paused, svc, false)
		}
	case ActPartition:
		if _, err = c.docker(ctx, "network", "disconnect", c.network(), id); err == nil {
			c.mark(c.cut, svc, true)
		}
	case ActHeal:
		if _, err = c.docker(ctx, "network", "connect", "--alias", svc, c.network(), id); err == nil {
			c.mark(c.cut, svc, false)
		}
	default:
		return fmt.Errorf("compose lab: unknown fault %q", action)
	}
	if err != nil {
		return fmt.Errorf("compose lab: %s %s: %w", action, svc, err)
	}
	return nil
}

func (c *Compose) mark(m map[string]bool, svc string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		m[svc] = true
	} else {
		delete(m, svc)
	}
}

func (c *Compose) network() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etcdNet
}

// WaitExit implements Backend with `docker wait`. Docker reports a death by
// signal N as 128+N; WaitExit returns -1 for it, as the local backend does.
func (c *Compose) WaitExit(ctx context.Context, node string) (int, error) {
	svc, ok := composeNodeService[node]
	if !ok {
		return 0, fmt.Errorf("compose lab: no node %q", node)
	}
	defer c.invalidate()
	out, err := c.docker(ctx, "wait", c.id(svc))
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("compose lab: wait %s: %w", svc, err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("compose lab: wait %s: %q is not an exit code", svc, out)
	}
	if code > 128 && code <= 128+64 {
		return -1, nil
	}
	return code, nil
}

// Restart implements Backend: `docker start` of the node's container (a
// partitioned node stays cut off until healed).
func (c *Compose) Restart(ctx context.Context, node string) error {
	svc, ok := composeNodeService[node]
	if !ok {
		return fmt.Errorf("compose lab: no node %q", node)
	}
	defer c.invalidate()
	c.invalidate()
	if c.Running(node) {
		return fmt.Errorf("compose lab: node %s is still running", node)
	}
	if _, err := c.docker(ctx, "start", c.id(svc)); err != nil {
		return fmt.Errorf("compose lab: start %s: %w", svc, err)
	}
	return nil
}

// StopEtcd implements Backend: it stops a member's container with SIGTERM
// (`docker stop`, 10s grace). member "" is the etcd leader at this moment.
func (c *Compose) StopEtcd(ctx context.Context, member string) (string, error) {
	if member == "" {
		var err error
		if member, err = c.etcdLeader(ctx); err != nil {
			return "", err
		}
	}
	if c.id(member) == "" || !strings.HasPrefix(member, "etcd-") {
		return "", fmt.Errorf("compose lab: no etcd member %q (the lab runs %s)", member, strings.Join(composeEtcdMembers, ", "))
	}
	if _, err := c.docker(ctx, "stop", "--time", "10", c.id(member)); err != nil {
		return "", fmt.Errorf("compose lab: stop %s: %w", member, err)
	}
	return member, nil
}

// EtcdKeepsQuorum reports that stopping one etcd member leaves a quorum
// (two of three): a restart-etcd need not end the leader's term, and a
// successor, if any, is measured from the stop rather than from the
// member's return. The drill may check for this method.
func (c *Compose) EtcdKeepsQuorum() bool { return len(composeEtcdMembers) >= 3 }

// StartEtcd implements Backend: `docker start`, then it waits until the
// member answers /health.
func (c *Compose) StartEtcd(ctx context.Context, member string) error {
	if c.id(member) == "" || !strings.HasPrefix(member, "etcd-") {
		return fmt.Errorf("compose lab: no etcd member %q", member)
	}
	if _, err := c.docker(ctx, "start", c.id(member)); err != nil {
		return fmt.Errorf("compose lab: start %s: %w", member, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(member)+"/health", nil)
		if resp, err := c.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("compose lab: etcd member %s not healthy 30s after start", member)
}

// etcdLeader asks each member's published client port for its status and
// returns the member that leads.
func (c *Compose) etcdLeader(ctx context.Context) (string, error) {
	var eps []string
	memberOf := map[string]string{}
	for _, m := range composeEtcdMembers {
		ep := strings.TrimPrefix(c.url(m), "http://")
		eps = append(eps, ep)
		memberOf[ep] = m
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("compose lab: etcd client: %w", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ep := range eps {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				return memberOf[ep], nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("compose lab: no etcd member reports itself leader")
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
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

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
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
