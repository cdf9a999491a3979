package adapter

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zccadapter/zccadapter/events"
)

// MetricsOptions adds sources beyond the node itself to its metrics.
type MetricsOptions struct {
	// TokenFetches, when set, reports the token-endpoint requests this node
	// has made (auth.SharedSource.Fetches), exported as
	// zccadapter_token_fetches_total. It is called at scrape time and may
	// wait while this node refreshes the shared token (the refresh is
	// bounded by its own context).
	TokenFetches func() int64
}

// Metric names, all prefixed zccadapter_. Counters count from the start of
// the process and end in _total; times are in seconds.
var (
	descInfo = prometheus.NewDesc("zccadapter_node_info",
		"Always 1; the node's version and subscription id as labels.", []string{"node", "version", "subscription"}, nil)
	descRole = prometheus.NewDesc("zccadapter_role",
		"1 for the node's current role (starting, standby, promoting, leader, stopping), 0 for the others.", []string{"node", "role"}, nil)
	descEpoch = prometheus.NewDesc("zccadapter_epoch",
		"The epoch (fencing token) of the node's current term; 0 when it does not lead.", []string{"node"}, nil)
	descLeaderSince = prometheus.NewDesc("zccadapter_leader_since_timestamp_seconds",
		"When the node went live as leader (Unix time); absent when it does not lead.", []string{"node"}, nil)
	descTerms = prometheus.NewDesc("zccadapter_terms_total",
		"Terms this node has won (each is a failover to it, or the first election).", []string{"node"}, nil)
	descSocketUp = prometheus.NewDesc("zccadapter_socket_up",
		"1 while the node's event subscription socket is connected.", []string{"node"}, nil)
	descDegraded = prometheus.NewDesc("zccadapter_degraded",
		"1 while the node's socket has been down long enough to call the node degraded.", []string{"node"}, nil)
	descLastEventAge = prometheus.NewDesc("zccadapter_last_event_age_seconds",
		"Seconds since the event time of the newest event the node received; absent before the first.", []string{"node"}, nil)
	descLastFrameAge = prometheus.NewDesc("zccadapter_socket_last_frame_age_seconds",
		"Seconds since the subscription socket last received a frame of any kind; absent before the first.", []string{"node"}, nil)
	descPending = prometheus.NewDesc("zccadapter_events_pending",
		"Events the node holds that the leader's dedup log does not show yet.", []string{"node"}, nil)
	descParked = prometheus.NewDesc("zccadapter_events_parked",
		"Events the leader holds back until an earlier fact they need arrives.", []string{"node"}, nil)
	descDeadLetters = prometheus.NewDesc("zccadapter_deadletters",
		"Engagements dead-lettered: parked behind a command the recorder kept refusing while it took others (leader).", []string{"node"}, nil)
	descSuspended = prometheus.NewDesc("zccadapter_engagements_suspended",
		"Engagements waiting behind a command whose attempts ran out, not yet judged poisoned (leader).", []string{"node"}, nil)
	descRecorderDown = prometheus.NewDesc("zccadapter_recorder_down",
		"1 while the leader finds the recorder answering nothing (commands held and retried).", []string{"node"}, nil)
	descMirrorKeys = prometheus.NewDesc("zccadapter_mirror_dedup_keys",
		"Dedup keys in the node's mirror of the leader's log.", []string{"node"}, nil)
	descMirrorEngs = prometheus.NewDesc("zccadapter_mirror_engagements",
		"Engagement states in the node's mirror of the leader's state.", []string{"node"}, nil)

	descReceived     = counterDesc("events_received", "Events received on the node's own subscription socket.")
	descApplied      = counterDesc("events_applied", "Events the node applied as leader (commands sent, event logged).")
	descDeduplicated = counterDesc("events_deduplicated", "Events dropped as already applied or already held.")
	descHandedOff    = counterDesc("events_handed_off", "Events this standby handed to the leader through etcd because the leader's log did not show them.")
	descStale        = counterDesc("events_stale", "Events older than rules.max_event_age that started no recording.")
	descLate         = counterDesc("events_late", "Events applied after a newer fact of their engagement (no command undone).")
	descDropped      = counterDesc("events_dropped", "Events dropped: pending over the limit, older than half the dedup window, or delivered after shutdown.")
	descBadSignature = counterDesc("events_bad_signature", "Message frames dropped because their x-zm-signature did not match zoom.secret_token.")
	descUnknown      = counterDesc("events_unknown", "Events whose name the node does not know (kept and counted).")
	descCommands     = prometheus.NewDesc("zccadapter_commands_total",
		"Recorder commands by the recorder's answer: applied, duplicate (absorbed by id), invalid (refused).", []string{"node", "result"}, nil)
	descExpired        = counterDesc("engagements_expired", "Engagements the node closed as leader after rules.engagement_idle_timeout without an event (their end was lost): each open segment got a stop with reason expired.")
	descDeadLettered   = counterDesc("commands_deadlettered", "Recorder commands parked in a dead letter (and agent updates dropped) because the recorder kept refusing them while it took others.")
	descAgentUpdates   = counterDesc("agent_updates", "Agent roster updates the node sent to the recorder as leader.")
	descConnects       = counterDesc("socket_connects", "Subscription connections Zoom accepted (build_connection success).")
	descReconnects     = counterDesc("socket_reconnects", "Subscription connection attempts after the first.")
	descAuthFailures   = counterDesc("socket_auth_failures", "Subscription connections that rejected the token.")
	descWatchdogCloses = counterDesc("socket_watchdog_closes", "Subscription sockets force-closed after a silence.")
	descOversize       = counterDesc("socket_oversize_frames", "Subscription frames larger than the read limit.")
	descTokenFetches   = counterDesc("token_fetches", "Requests this node made to Zoom's token endpoint.")
	descEventsByName   = prometheus.NewDesc("zccadapter_events_by_name_total",
		"Events by Zoom event name and outcome: received, applied, deduplicated, handed_off, stale, late (unknown names share event=\"unknown\").",
		[]string{"node", "event", "outcome"}, nil)
)

// Recorder replies and refusals: each an alert.
var (
	descRefused = prometheus.NewDesc("zccadapter_commands_refused_total",
		"Commands the recorder refused (422 invalid transition, 400 malformed), by action: an alert, for a stop the recording may still be running.", []string{"node", "action"}, nil)
	descBadReplies        = counterDesc("recorder_bad_replies", "Recorder replies that were not the Recording Control API's (missing field, unknown result or state, not JSON): failed attempts.")
	descFenceResets       = counterDesc("recorder_fence_resets", "Times the recorder took this leader's epoch again as new: its epoch fence had gone backwards (restarted without durable state).")
	descReconcileUnlisted = counterDesc("reconcile_unlisted_open_segments", "Segments the log showed open at a promotion that the recorder did not list as open (kept open; their stops are sent when the legs end).")
)

// Poison input: malformed events by label, the quarantine, failed
// promotions.
var (
	descMalformed = prometheus.NewDesc("zccadapter_events_malformed_total",
		"Frames and events from the subscription that failed to parse or were implausible, by event name (known names, else \"unknown\") "+
			"and offending field (a fixed set; frames that did not parse count as event=\"unknown\", field=\"frame\").",
		[]string{"node", "event", "field"}, nil)
	descQuarantined       = counterDesc("quarantined", "Inputs this node put in the cluster's quarantine (never applied).")
	descQuarantineFailed  = counterDesc("quarantine_failures", "Inputs this node could not write to the quarantine (still never applied).")
	descQuarantineEntries = prometheus.NewDesc("zccadapter_quarantine_entries",
		"Entries in the cluster's quarantine as this node last read them; absent before the first read.", []string{"node"}, nil)
	descPromotionFailures = counterDesc("promotion_failures", "Promotions of this node that failed (each followed by a backoff before campaigning again).")
)

// emitPoison writes the poison-input metrics of one snapshot: malformed
// holds the node's counts by [event, field]; the subscription's count
// (cs, may be nil) beyond them is frames, counted as unknown/frame.
func emitPoison(ch chan<- prometheus.Metric, s NodeStatus, cs *events.ClientStatus, malformed map[[2]string]int64) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{s.Node}, labels...)...)
	}
	frames := [2]string{"unknown", "frame"}
	var sum int64
	for k, v := range malformed {
		if k != frames {
			counter(descMalformed, v, k[0], k[1])
			sum += v
		}
	}
	// malformed was read before cs, so cs counts at least as many.
	if cs != nil && cs.Malformed > sum {
		counter(descMalformed, cs.Malformed-sum, frames[0], frames[1])
	}
	counter(descQuarantined, s.Quarantine.Put)
	counter(descQuarantineFailed, s.Quarantine.Failed)
	if s.Quarantine.Count >= 0 {
		ch <- prometheus.MustNewConstMetric(descQuarantineEntries, prometheus.GaugeValue, float64(s.Quarantine.Count), s.Node)
	}
	counter(descPromotionFailures, s.PromotionFailures)
}

// txnBuckets are the upper bounds (seconds) of the leader txn latency
// histogram.
var txnBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// newTxnHistogram returns the histogram of node's leader etcd transactions,
// zccadapter_etcd_txn_duration_seconds{node}. The node observes into it;
// its collector exports it.
func newTxnHistogram(node string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:        "zccadapter_etcd_txn_duration_seconds",
		Help:        "Duration of the leader's guarded etcd transactions (dedup log and state writes).",
		Buckets:     txnBuckets,
		ConstLabels: prometheus.Labels{"node": node},
	})
}

func counterDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("zccadapter_"+name+"_total", help, []string{"node"}, nil)
}

var allRoles = []string{RoleStarting, RoleStandby, RolePromoting, RoleLeader, RoleStopping}

// collector is a prometheus.Collector that reads the node's status at scrape
// time.
type collector struct {
	n    *Node
	opts MetricsOptions
	now  func() time.Time
}

// NewCollector returns a prometheus.Collector of n's metrics: it reads
// n.Status() and the subscription client's status at each scrape (nothing is
// counted twice, and nothing runs between scrapes). Register it on a
// registry of your own; Node.Handler does so for /metrics. Safe for
// concurrent use.
func NewCollector(n *Node, opts MetricsOptions) prometheus.Collector {
	return &collector{n: n, opts: opts, now: time.Now}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descRole, descEpoch, descLeaderSince, descTerms, descSocketUp, descDegraded,
		descLastEventAge, descLastFrameAge, descPending, descParked, descDeadLetters, descSuspended, descRecorderDown, descDeadLettered, descMirrorKeys, descMirrorEngs,
		descReceived, descApplied, descDeduplicated, descHandedOff, descStale, descLate, descDropped,
		descMalformed, descBadSignature, descUnknown, descCommands, descExpired, descAgentUpdates, descConnects, descReconnects, descAuthFailures,
		descWatchdogCloses, descOversize, descEventsByName,
		descQuarantined, descQuarantineFailed, descQuarantineEntries, descPromotionFailures} {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{descRefused, descBadReplies, descFenceResets, descReconcileUnlisted} {
		ch <- d
	}
	for _, d := range socketGapDescs {
		ch <- d
	}
	c.n.txn.Describe(ch)
	if c.opts.TokenFetches != nil {
		ch <- descTokenFetches
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	malformed := c.n.MalformedCounts() // before the source's status: see emitPoison
	s := c.n.Status()
	var cs *events.ClientStatus
	if c.n.source != nil {
		st := c.n.source.Status()
		cs = &st
	}
	var fetches *int64
	if c.opts.TokenFetches != nil {
		f := c.opts.TokenFetches()
		fetches = &f
	}
	emit(ch, c.n.cfg.Version, s, cs, fetches, c.now())
	emitPoison(ch, s, cs, malformed)
	for k, v := range c.n.EventCounts() {
		ch <- prometheus.MustNewConstMetric(descEventsByName, prometheus.CounterValue, float64(v), s.Node, k[0], k[1])
	}
	c.n.txn.Collect(ch)
}

// emit writes the metrics of one snapshot. cs and fetches may be nil.
func emit(ch chan<- prometheus.Metric, version string, s NodeStatus, cs *events.ClientStatus, fetches *int64, now time.Time) {
	node := s.Node
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{node}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{node}, labels...)...)
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge(descInfo, 1, version, s.Subscription)
	for _, r := range allRoles {
		gauge(descRole, b(s.Role == r), r)
	}
	gauge(descEpoch, float64(s.Epoch))
	if !s.LeaderSince.IsZero() && s.Role == RoleLeader {
		gauge(descLeaderSince, float64(s.LeaderSince.UnixNano())/1e9)
	}
	counter(descTerms, s.Terms)
	gauge(descSocketUp, b(s.SocketUp))
	gauge(descDegraded, b(s.Degraded))
	if !s.LastEventAt.IsZero() {
		gauge(descLastEventAge, max(0, now.Sub(s.LastEventAt).Seconds()))
	}
	gauge(descPending, float64(s.Pending))
	gauge(descParked, float64(s.Parked))
	gauge(descDeadLetters, float64(s.DeadLetters))
	gauge(descSuspended, float64(s.Suspended))
	gauge(descRecorderDown, b(s.RecorderDown))
	counter(descDeadLettered, s.DeadLettered)
	gauge(descMirrorKeys, float64(s.MirrorApplied))
	gauge(descMirrorEngs, float64(s.MirrorStates))
	counter(descReceived, s.Received)
	counter(descApplied, s.Applied)
	counter(descDeduplicated, s.Deduplicated)
	counter(descHandedOff, s.HandedOff)
	counter(descStale, s.Stale)
	counter(descLate, s.Late)
	counter(descDropped, s.Dropped)
	counter(descCommands, max(0, s.Commands-s.Duplicates), "applied")
	counter(descCommands, s.Duplicates, "duplicate")
	counter(descCommands, s.Invalid, "invalid")
	counter(descAgentUpdates, s.AgentUpdates)
	for action, v := range s.Refused {
		counter(descRefused, v, action)
	}
	counter(descBadReplies, s.RecorderBadReplies)
	counter(descFenceResets, s.RecorderFenceResets)
	counter(descReconcileUnlisted, s.ReconcileUnlisted)
	counter(descExpired, s.Expired)
	if cs != nil {
		emitSocketGaps(ch, s.Node, *cs)
		if !cs.LastFrameAt.IsZero() {
			gauge(descLastFrameAge, max(0, now.Sub(cs.LastFrameAt).Seconds()))
		}
		counter(descBadSignature, cs.BadSignatures)
		counter(descUnknown, cs.Unknown)
		counter(descConnects, cs.Connects)
		counter(descReconnects, cs.Reconnects)
		counter(descAuthFailures, cs.AuthFailures)
		counter(descWatchdogCloses, cs.WatchdogCloses)
		counter(descOversize, cs.Oversize)
	}
	if fetches != nil {
		counter(descTokenFetches, *fetches)
	}
}

// metricsHandler serves n's metrics, plus the Go runtime's and the
// process's, from a registry of its own (never the global one, so two nodes
// in one process do not collide).
func metricsHandler(n *Node, opts MetricsOptions) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(n, opts),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, Timeout: 10 * time.Second})
}
