package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// enforcePending turns the pending rules into failing ones. A rule is
// pending while the code is being moved towards it: its violations are
// reported in the test log and do not fail. The layout is finished (adapter
// sees the cluster only through cluster/protocol; adapter/assemble wires
// them), so it is on, and stays on.
const enforcePending = true

// Package sets used by the rules. Patterns are module-relative ("events";
// "sim/..." for sim and everything under it; "..." for the whole module) or,
// when the first element has a dot, import paths outside the module
// ("go.etcd.io/...").
var (
	// anywhere are the leaves every package may import, events and auth
	// included.
	anywhere = []string{"redact", "wait"}
	// testSupport is never part of a node: simulators, drills, benchmarks,
	// the fault proxy and test helpers.
	testSupport = []string{"sim/...", "bench/...", "deploy/...", "faultnet/...", "internal/...", "auth/authtest"}
	// notProduction are the packages that are not part of a running node:
	// test support and the command (which may import anything).
	notProduction = append([]string{"cmd/..."}, testSupport...)
)

// rule is one forbidden arrow.
type rule struct {
	// name identifies the rule in failures.
	name string
	// from selects the importing packages of this module; except removes
	// some of them again.
	from, except []string
	// only, when not nil, lists the packages of this module that from may
	// import (itself always allowed); any other package of the module is
	// forbidden.
	only []string
	// never lists forbidden imports, of this module or not.
	never []string
	// transitive checks every dependency (go list's Deps: what the package
	// needs to build, test files excluded) instead of the direct imports.
	transitive bool
	// pending rules fail only with enforcePending.
	pending bool
	// reason is why the arrow is forbidden.
	reason string
}

// rules are the arrows of docs/ARCHITECTURE.md that a build can break.
var rules = []rule{
	{
		name:   "events-auth-bottom",
		from:   []string{"events", "auth"},
		only:   append([]string{"events", "auth"}, anywhere...),
		never:  []string{"go.etcd.io/..."},
		reason: "events (Zoom's vocabulary, the subscription client) and auth (tokens) are the bottom of the stack: they know nothing of etcd, the node, the recorder or the configuration; besides each other they import only the leaves redact and wait",
	},
	{
		name:   "leaves",
		from:   []string{"rcapi", "config", "redact", "wait"},
		only:   anywhere,
		reason: "a leaf sits below every package that imports it, so it imports nothing of this module but the leaves redact and wait",
	},
	{
		name:   "protocol-contract",
		from:   []string{"cluster/protocol"},
		only:   append([]string{"events", "auth"}, anywhere...),
		reason: "cluster/protocol is the contract between adapter and cluster (records, errors, interfaces): it may name events' types and auth's token store interface, and use the leaves redact and wait, nothing else of this module",
	},
	{
		name:       "protocol-etcd-free",
		from:       []string{"cluster/protocol"},
		never:      []string{"go.etcd.io/..."},
		transitive: true,
		reason:     "cluster/protocol is what adapter sees of the cluster; it builds without etcd so that adapter does",
	},
	{
		name:   "cluster-below-node",
		from:   []string{"cluster/..."},
		never:  []string{"adapter/...", "doctor/...", "cmd/...", "deploy/...", "sim/...", "bench/...", "faultnet/...", "internal/..."},
		reason: "arrows run one way, cmd → deploy/doctor → adapter → cluster → events/auth: cluster never reaches up to the node, the tools or test support",
	},
	{
		name:       "adapter-etcd-free",
		from:       []string{"adapter"},
		never:      []string{"cluster", "go.etcd.io/..."},
		transitive: true,
		pending:    true,
		reason:     "adapter reaches the cluster only through cluster/protocol, never through package cluster or the etcd client: cluster's Term.CommitBatch builds every etcd txn (adapter/assemble is the one place that wires a cluster.Cluster to a node)",
	},
	{
		name:   "assemble-wires-the-node",
		from:   []string{"adapter/assemble"},
		only:   append([]string{"adapter", "cluster", "cluster/protocol", "config", "events", "auth", "rcapi"}, anywhere...),
		reason: "adapter/assemble is a production package that wires one node from its configuration: the node (adapter), the etcd cluster (cluster), the subscription (events), the token source (auth), the recorder (rcapi) and the leaves; it is the only package of the node's side that imports both adapter and cluster, and it reaches up to no tool",
	},
	{
		name:   "node-below-tools",
		from:   []string{"adapter/..."},
		never:  []string{"doctor/...", "cmd/..."},
		reason: "the node does not reach up to the tools that inspect or run it",
	},
	{
		name:   "sim-speaks-the-wire",
		from:   []string{"sim/..."},
		only:   append([]string{"sim/...", "events", "auth", "rcapi"}, anywhere...),
		reason: "the simulators stand in for Zoom and the recorder: they speak the wire vocabulary (events, auth, rcapi), never the node's or the cluster's internals",
	},
	{
		name:       "production-without-test-support",
		from:       []string{"..."},
		except:     notProduction,
		never:      testSupport,
		transitive: true,
		reason:     "simulators, drills, benchmarks, the fault proxy and test helpers are never part of a node: no production package depends on them (test files excluded)",
	},
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pkg is one package as go list reports it.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Module     *struct {
		Path string
		Main bool
	}
}

// graph is the module's packages and everything they depend on.
type graph struct {
	module string
	pkgs   map[string]*pkg
	ours   []string // the module's packages, sorted
}

// load runs `go list -deps -json ./...` at the module root. It skips the
// test when no go binary is on PATH.
func load(t *testing.T) *graph {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go binary is not on PATH (%v): the import arrows cannot be listed here", err)
	}
	gomod, err := run(t, goBin, "", "env", "GOMOD")
	if err != nil {
		t.Fatal(err)
	}
	gomod = strings.TrimSpace(gomod)
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatalf("go env GOMOD = %q: not inside the module", gomod)
	}
	root := filepath.Dir(gomod)
	out, err := run(t, goBin, root, "list", "-deps", "-json=ImportPath,Imports,Deps,Module", "./...")
	if err != nil {
		t.Fatal(err)
	}
	g := &graph{pkgs: map[string]*pkg{}}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		p := new(pkg)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		g.pkgs[p.ImportPath] = p
		if p.Module != nil && p.Module.Main {
			g.module = p.Module.Path
			g.ours = append(g.ours, p.ImportPath)
		}
	}
	if g.module == "" {
		t.Fatalf("go list in %s reported no package of the main module", root)
	}
	slices.Sort(g.ours)
	return g
}

// run runs the go command in dir and returns its standard output.
func run(t *testing.T, goBin, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), goBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// full turns a pattern into a full one: module-relative patterns get the
// module path in front.
func (g *graph) full(pattern string) string {
	if pattern == "..." {
		return g.module + "/..."
	}
	first, _, _ := strings.Cut(pattern, "/")
	if strings.Contains(first, ".") {
		return pattern
	}
	return g.module + "/" + pattern
}

// matchAny reports whether path matches one of patterns (module-relative or
// full).
func (g *graph) matchAny(path string, patterns []string) bool {
	for _, p := range patterns {
		if match(g.full(p), path) {
			return true
		}
	}
	return false
}

// match reports whether path matches pattern: the same path, or, for a
// pattern ending in "/...", the path before it or any path under it.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// short is path without the module prefix, for messages.
func (g *graph) short(path string) string {
	if rel, ok := strings.CutPrefix(path, g.module+"/"); ok {
		return rel
	}
	return path
}

// violation is one forbidden import.
type violation struct {
	rule     *rule
	from, to string
	chain    string // set for transitive rules
}

func (v violation) String() string {
	what := "imports"
	if v.rule.transitive {
		what = "depends on"
	}
	s := fmt.Sprintf("rule %s: %s %s %s", v.rule.name, v.from, what, v.to)
	if v.chain != "" {
		s += " (" + v.chain + ")"
	}
	return s + "\n\twhy: " + v.rule.reason
}

// check returns how many packages r selects and every violation of r in g.
// A direct rule reports each forbidden import. A transitive rule reports
// each place where the dependency graph first crosses into a forbidden
// package, with the shortest import chain that gets there (what lies
// beyond, say etcd's own packages behind package cluster, is not repeated).
func (g *graph) check(r *rule) (selected int, vs []violation) {
	for _, from := range g.ours {
		if !g.matchAny(from, r.from) || g.matchAny(from, r.except) {
			continue
		}
		selected++
		bad := func(to string) bool {
			ours := match(g.module+"/...", to)
			return g.matchAny(to, r.never) || (r.only != nil && ours && to != from && !g.matchAny(to, r.only))
		}
		if !r.transitive {
			for _, to := range g.pkgs[from].Imports {
				if bad(to) {
					vs = append(vs, violation{rule: r, from: g.short(from), to: g.short(to)})
				}
			}
			continue
		}
		// Breadth first over the imports, not entering forbidden packages.
		prev := map[string]string{from: ""}
		queue := []string{from}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			p := g.pkgs[cur]
			if p == nil {
				continue
			}
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; seen {
					continue
				}
				prev[imp] = cur
				if !bad(imp) {
					queue = append(queue, imp)
					continue
				}
				var chain []string
				for at := imp; at != ""; at = prev[at] {
					chain = append(chain, g.short(at))
				}
				slices.Reverse(chain)
				vs = append(vs, violation{rule: r, from: g.short(from), to: g.short(imp), chain: strings.Join(chain, " → ")})
			}
		}
	}
	return selected, vs
}

// TestImportArrows fails on every import across a forbidden arrow of
// docs/ARCHITECTURE.md.
func TestImportArrows(t *testing.T) {
	g := load(t)
	for i := range rules {
		r := &rules[i]
		selected, vs := g.check(r)
		if selected == 0 {
			t.Logf("rule %s selects no package of this module (yet): %v", r.name, r.from)
		}
		for _, v := range vs {
			switch {
			case !r.pending || enforcePending:
				t.Errorf("%s", v)
			default:
				t.Logf("PENDING, not enforced until enforcePending is on: %s", v)
			}
		}
		if r.pending && !enforcePending && len(vs) == 0 && selected > 0 {
			t.Logf("pending rule %s holds now: switch enforcePending on", r.name)
		}
	}
}

// TestMatch pins the pattern language of the rules.
func TestMatch(t *testing.T) {
	g := &graph{module: "example.com/m"}
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"cluster", "example.com/m/cluster", true},
		{"cluster", "example.com/m/cluster/protocol", false},
		{"cluster/...", "example.com/m/cluster", true},
		{"cluster/...", "example.com/m/cluster/protocol", true},
		{"cluster/...", "example.com/m/clusterx", false},
		{"...", "example.com/m/adapter/assemble", true},
		{"...", "example.com/other", false},
		{"go.etcd.io/...", "go.etcd.io/etcd/client/v3", true},
		{"go.etcd.io/...", "example.com/m/go.etcd.io", false},
		{"auth/authtest", "example.com/m/auth", false},
	} {
		if got := g.matchAny(c.path, []string{c.pattern}); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
