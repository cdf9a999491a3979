package doctor

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
)

// ClusterView is a snapshot of a running cluster: what `zccadapter status`
// prints.
type ClusterView struct {
	Cluster string    `json:"cluster"`
	At      time.Time `json:"at"`
	// Leader is the leader's node id from the election; "" when none.
	Leader string `json:"leader"`
	// Epoch is the leader's epoch (its election key's create revision).
	Epoch int64 `json:"epoch"`
	// Nodes are the live members, by node id.
	Nodes []NodeView `json:"nodes"`
	// Recorder is the recorder's answer to this command.
	Recorder RecorderProbe `json:"recorder"`
	// Problems lists what needs an operator, one line each; empty when
	// all is well.
	Problems []string `json:"problems"`
}

// NodeView is one live member and its /status.
type NodeView struct {
	Node         string    `json:"node"`
	Address      string    `json:"address"`
	Subscription string    `json:"subscription"`
	Version      string    `json:"version"`
	Since        time.Time `json:"member_since"`
	// Leader is true for the node the election names.
	Leader bool `json:"leader"`
	// Status is the node's /status; nil when it did not answer.
	Status *adapter.NodeStatus `json:"status,omitempty"`
	// LastEventAgeSeconds is the age of the newest event's time at the
	// snapshot; nil before any event or without a status.
	LastEventAgeSeconds *float64 `json:"last_event_age_seconds,omitempty"`
	// Error says why /status did not answer.
	Error string `json:"error,omitempty"`
}

// SurveyOptions tune Survey. The zero value is usable.
type SurveyOptions struct {
	// Timeout bounds each request (etcd reads, each /status, the
	// recorder). Default 5s.
	Timeout time.Duration
	// HTTPClient is the base of the client that fetches the nodes' /status
	// (see NodeClient); it must not set Timeout. Default: a client of its
	// own.
	HTTPClient *http.Client
	// NodeClient fetches the nodes' /status. Default: NewNodeClient of
	// cfg's http_tls_* and http_bearer_token settings over HTTPClient.
	NodeClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Survey reads the leader and the membership from etcd, each member's
// /status (its membership Address) and the recorder's open recordings, all
// concurrently, and lists the problems it sees: two live members on one
// subscription, no leader, a node that does not answer or whose socket is
// down, an unreachable recorder. ctx bounds it. It returns an error only when
// etcd cannot be read, or http_tls_ca_file cannot be used.
func Survey(ctx context.Context, cl *cluster.Cluster, cfg *config.Config, opts SurveyOptions) (*ClusterView, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NodeClient == nil {
		nc := NodeClientConfigOf(cfg)
		nc.Base = opts.HTTPClient
		hc, err := NewNodeClient(nc)
		if err != nil {
			return nil, err
		}
		opts.NodeClient = hc
	}
	ectx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	leader, epoch, err := cl.Leader(ectx)
	if err != nil {
		return nil, err
	}
	members, err := cl.Members(ectx)
	if err != nil {
		return nil, err
	}
	v := &ClusterView{Cluster: cl.Config().Cluster, Leader: leader, Epoch: epoch, Problems: []string{}}
	sort.Slice(members, func(i, j int) bool { return members[i].Node < members[j].Node })
	v.Nodes = make([]NodeView, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		v.Nodes[i] = NodeView{Node: m.Node, Address: m.Address, Subscription: m.Subscription, Version: m.Version,
			Since: m.Since, Leader: m.Node == leader}
		wg.Go(func() {
			st, version, err := fetchStatus(ctx, opts.NodeClient, m.Address, opts.Timeout)
			if err != nil {
				v.Nodes[i].Error = err.Error()
				return
			}
			v.Nodes[i].Status = &st
			if version != "" {
				v.Nodes[i].Version = version
			}
		})
	}
	wg.Go(func() { v.Recorder = ProbeRecorder(ctx, cfg.Recorder, opts.Timeout) })
	wg.Wait()
	now := opts.Now()
	v.At = now.UTC()
	for i := range v.Nodes {
		if s := v.Nodes[i].Status; s != nil && !s.LastEventAt.IsZero() {
			age := max(0, now.Sub(s.LastEventAt).Seconds())
			v.Nodes[i].LastEventAgeSeconds = &age
		}
	}
	v.Problems = append(v.Problems, SharedSubscriptions(members)...)
	for i := range v.Problems {
		v.Problems[i] += ": each node needs its own subscription (a second socket may displace the first, and its node then misses events)"
	}
	if leader == "" {
		v.Problems = append(v.Problems, "no leader: no node drives the recorder")
	} else if !hasNode(members, leader) {
		v.Problems = append(v.Problems, fmt.Sprintf("leader %s has no membership record", leader))
	}
	for _, n := range v.Nodes {
		switch {
		case n.Status == nil:
			v.Problems = append(v.Problems, fmt.Sprintf("node %s: /status at %s does not answer: %s", n.Node, n.Address, n.Error))
		case !n.Status.SocketUp:
			v.Problems = append(v.Problems, fmt.Sprintf("node %s: subscription socket down (run `zccadapter doctor` on it)", n.Node))
		}
	}
	if len(members) < 2 {
		v.Problems = append(v.Problems, fmt.Sprintf("%d live member(s): no redundancy", len(members)))
	}
	if !v.Recorder.Reachable {
		v.Problems = append(v.Problems, fmt.Sprintf("recorder %s unreachable from here: %s", v.Recorder.URL, v.Recorder.Error))
	}
	return v, nil
}

func hasNode(ms []protocol.Member, node string) bool {
	for _, m := range ms {
		if m.Node == node {
			return true
		}
	}
	return false
}

// WriteTable prints v for people: a header with the leader and epoch, one
// row per node, the recorder, and the problems.
func (v *ClusterView) WriteTable(w io.Writer) error {
	leader := cmp.Or(v.Leader, "(none)")
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %s   leader %s   epoch %d   at %s\n\n", v.Cluster, leader, v.Epoch, v.At.Format(time.RFC3339))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tVERSION\tADDRESS\tSUBSCRIPTION\tSOCKET\tLAST EVENT\tPENDING\tHANDED OFF\tAPPLIED\tTERMS")
	for _, n := range v.Nodes {
		name := n.Node
		if n.Leader {
			name += " *"
		}
		if n.Status == nil {
			fmt.Fprintf(tw, "%s\t?\t%s\t%s\t%s\t?\t?\t?\t?\t?\t?\n", name, dash(n.Version), dash(n.Address), dash(n.Subscription))
			continue
		}
		s := n.Status
		sock := "down"
		if s.SocketUp {
			sock = "up"
		}
		age := "-"
		if n.LastEventAgeSeconds != nil {
			age = fmt.Sprintf("%.1fs ago", *n.LastEventAgeSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", name, s.Role, dash(n.Version), dash(n.Address),
			dash(n.Subscription), sock, age, s.Pending, s.HandedOff, s.Applied, s.Terms)
	}
	tw.Flush()
	r := v.Recorder
	if r.Reachable {
		fmt.Fprintf(&b, "\nrecorder %s   reachable, %d open recordings, %.0fms\n", r.URL, r.Open, r.Seconds*1000)
	} else {
		fmt.Fprintf(&b, "\nrecorder %s   UNREACHABLE: %s\n", r.URL, r.Error)
	}
	if len(v.Problems) == 0 {
		b.WriteString("\nno problems\n")
	} else {
		b.WriteString("\nPROBLEMS\n")
		for _, p := range v.Problems {
			b.WriteString("  - " + p + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
