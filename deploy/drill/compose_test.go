package drill

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeCLI stands in for the docker and compose commands: it expects the
// given command lines in order, answers each with its output, and fails the
// test on any other call.
type fakeCLI struct {
	t    *testing.T
	mu   sync.Mutex
	want []fakeCall
}

type fakeCall struct {
	cmd string // name and arguments joined by spaces
	out string
	err error
}

func (f *fakeCLI) run(_ context.Context, _ []string, name string, args ...string) ([]byte, error) {
	got := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.want) == 0 {
		f.t.Errorf("unexpected command %q", got)
		return nil, errors.New("unexpected command")
	}
	w := f.want[0]
	f.want = f.want[1:]
	if got != w.cmd {
		f.t.Errorf("command = %q, want %q", got, w.cmd)
	}
	return []byte(w.out), w.err
}

func (f *fakeCLI) done() {
	f.t.Helper()
	if len(f.want) > 0 {
		f.t.Errorf("%d expected commands never ran, first %q", len(f.want), f.want[0].cmd)
	}
}

// labCompose returns a Compose on a fake CLI, as if Start had learnt a
// running lab.
func labCompose(t *testing.T, calls ...fakeCall) (*Compose, *fakeCLI) {
	t.Helper()
	f := &fakeCLI{t: t, want: calls}
	c := newCompose(ComposeConfig{WorkDir: t.TempDir()}, DefaultScenario(), f.run)
	c.file, c.project, c.compose = "/lab/docker-compose.yml", "lab", []string{"docker-compose"}
	c.saveLog = func(context.Context, string, string) error { return nil }
	for _, svc := range composeServices {
		c.ids[svc] = "id-" + svc
	}
	c.etcdNet = "lab_etcd"
	t.Cleanup(f.done)
	return c, f
}

func TestComposeFaultsMapToDocker(t *testing.T) {
	c, _ := labCompose(t,
		fakeCall{cmd: "docker kill --signal KILL id-ris-a"},
		fakeCall{cmd: "docker kill --signal TERM id-ris-b"},
		fakeCall{cmd: "docker pause id-ris-a"},
		fakeCall{cmd: "docker unpause id-ris-a"},
		fakeCall{cmd: "docker network disconnect lab_etcd id-ris-b"},
		fakeCall{cmd: "docker network connect --alias ris-b lab_etcd id-ris-b"},
	)
	ctx := t.Context()
	for _, f := range []struct{ node, action string }{
		{"a", ActKill}, {"b", ActStop}, {"a", ActPause}, {"a", ActResume}, {"b", ActPartition}, {"b", ActHeal},
	} {
		if err := c.Fault(ctx, f.node, f.action); err != nil {
			t.Fatalf("Fault(%s, %s): %v", f.node, f.action, err)
		}
	}
	if len(c.paused) != 0 || len(c.cut) != 0 {
		t.Errorf("after resume and heal: paused %v, cut %v, want none", c.paused, c.cut)
	}
	if err := c.Fault(ctx, "c", ActKill); err == nil {
		t.Error("Fault on node c: no error, want one (the lab runs a and b)")
	}
}

func TestComposeWaitExitCodes(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want int
	}{{"137\n", -1}, {"143\n", -1}, {"0\n", 0}, {"1\n", 1}} {
		c, _ := labCompose(t, fakeCall{cmd: "docker wait id-ris-a", out: tc.out})
		got, err := c.WaitExit(t.Context(), "a")
		if err != nil || got != tc.want {
			t.Errorf("docker wait prints %q: WaitExit = %d, %v; want %d, nil", tc.out, got, err, tc.want)
		}
	}
}

func TestComposeRestartStartsAStoppedNode(t *testing.T) {
	exited := `[{"Id":"id-ris-a","State":{"Status":"exited","Running":false,"ExitCode":137},"Config":{"Labels":{"com.docker.compose.service":"ris-a"}}}]`
	var ids []string
	for _, svc := range composeServices {
		ids = append(ids, "id-"+svc)
	}
	slices.Sort(ids)
	c, _ := labCompose(t,
		fakeCall{cmd: "docker inspect " + strings.Join(ids, " "), out: exited},
		fakeCall{cmd: "docker start id-ris-a"},
	)
	if err := c.Restart(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
}

func TestComposeStopEtcdMember(t *testing.T) {
	c, _ := labCompose(t, fakeCall{cmd: "docker stop --time 10 id-etcd-2"})
	got, err := c.StopEtcd(t.Context(), "etcd-2")
	if err != nil || got != "etcd-2" {
		t.Fatalf("StopEtcd(etcd-2) = %q, %v", got, err)
	}
	if _, err := c.StopEtcd(t.Context(), "zoom"); err == nil {
		t.Error("StopEtcd(zoom): no error, want one")
	}
}

func TestComposeStartNamesTheBuildScriptWhenTheImageIsMissing(t *testing.T) {
	config := "services:\n"
	for _, svc := range composeServices {
		config += "  " + svc + ":\n    image: zccadapter:dev\n"
	}
	c, _ := labCompose(t,
		fakeCall{cmd: "docker-compose -f /lab/docker-compose.yml -p lab config", out: config},
		fakeCall{cmd: "docker image inspect --format {{.Id}} zccadapter:dev", err: errors.New("No such image")},
	)
	err := c.Start(t.Context())
	if !errors.Is(err, ErrLabImageMissing) || !strings.Contains(err.Error(), "deploy/docker/build.sh") {
		t.Fatalf("Start = %v, want ErrLabImageMissing naming deploy/docker/build.sh", err)
	}
}

func TestComposeStartRefusesAFileWithoutTheLabServices(t *testing.T) {
	c, _ := labCompose(t, fakeCall{cmd: "docker-compose -f /lab/docker-compose.yml -p lab config", out: "services:\n  web:\n    image: nginx\n"})
	if err := c.Start(t.Context()); err == nil || !strings.Contains(err.Error(), `no service "etcd-1"`) {
		t.Fatalf("Start = %v, want an error naming the missing service", err)
	}
}

func TestComposeShutdownTakesDownTheLabItCreated(t *testing.T) {
	for _, tc := range []struct {
		name       string
		newVolumes bool
		down       string
	}{
		{"new volumes", true, "docker-compose -f /lab/docker-compose.yml -p lab down --remove-orphans -v"},
		{"volumes were there", false, "docker-compose -f /lab/docker-compose.yml -p lab down --remove-orphans"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := labCompose(t,
				fakeCall{cmd: "docker unpause id-ris-b"},
				fakeCall{cmd: "docker network connect --alias ris-a lab_etcd id-ris-a"},
				fakeCall{cmd: tc.down},
			)
			c.created, c.newVolumes = true, tc.newVolumes
			c.paused["ris-b"], c.cut["ris-a"] = true, true
			c.Shutdown()
			c.Shutdown() // idempotent: no second round of commands
		})
	}
}

func TestNewComposeRefusesMoreThanTwoNodes(t *testing.T) {
	sc := DefaultScenario()
	sc.Nodes = 3
	_, err := NewCompose(ComposeConfig{}, sc)
	if err == nil || !strings.Contains(err.Error(), "runs 3 nodes") || !strings.Contains(err.Error(), "without --compose") {
		t.Fatalf("NewCompose with 3 nodes = %v, want an error saying the lab runs 2", err)
	}
}

func TestProjectName(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"zccadapter", "zccadapter"},
		{"tmp.AbC123", "tmpabc123"},
		{"My Lab_2-x", "mylab_2-x"},
		{"-lead", "lead"},
	} {
		if got := projectName(tc.dir); got != tc.want {
			t.Errorf("projectName(%q) = %q, want %q", tc.dir, got, tc.want)
		}
	}
}

func TestFindComposeFileLooksUpwards(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "deploy", "drill")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := findComposeFile(deep); got != "" && strings.HasPrefix(got, root) {
		t.Fatalf("findComposeFile without a file = %q, want none under %s", got, root)
	}
	want := filepath.Join(root, "docker-compose.yml")
	if err := os.WriteFile(want, []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := findComposeFile(deep); got != want {
		t.Fatalf("findComposeFile(%s) = %q, want %q", deep, got, want)
	}
}

func TestPublishedURL(t *testing.T) {
	var ci container
	ci.NetworkSettings.Ports = map[string][]struct{ HostIp, HostPort string }{
		"8081/tcp": {{HostIp: "127.0.0.1", HostPort: "18081"}},
		"9000/tcp": {{HostIp: "0.0.0.0", HostPort: "19000"}},
		"8090/tcp": nil,
	}
	for _, tc := range []struct{ port, want string }{
		{"8081/tcp", "http://127.0.0.1:18081"},
		{"9000/tcp", "http://127.0.0.1:19000"},
	} {
		if got, err := publishedURL(ci, tc.port); err != nil || got != tc.want {
			t.Errorf("publishedURL(%s) = %q, %v; want %q", tc.port, got, err, tc.want)
		}
	}
	if _, err := publishedURL(ci, "8090/tcp"); err == nil {
		t.Error("publishedURL of an unpublished port: no error")
	}
}
