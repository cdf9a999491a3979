package drill

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
