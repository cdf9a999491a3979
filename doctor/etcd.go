package doctor

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/redact"
)

// Endpoints returns the etcd endpoints a node of cfg uses: etcd.endpoints,
// or the embedded member's client address when none are configured.
func Endpoints(cfg *config.Config) []string {
	if len(cfg.Etcd.Endpoints) > 0 {
		return cfg.Etcd.Endpoints
	}
	if u, err := url.Parse(cfg.Etcd.EmbeddedClientURL); err == nil && u.Host != "" {
		return []string{u.Host}
	}
	return []string{"127.0.0.1:2379"}
}

// ClusterConfig is assemble.ClusterConfig for a tool that reads the cluster:
// cfg's endpoints (see Endpoints) and a dial timeout.
func ClusterConfig(cfg *config.Config, dialTimeout time.Duration) cluster.Config {
	cc := assemble.ClusterConfig(cfg, Endpoints(cfg))
	cc.DialTimeout = dialTimeout
	return cc
}

const fixEtcdDown = "start etcd (or bring back a majority of its members: 2 of 3) and check etcd.endpoints, etcd.tls.* and the firewall on port 2379"

func (r *run) checkEtcdReachable(ctx context.Context) Result {
	r.endpoints = Endpoints(r.cfg)
	cl, err := cluster.Connect(ctx, ClusterConfig(r.cfg, r.opts.Timeout), r.opts.Logger)
	if err != nil {
		switch {
		case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrAuthNotEnabled),
			errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrUserNotFound):
			return fail("check etcd.username and the password (ZCC_ETCD_PASSWORD or etcd.password_file), and the user's role on the /"+r.prefix()+"/ prefix",
				"etcd %v refused the credentials: %v", r.endpoints, err)
		}
		return fail(fixEtcdDown, "etcd %v: %v", r.endpoints, err)
	}
	r.cl = cl
	mode := "plain"
	if cl.Config().TLSEnabled() {
		mode = "TLS"
	}
	if len(r.cfg.Etcd.Endpoints) == 0 {
		return pass("embedded etcd at %v answers (%s); a single member: one node alone, not a pair", r.endpoints, mode)
	}
	return pass("etcd %v answers (%s)", r.endpoints, mode)
}

func (r *run) prefix() string {
	p := cmp.Or(r.cfg.Etcd.Prefix, "zccadapter")
	c := cmp.Or(r.cfg.Etcd.Cluster, "default")
	return p + "/" + c
}

// checkEtcdQuorum lists the members (serializably, so a minority still
// answers) and asks each for its status. It uses a bare client: a cluster
// without quorum fails cluster.Connect's linearizable probe, but its
// surviving members still tell what they see.
func (r *run) checkEtcdQuorum(ctx context.Context) Result {
	cc, err := ClusterConfig(r.cfg, r.opts.Timeout).ClientConfig()
	if err != nil {
		return fail("fix etcd.tls.ca_file, cert_file and key_file", "%v", err)
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return fail(fixEtcdDown, "etcd %v: %v", cc.Endpoints, err)
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	ml, err := cli.MemberList(lctx, clientv3.WithSerializable())
	cancel()
	if err != nil {
		return fail(fixEtcdDown, "no etcd endpoint of %v answers: %v", cc.Endpoints, err)
	}
	total := len(ml.Members)
	names := map[uint64]string{}
	for _, m := range ml.Members {
		names[m.ID] = m.Name
		if m.Name == "" {
			names[m.ID] = fmt.Sprintf("%x", m.ID)
		}
	}
	// Ask every address known for the members — advertised client URLs and
	// the configured endpoints (an advertised URL may not be reachable from
	// here) — concurrently, and match the answers by member id.
	seen := map[string]bool{}
	var addrs []string
	for _, a := range cc.Endpoints {
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	for _, m := range ml.Members {
		for _, a := range m.ClientURLs {
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	type answer struct {
		st  *clientv3.StatusResponse
		err error
	}
	answers := make([]answer, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
			defer cancel()
			answers[i].st, answers[i].err = cli.Status(sctx, a)
		})
	}
	wg.Wait()
	up := map[uint64]bool{}
	var alarms []string
	var leader, term uint64
	for _, a := range answers {
		if a.err != nil || a.st.Header == nil {
			continue
		}
		id := a.st.Header.MemberId
		if up[id] {
			continue
		}
		up[id] = true
		if a.st.Leader != 0 && a.st.RaftTerm >= term {
			leader, term = a.st.Leader, a.st.RaftTerm
		}
		for _, e := range a.st.Errors {
			alarms = append(alarms, nameOr(names, id)+": "+e)
		}
	}
	var answered, down []string
	for _, m := range ml.Members {
		switch {
		case up[m.ID]:
			answered = append(answered, names[m.ID])
		case len(m.ClientURLs) == 0:
			down = append(down, names[m.ID]+" (not started)")
		default:
			down = append(down, names[m.ID])
		}
	}
	sort.Strings(answered)
	sort.Strings(down)
	summary := fmt.Sprintf("%d of %d members answer", len(answered), total)
	if len(down) > 0 {
		summary += "; down: " + strings.Join(down, ", ")
	}
	switch {
	case len(answered) <= total/2 || leader == 0:
		return fail("bring back a majority of the etcd members ("+fmt.Sprint(total/2+1)+" of "+fmt.Sprint(total)+"); a node without quorum fences itself and no leader can be elected",
			"no quorum: %s, leader %s", summary, nameOr(names, leader))
	case len(alarms) > 0:
		return fail("clear the alarm: compact and defragment etcd (etcdctl compact, defrag, alarm disarm) or give it more disk",
			"%s, alarms: %s", summary, strings.Join(alarms, "; "))
	case len(down) > 0:
		return pass("quorum held: %s, leader %s, raft term %d (one more loss stops the cluster)", summary, nameOr(names, leader), term)
	}
	return pass("quorum held: %s, leader %s, raft term %d", summary, nameOr(names, leader), term)
}

func nameOr(names map[uint64]string, id uint64) string {
	if id == 0 {
		return "none"
	}
	if n, ok := names[id]; ok {
		return n
	}
	return fmt.Sprintf("%x", id)
}

// checkEtcdLatency times a put and a delete of a key under the cluster's
// prefix, bound to a short lease so it cannot outlive the check.
func (r *run) checkEtcdLatency(ctx context.Context) Result {
	if r.cl == nil {
		return skip("etcd unreachable (see %s)", CheckEtcdReachable)
	}
	cli := r.cl.Client()
	ctx, cancel := context.WithTimeout(ctx, 3*r.opts.Timeout)
	defer cancel()
	lease, err := cli.Grant(ctx, 10)
	if err != nil {
		return fail(fixEtcdDown, "grant a lease: %v", err)
	}
	defer cli.Revoke(context.WithoutCancel(ctx), lease.ID) //nolint:errcheck // best effort; it expires in 10s anyway
	key := r.cl.Keys().Root() + "doctor/" + r.cfg.Node
	start := time.Now()
	if _, err := cli.Put(ctx, key, "doctor write-latency probe", clientv3.WithLease(lease.ID)); err != nil {
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			return fail("grant etcd.username's role readwrite on the /"+r.prefix()+"/ prefix", "put %s: %v", key, err)
		}
		return fail(fixEtcdDown, "put %s: %v", key, err)
	}
	put := time.Since(start)
	start = time.Now()
	if _, err := cli.Delete(ctx, key); err != nil {
		return fail(fixEtcdDown, "delete %s: %v", key, err)
	}
	del := time.Since(start)
	worst := max(put, del)
	if worst > r.opts.MaxWriteLatency {
		return fail("etcd writes are slow: put its data directory on an SSD, keep the members on a low-latency network, and check etcd's disk and CPU",
			"put %s, delete %s: above the %s limit", put.Round(time.Microsecond), del.Round(time.Microsecond), r.opts.MaxWriteLatency)
	}
	return pass("put %s, delete %s (limit %s)", put.Round(time.Microsecond), del.Round(time.Microsecond), r.opts.MaxWriteLatency)
}

// checkEtcdClock compares the local clock with the Date header of etcd's
// HTTP /version, on the first endpoint that answers.
func (r *run) checkEtcdClock(ctx context.Context) Result {
	cc, err := ClusterConfig(r.cfg, r.opts.Timeout).ClientConfig()
	if err != nil {
		return skip("etcd TLS files unusable (see %s)", CheckEtcdQuorum)
	}
	hc := r.opts.HTTPClient
	if cc.TLS != nil {
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: cc.TLS.Clone(), DisableKeepAlives: true,
			TLSHandshakeTimeout: r.opts.Timeout}}
	}
	var errs []string
	for _, ep := range cc.Endpoints {
		s, err := r.etcdDate(ctx, hc, ep, cc.TLS)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return skewResult(s, r.opts.MaxClockSkew, "etcd at "+ep, fixClock)
	}
	return skip("no etcd endpoint serves HTTP /version with a Date header (%s); clock against etcd not measured", strings.Join(errs, "; "))
}

func (r *run) etcdDate(ctx context.Context, hc *http.Client, ep string, tc *tls.Config) (dateSample, error) {
	base := ep
	if !strings.Contains(ep, "://") {
		base = "http://" + ep
		if tc != nil {
			base = "https://" + ep
		}
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/version", nil)
	if err != nil {
		return dateSample{}, fmt.Errorf("%s: %w", ep, err)
	}
	sent := r.opts.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return dateSample{}, fmt.Errorf("%s: %w", ep, redact.Error(err))
	}
	resp.Body.Close()
	recv := r.opts.Now()
	if resp.StatusCode != http.StatusOK {
		return dateSample{}, fmt.Errorf("%s: HTTP %d", ep, resp.StatusCode)
	}
	s, ok := sampleDate(resp, sent, recv)
	if !ok {
		return dateSample{}, fmt.Errorf("%s: no Date header", ep)
	}
	return s, nil
}

// checkSharedSubscription lists the live members and fails when another
// one holds this node's subscription (or any two share one).
func (r *run) checkSharedSubscription(ctx context.Context) Result {
	if r.cl == nil {
		return skip("etcd unreachable (see %s)", CheckEtcdReachable)
	}
	mctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	members, err := r.cl.Members(mctx)
	cancel()
	if err != nil {
		return fail(fixEtcdDown, "%v", err)
	}
	r.members = members
	mine := subscriptionID(r.cfg.Zoom.SubscriptionURL)
	var others []string
	for _, m := range members {
		if m.Node != r.cfg.Node && m.Subscription == mine {
			others = append(others, m.Node)
		}
	}
	sort.Strings(others)
	if len(others) > 0 {
		return fail("give each node its own event subscription (Marketplace → your app → Event Subscriptions → add one with the same events) and set it in that node's zoom.subscription_url",
			"node %s's subscription %s is also used by live node(s) %s", r.cfg.Node, mine, strings.Join(others, ", "))
	}
	if shared := SharedSubscriptions(members); len(shared) > 0 {
		return fail("give each node its own event subscription and set it in that node's zoom.subscription_url",
			"%s", strings.Join(shared, "; "))
	}
	var list []string
	for _, m := range members {
		list = append(list, m.Node+"="+m.Subscription)
	}
	sort.Strings(list)
	if len(list) == 0 {
		return pass("no live member; nothing else uses subscription %s", mine)
	}
	return pass("subscription %s is this node's alone; live members: %s", mine, strings.Join(list, ", "))
}

// SharedSubscriptions describes each subscription held by two or more of
// members, e.g. "nodes a, b share subscription sub-a"; nil when none.
func SharedSubscriptions(members []protocol.Member) []string {
	by := map[string][]string{}
	for _, m := range members {
		if m.Subscription != "" {
			by[m.Subscription] = append(by[m.Subscription], m.Node)
		}
	}
	var out []string
	for sub, nodes := range by {
		if len(nodes) > 1 {
			sort.Strings(nodes)
			out = append(out, fmt.Sprintf("nodes %s share subscription %s", strings.Join(nodes, ", "), sub))
		}
	}
	sort.Strings(out)
	return out
}

// fixEtcdHistory is what to do when etcd keeps all of its history.
const fixEtcdHistory = "run every etcd member with --auto-compaction-mode=periodic --auto-compaction-retention=5m " +
	"(`zccadapter etcd`: --auto-compaction-retention=5m, its default; README, etcd), then compact and defragment once (etcdctl compact, defrag)"

// checkEtcdHistory fails when etcd has never compacted its history and the
// history is long (Options.MaxUncompactedRevisions): every dedup and state
// write of the leader stays in etcd's database until it is compacted, and
// at etcd's space quota every write is refused. Whether revision 1 can
// still be read tells whether anything was ever compacted
// (mvcc: required revision has been compacted); the database sizes come
// from the maintenance Status of one endpoint.
func (r *run) checkEtcdHistory(ctx context.Context) Result {
	if r.cl == nil {
		return skip("etcd unreachable (see %s)", CheckEtcdReachable)
	}
	cli := r.cl.Client()
	ctx, cancel := context.WithTimeout(ctx, 2*r.opts.Timeout)
	defer cancel()
	root := r.cl.Keys().Root()
	head, err := cli.Get(ctx, root, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return fail(fixEtcdDown, "read %s: %v", root, err)
	}
	rev := head.Header.Revision
	size := ""
	for _, ep := range cli.Endpoints() {
		if st, err := cli.Status(ctx, ep); err == nil {
			size = fmt.Sprintf(", database %.1f MB (%.1f MB in use)", float64(st.DbSize)/(1<<20), float64(st.DbSizeInUse)/(1<<20))
			break
		}
	}
	_, err = cli.Get(ctx, root, clientv3.WithRev(1), clientv3.WithCountOnly())
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return pass("history compacted: revision %d%s", rev, size)
	case err != nil:
		return fail(fixEtcdDown, "read revision 1: %v", err)
	case rev > r.opts.MaxUncompactedRevisions:
		return fail(fixEtcdHistory, "etcd has kept all %d revisions of its history%s: it grows with every event until its quota refuses writes", rev, size)
	}
	return pass("nothing compacted yet at revision %d%s (a young cluster; compaction keeps the last 5 minutes when configured)", rev, size)
}
