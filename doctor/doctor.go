package doctor

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
)

// Outcome of a check.
type Outcome string

// Outcomes.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	// Skip: the check could not run (a check it depends on failed) or does
	// not apply; never a failure by itself.
	Skip Outcome = "skip"
)

// Check ids, stable for scripts reading --json.
const (
	CheckZoomToken     = "zoom.token"
	CheckZoomScopes    = "zoom.scopes"
	CheckZoomClock     = "zoom.clock_skew"
	CheckSubscription  = "zoom.subscription"
	CheckSharedSub     = "cluster.subscription_unique"
	CheckRecorder      = "recorder"
	CheckEtcdReachable = "etcd.reachable"
	CheckEtcdQuorum    = "etcd.quorum"
	CheckEtcdLatency   = "etcd.write_latency"
	CheckEtcdClock     = "etcd.clock_skew"
	CheckEtcdHistory   = "etcd.compaction"
	CheckQuarantine    = "cluster.quarantine"
)

const (
	defaultTokenURL      = "https://zoom.us/oauth/token"
	defaultTimeout       = 5 * time.Second
	defaultMaxSkew       = time.Second
	defaultMaxWriteDelay = 250 * time.Millisecond
	// defaultMaxUncompacted: with 5 minutes of retention a pair writes far
	// fewer revisions than this between compactions (about 60,000 at 200
	// events/s); without compaction it gets there in under an hour at that
	// rate, hours before etcd's 2 GiB quota.
	defaultMaxUncompacted = 500_000
)

// Result is one check's outcome.
type Result struct {
	// Check is the check's id, e.g. "zoom.token".
	Check string `json:"check"`
	// Outcome is pass, fail or skip.
	Outcome Outcome `json:"outcome"`
	// Detail says what was found, in one line. Never a secret.
	Detail string `json:"detail"`
	// Fix is what to do about a failure, in one line; empty otherwise.
	Fix string `json:"fix,omitempty"`
	// Seconds is how long the check took.
	Seconds float64 `json:"seconds"`
}

// Report is the outcome of Run.
type Report struct {
	Node    string    `json:"node"`
	Cluster string    `json:"cluster"`
	At      time.Time `json:"at"`
	// OK is true when no check failed.
	OK      bool     `json:"ok"`
	Results []Result `json:"results"`
}

// Result returns the result of the check with the given id, or a zero
// Result.
func (r *Report) Result(check string) Result {
	for _, res := range r.Results {
		if res.Check == check {
			return res
		}
	}
	return Result{}
}

// Options tune Run. The zero value is usable.
type Options struct {
	// Timeout bounds each network step of a check. Default 5s.
	Timeout time.Duration
	// MaxClockSkew is the largest clock offset, against etcd and against
	// Zoom, that passes. Default 1s. Offsets are measured with one-second
	// resolution (HTTP Date headers): a check fails only when the offset
	// is certainly above MaxClockSkew.
	MaxClockSkew time.Duration
	// MaxWriteLatency is the slowest etcd put that passes. Default 250ms:
	// a leader commits a batch per few milliseconds with a 2s timeout.
	MaxWriteLatency time.Duration
	// MaxUncompactedRevisions: etcd.compaction fails when this many
	// revisions are in etcd's history and none was ever compacted away.
	// Default 500,000.
	MaxUncompactedRevisions int64
	// ProbeRunning probes this node's subscription even while the node
	// runs with its socket up. Dangerous: Zoom may close the node's socket
	// for the probe's, and events sent meanwhile reach only the other node.
	// Default false: the running node's /status answers for it.
	ProbeRunning bool
	// HTTPClient makes the HTTP requests (Zoom's token endpoint, etcd's
	// /version, the subscription handshake) and is the base of the nodes'
	// client (see NodeClient). It must not set Timeout (contexts bound each
	// request). Default: a client of its own.
	HTTPClient *http.Client
	// NodeClient fetches nodes' /status. Default: NewNodeClient of cfg's
	// http_tls_* and http_bearer_token settings over HTTPClient; when
	// http_tls_ca_file cannot be used, nodes' /status is not read.
	NodeClient *http.Client
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = defaultMaxSkew
	}
	if o.MaxWriteLatency <= 0 {
		o.MaxWriteLatency = defaultMaxWriteDelay
	}
	if o.MaxUncompactedRevisions <= 0 {
		o.MaxUncompactedRevisions = defaultMaxUncompacted
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			TLSHandshakeTimeout: o.Timeout, DisableKeepAlives: true}}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// run is the state of one Run.
type run struct {
	cfg  *config.Config
	opts Options
	rep  *Report

	// Filled as checks pass, read by later checks.
	token     string      // from zoom.token
	scopes    []string    // from zoom.token
	zoomDate  *dateSample // from zoom.token
	cl        *cluster.Cluster
	endpoints []string
	members   []protocol.Member // nil when unknown
}

// Run checks cfg's node and its cluster and returns every check's result
// in a fixed order. It blocks until every check has ended; ctx bounds all of
// it (a check cut short by ctx fails). It never returns a secret. Safe to
// call while the node runs (see the package doc for what it touches).
func Run(ctx context.Context, cfg *config.Config, opts Options) *Report {
	opts = opts.withDefaults()
	if opts.NodeClient == nil {
		nc := NodeClientConfigOf(cfg)
		nc.Base = opts.HTTPClient
		opts.NodeClient, _ = NewNodeClient(nc) // nil on error: nodes' /status unread
	}
	r := &run{cfg: cfg, opts: opts, rep: &Report{Node: cfg.Node, Cluster: cfg.Etcd.Cluster, At: opts.Now().UTC()}}
	r.rep.Cluster = cmp.Or(r.rep.Cluster, "default")
	defer func() {
		if r.cl != nil {
			r.cl.Close()
		}
	}()
	r.check(ctx, CheckZoomToken, r.checkToken)
	r.check(ctx, CheckZoomScopes, r.checkScopes)
	r.check(ctx, CheckZoomClock, r.checkZoomClock)
	r.check(ctx, CheckEtcdReachable, r.checkEtcdReachable)
	r.check(ctx, CheckEtcdQuorum, r.checkEtcdQuorum)
	r.check(ctx, CheckEtcdLatency, r.checkEtcdLatency)
	r.check(ctx, CheckEtcdClock, r.checkEtcdClock)
	r.check(ctx, CheckEtcdHistory, r.checkEtcdHistory)
	r.check(ctx, CheckQuarantine, r.checkQuarantine)
	r.check(ctx, CheckSharedSub, r.checkSharedSubscription)
	r.check(ctx, CheckSubscription, r.checkSubscription)
	r.check(ctx, CheckRecorder, r.checkRecorder)
	r.rep.OK = true
	for _, res := range r.rep.Results {
		if res.Outcome == Fail {
			r.rep.OK = false
		}
	}
	return r.rep
}

// check runs one check and records its result.
func (r *run) check(ctx context.Context, id string, f func(context.Context) Result) {
	start := time.Now()
	res := f(ctx)
	res.Check = id
	res.Seconds = time.Since(start).Seconds()
	r.opts.Logger.Debug().Str("check", id).Str("outcome", string(res.Outcome)).Str("detail", res.Detail).Msg("doctor check")
	r.rep.Results = append(r.rep.Results, res)
}

func pass(format string, args ...any) Result {
	return Result{Outcome: Pass, Detail: fmt.Sprintf(format, args...)}
}

func skip(format string, args ...any) Result {
	return Result{Outcome: Skip, Detail: fmt.Sprintf(format, args...)}
}

func fail(fix, format string, args ...any) Result {
	return Result{Outcome: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

// subscriptionID returns the subscriptionId of a subscription URL, or "".
func subscriptionID(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get("subscriptionId")
}
