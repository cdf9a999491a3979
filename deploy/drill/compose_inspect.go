package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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
