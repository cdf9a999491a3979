package config

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// Config is a node's configuration. Zero values take the documented
// defaults in Load.
type Config struct {
	// Node is this node's id, unique in the cluster, e.g. "a". Required.
	Node string `yaml:"node"`
	// DataDir holds the embedded etcd's data when no endpoints are set.
	// Default "./data-<node>".
	DataDir string `yaml:"data_dir"`
	// HTTPAddr serves /healthz, /readyz, /status, /metrics. Default
	// 127.0.0.1:8081 (loopback: set an interface address, or 0.0.0.0, for
	// the other node, `zccadapter status` elsewhere and monitoring to reach
	// it).
	HTTPAddr string `yaml:"http_addr"`
	// HTTPTLSCertFile and HTTPTLSKeyFile (PEM), set both or neither, make
	// the node serve its endpoints over HTTPS only, and advertise an
	// https:// address. Empty: plain HTTP.
	HTTPTLSCertFile string `yaml:"http_tls_cert_file"`
	HTTPTLSKeyFile  string `yaml:"http_tls_key_file"`
	// HTTPTLSCAFile is the PEM bundle with which `status`, `doctor`, the
	// drill and `health` verify the nodes' certificates. Empty: the system's
	// trust store. Not used by the node itself.
	HTTPTLSCAFile string `yaml:"http_tls_ca_file"`
	// HTTPBearerToken, when set, is required as "Authorization: Bearer
	// <token>" on every endpoint but /healthz and /livez (others answer 401
	// without it), and sent by `status`, `doctor` and the drill. Both nodes
	// of a pair use the same token. Prefer ZCC_HTTP_BEARER_TOKEN or
	// HTTPBearerTokenFile. Empty: no token.
	HTTPBearerToken     string `yaml:"http_bearer_token"`
	HTTPBearerTokenFile string `yaml:"http_bearer_token_file"`
	// AllowInsecureCredentials allows every credential to travel in clear
	// text to a host other than loopback (see the sections' own
	// allow_insecure_credentials); each such use is logged as a warning at
	// start. Default false: such a configuration is an error.
	AllowInsecureCredentials bool `yaml:"allow_insecure_credentials"`
	// HTTPAdvertiseAddr is the host:port where the other node and
	// `zccadapter status` reach this node's HTTP endpoints; it is published
	// in the membership record. Default: the listening address, with an
	// unspecified host (0.0.0.0, ::) replaced by the machine's hostname.
	HTTPAdvertiseAddr string `yaml:"http_advertise_addr"`
	// LogLevel: debug, info, warn, error. Default info.
	LogLevel string   `yaml:"log_level"`
	Etcd     Etcd     `yaml:"etcd"`
	Zoom     Zoom     `yaml:"zoom"`
	Recorder Recorder `yaml:"recorder"`
	Rules    Rules    `yaml:"rules"`

	// Version is the build's version, set by the binary (not from YAML).
	Version string `yaml:"-"`
}

// Etcd configures the cluster store.
type Etcd struct {
	// Endpoints, e.g. ["10.0.0.1:2379", ...]. Empty: an embedded
	// single-member etcd in DataDir (one node alone; not a pair).
	Endpoints []string `yaml:"endpoints"`
	// Prefix of every key. Default "zccadapter".
	Prefix string `yaml:"prefix"`
	// Cluster name of the pair. Default "default".
	Cluster string `yaml:"cluster"`
	// SessionTTL of the node's lease. Default 5s.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// FenceMargin: a leader stops at last ack + TTL − margin. Default 1.5s
	// (30% of SessionTTL when that is less).
	FenceMargin time.Duration `yaml:"fence_margin"`
	// DedupWindow: how long applied event keys are kept. Default 20m.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// QuarantineTTL: how long an input put in quarantine (a malformed or
	// implausible event, an unreadable handoff entry or state record) is
	// kept. Zero: the cluster's default, 7 days; else at least 1m.
	QuarantineTTL time.Duration `yaml:"quarantine_ttl"`
	// QuarantineMax: the most quarantine entries kept, newest first. Zero:
	// the cluster's default, 1000.
	QuarantineMax int `yaml:"quarantine_max"`
	// EmbeddedClientURL: where the embedded etcd listens when Endpoints is
	// empty. Default http://127.0.0.1:2379.
	EmbeddedClientURL string `yaml:"embedded_client_url"`
	// Username and Password authenticate to etcd (etcd's auth enabled);
	// empty: no authentication. Prefer ZCC_ETCD_PASSWORD or PasswordFile.
	// Sent in clear unless etcd.tls is set or every endpoint is https:// or
	// loopback; anything else is an error unless AllowInsecureCredentials.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// TLS of the connection to etcd.endpoints (client-cert auth when
	// cert_file and key_file are set). Empty: plain connections.
	TLS TLS `yaml:"tls"`
	// AllowInsecureCredentials allows the etcd password over plain
	// connections to non-loopback endpoints, with a warning. Default false.
	AllowInsecureCredentials bool `yaml:"allow_insecure_credentials"`
}

// TLS names the PEM files of a TLS client.
type TLS struct {
	// CAFile is a PEM bundle of the CAs that sign the server's certificate.
	// Empty: the system's trust store.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are this node's client certificate and key
	// (PEM), for servers that require client certificates. Set both or
	// neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether any TLS file is set.
func (t TLS) Enabled() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// problems reports unreadable files and a certificate without its key, each
// under key (e.g. "etcd.tls").
func (t TLS) problems(key string) []string {
	var p []string
	if (t.CertFile == "") != (t.KeyFile == "") {
		p = append(p, fmt.Sprintf("%s.cert_file and %s.key_file: set both or neither", key, key))
	}
	for _, f := range []struct{ name, path string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p = append(p, fmt.Sprintf("%s.%s: %v", key, f.name, err))
		}
	}
	return p
}

// Zoom configures the OAuth client and this node's subscription.
type Zoom struct {
	// TokenURL. Default https://zoom.us/oauth/token. It receives the client
	// secret: http:// to a host other than loopback is an error unless
	// AllowInsecureCredentials.
	TokenURL string `yaml:"token_url"`
	// AccountID of the Server-to-Server OAuth app. Required for the
	// account_credentials grant; not used by refresh_token.
	AccountID string `yaml:"account_id"`
	// ClientID of the app. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret: prefer ZCC_ZOOM_CLIENT_SECRET or ClientSecretFile.
	// Required for every grant: it authenticates the app at the token
	// endpoint and derives the key that seals the token in etcd.
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// GrantType: account_credentials (default; Server-to-Server OAuth),
	// client_credentials (the S2S variant without account_id), or
	// refresh_token (an app authorised by a user: the refresh token lives in
	// the cluster's store, put there by `zccadapter auth exchange`, and
	// rotates on every refresh).
	GrantType string `yaml:"grant_type"`
	// SubscriptionURL is this node's own event subscription, e.g.
	// wss://ws.zoom.us/ws?subscriptionId=ID, without a token. Required. The
	// node adds an access token to it: ws:// to a host other than loopback
	// is an error unless AllowInsecureCredentials.
	SubscriptionURL string `yaml:"subscription_url"`
	// HeartbeatInterval of the subscription. Default 30s.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// WatchdogTimeout: a socket silent this long is closed. Default 45s.
	WatchdogTimeout time.Duration `yaml:"watchdog_timeout"`
	// SecretToken is the app's secret token; when set, every message
	// frame's x-zm-signature is verified and a mismatch dropped and counted.
	// Prefer ZCC_ZOOM_SECRET_TOKEN or SecretTokenFile.
	SecretToken     string `yaml:"secret_token"`
	SecretTokenFile string `yaml:"secret_token_file"`
	// SignatureMaxAge: with SecretToken, a frame whose
	// x-zm-request-timestamp lies further than this from the node's clock,
	// either way, is dropped as a replay (counted as a bad signature).
	// Default 5m; negative: the timestamp is not checked.
	SignatureMaxAge time.Duration `yaml:"signature_max_age"`
	// AllowInsecureCredentials allows the client secret and the access
	// token over http:// and ws:// to hosts other than loopback (a simulator
	// on another host), with a warning. Default false.
	AllowInsecureCredentials bool `yaml:"allow_insecure_credentials"`
	// DegradedAfter: a node whose socket has been down this long reports
	// itself degraded; a degraded leader hands over to a standby whose
	// socket is up. Default 10s.
	DegradedAfter time.Duration `yaml:"degraded_after"`
}

// Recorder configures the recorder sink.
type Recorder struct {
	// URL of the Recording Control API, e.g. http://ris-recorder:8090. Required.
	URL string `yaml:"url"`
	// RequestTimeout of one attempt. Default 2s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxAttempts bounds the attempts at one command while the recorder
	// answers other requests: past it the command's engagement waits
	// (suspended, then dead-lettered if the recorder keeps refusing it while
	// it takes other commands) and the other engagements go on. A recorder
	// that answers nothing is retried without bound. Default 6; at most 100.
	MaxAttempts int `yaml:"max_attempts"`
	// BearerToken is sent to the recorder as "Authorization: Bearer …";
	// empty: none. Prefer ZCC_RECORDER_BEARER_TOKEN or BearerTokenFile. With
	// a token, an http:// URL to a host other than loopback is an error
	// unless AllowInsecureCredentials.
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TLS of an https:// recorder: a custom CA and, optionally, a client
	// certificate. Empty: the system's trust store, no client certificate.
	TLS TLS `yaml:"tls"`
	// AllowInsecureCredentials allows the bearer token over http:// to a
	// host other than loopback, with a warning. Default false.
	AllowInsecureCredentials bool `yaml:"allow_insecure_credentials"`
}

// Rules configures the recording rules.
type Rules struct {
	// PauseOnHold: pause/resume on hold/unhold; else tag them. Default false.
	PauseOnHold bool `yaml:"pause_on_hold"`
	// MaxEventAge: older events never start a recording. Default 10m.
	MaxEventAge time.Duration `yaml:"max_event_age"`
	// HandoffGrace: a standby hands an unlogged event to the leader after
	// this long. Default 2s; must be below etcd.dedup_window/2 (a standby
	// drops a pending event older than that).
	HandoffGrace time.Duration `yaml:"handoff_grace"`
	// EngagementIdleTimeout: the leader closes an engagement that has had
	// no event for this long (its end was lost), stopping each open segment
	// with reason expired. Default 12h; must be at least max_event_age (an
	// answer arriving after the expiry must be too old to start a
	// recording).
	EngagementIdleTimeout time.Duration `yaml:"engagement_idle_timeout"`
	// MaxEventFuture: an event dated further ahead of now is implausible:
	// dropped, counted and quarantined, never applied. Default 24h.
	MaxEventFuture time.Duration `yaml:"max_event_future"`
	// MaxEventPast: an event dated further back than this is implausible
	// (as MaxEventFuture). Default 30 days (720h); it must exceed
	// max_event_age.
	MaxEventPast time.Duration `yaml:"max_event_past"`
}

// Defaults the relations in Validate assume for settings that another
// package defaults (cluster.Config).
const (
	defaultDedupWindow = 20 * time.Minute
	defaultSessionTTL  = 5 * time.Second
)

// Error lists every problem of a configuration, each naming its key.
type Error struct {
	File     string
	Problems []string
}

func (e *Error) Error() string {
	where := "configuration"
	if e.File != "" {
		where = e.File
	}
	return fmt.Sprintf("%s: %s", where, strings.Join(e.Problems, "; "))
}

// Load reads the YAML file at path (may be "" for environment only),
// applies ZCC_* overrides and *_file secrets, then defaults, then
// Validate. Unknown keys are errors. The returned error is an *Error naming
// the file and each key at fault.
func Load(path string) (*Config, error) { return load(path, true) }

// LoadForStatus is Load for commands that read a cluster without joining it
// (`zccadapter status`): a missing Zoom client secret is not a problem, so an
// operator's shell need not hold it.
func LoadForStatus(path string) (*Config, error) { return load(path, false) }

func load(path string, needSecret bool) (*Config, error) {
	var c Config
	if path != "" {
		if err := decodeFile(path, &c); err != nil {
			return nil, err
		}
	}
	var probs []string
	applyEnv(reflect.ValueOf(&c).Elem(), "ZCC", "", os.LookupEnv, &probs)
	readSecret := func(key string, dst *string, file string) {
		if file == "" {
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			probs = append(probs, fmt.Sprintf("%s: %v", key, err))
			return
		}
		*dst = strings.TrimSpace(string(b))
	}
	readSecret("zoom.client_secret_file", &c.Zoom.ClientSecret, c.Zoom.ClientSecretFile)
	readSecret("zoom.secret_token_file", &c.Zoom.SecretToken, c.Zoom.SecretTokenFile)
	readSecret("etcd.password_file", &c.Etcd.Password, c.Etcd.PasswordFile)
	readSecret("recorder.bearer_token_file", &c.Recorder.BearerToken, c.Recorder.BearerTokenFile)
	readSecret("http_bearer_token_file", &c.HTTPBearerToken, c.HTTPBearerTokenFile)
	c.SetDefaults()
	chk := c
	if !needSecret && chk.Zoom.ClientSecret == "" {
		chk.Zoom.ClientSecret = "not needed"
	}
	probs = append(probs, chk.problems()...)
	if len(probs) > 0 {
		return nil, &Error{File: path, Problems: probs}
	}
	return &c, nil
}

// SetDefaults fills zero fields with their documented defaults.
func (c *Config) SetDefaults() {
	if c.DataDir == "" && c.Node != "" {
		c.DataDir = "./data-" + c.Node
	}
	c.HTTPAddr = cmp.Or(c.HTTPAddr, "127.0.0.1:8081")
	c.LogLevel = cmp.Or(c.LogLevel, "info")
	c.Etcd.EmbeddedClientURL = cmp.Or(c.Etcd.EmbeddedClientURL, "http://127.0.0.1:2379")
	c.Zoom.HeartbeatInterval = cmp.Or(c.Zoom.HeartbeatInterval, 30*time.Second)
	c.Zoom.WatchdogTimeout = cmp.Or(c.Zoom.WatchdogTimeout, 45*time.Second)
	c.Zoom.GrantType = cmp.Or(c.Zoom.GrantType, "account_credentials")
	c.Zoom.SignatureMaxAge = cmp.Or(c.Zoom.SignatureMaxAge, 5*time.Minute)
	c.Rules.MaxEventAge = cmp.Or(c.Rules.MaxEventAge, 10*time.Minute)
	c.Rules.HandoffGrace = cmp.Or(c.Rules.HandoffGrace, 2*time.Second)
	c.Rules.EngagementIdleTimeout = cmp.Or(c.Rules.EngagementIdleTimeout, 12*time.Hour)
	c.Rules.MaxEventFuture = cmp.Or(c.Rules.MaxEventFuture, 24*time.Hour)
	c.Rules.MaxEventPast = cmp.Or(c.Rules.MaxEventPast, 30*24*time.Hour)
	c.Recorder.MaxAttempts = cmp.Or(c.Recorder.MaxAttempts, 6)
}

// Validate reports every problem, each naming its key; nil if none.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

func (c *Config) problems() []string {
	var p []string
	need := func(key, v, env string) {
		if strings.TrimSpace(v) == "" {
			p = append(p, fmt.Sprintf("%s: required (or set %s)", key, env))
		}
	}
	need("node", c.Node, "ZCC_NODE")
	if strings.ContainsAny(c.Node, "/ ") {
		p = append(p, fmt.Sprintf("node: %q must not contain '/' or spaces", c.Node))
	}
	switch c.Zoom.GrantType {
	case "", "account_credentials":
		need("zoom.account_id", c.Zoom.AccountID, "ZCC_ZOOM_ACCOUNT_ID")
	case "client_credentials", "refresh_token":
	default:
		p = append(p, fmt.Sprintf("zoom.grant_type: %q is not account_credentials, client_credentials or refresh_token", c.Zoom.GrantType))
	}
	need("zoom.client_id", c.Zoom.ClientID, "ZCC_ZOOM_CLIENT_ID")
	if c.Zoom.ClientSecret == "" {
		p = append(p, "zoom.client_secret: not set; set the environment variable ZCC_ZOOM_CLIENT_SECRET or zoom.client_secret_file")
	}
	need("zoom.subscription_url", c.Zoom.SubscriptionURL, "ZCC_ZOOM_SUBSCRIPTION_URL")
	if u := c.Zoom.SubscriptionURL; u != "" && !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
		p = append(p, "zoom.subscription_url: must start with wss:// (or ws:// for a simulator)")
	}
	if hasTokenParam(c.Zoom.SubscriptionURL) {
		p = append(p, "zoom.subscription_url: remove the access_token parameter; the node adds a fresh token itself")
	}
	need("recorder.url", c.Recorder.URL, "ZCC_RECORDER_URL")
	if u := c.Recorder.URL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		p = append(p, fmt.Sprintf("recorder.url: %q must start with http:// or https://", u))
	}
	if a := c.Recorder.MaxAttempts; a < 0 || a > 100 {
		p = append(p, fmt.Sprintf("recorder.max_attempts: %d must be between 1 and 100 (0: default 6)", a))
	}
	if t := c.Etcd.SessionTTL; t != 0 && t < 2*time.Second {
		p = append(p, fmt.Sprintf("etcd.session_ttl: %s is below the 2s minimum", t))
	}
	if w := c.Etcd.DedupWindow; w < 0 {
		p = append(p, fmt.Sprintf("etcd.dedup_window: %s must not be negative", w))
	}
	if c.Rules.HandoffGrace < 0 {
		p = append(p, fmt.Sprintf("rules.handoff_grace: %s must not be negative", c.Rules.HandoffGrace))
	}
	if c.Rules.EngagementIdleTimeout < 0 {
		p = append(p, fmt.Sprintf("rules.engagement_idle_timeout: %s must not be negative", c.Rules.EngagementIdleTimeout))
	}
	p = append(p, c.contradictions()...)
	p = append(p, c.Etcd.TLS.problems("etcd.tls")...)
	if c.Etcd.TLS.Enabled() && len(c.Etcd.Endpoints) == 0 {
		p = append(p, "etcd.tls: applies to etcd.endpoints only; the embedded etcd (no endpoints) listens on plain loopback")
	}
	p = append(p, c.Recorder.TLS.problems("recorder.tls")...)
	if c.Recorder.TLS.Enabled() && strings.HasPrefix(c.Recorder.URL, "http://") {
		p = append(p, "recorder.tls: set, but recorder.url is http://; use https://")
	}
	if (c.HTTPTLSCertFile == "") != (c.HTTPTLSKeyFile == "") {
		p = append(p, "http_tls_cert_file and http_tls_key_file: set both or neither")
	}
	for _, f := range []struct{ key, path string }{{"http_tls_cert_file", c.HTTPTLSCertFile}, {"http_tls_key_file", c.HTTPTLSKeyFile}, {"http_tls_ca_file", c.HTTPTLSCAFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			p = append(p, fmt.Sprintf("%s: %v", f.key, err))
		}
	}
	for _, e := range c.cleartextCredentials() {
		if !e.allowed {
			p = append(p, e.key+": "+e.what+"; use "+e.fix+", or set "+e.allowKey+": true to accept it")
		}
	}
	if c.Rules.MaxEventAge < 0 {
		p = append(p, "rules.max_event_age: must not be negative")
	}
	if c.Rules.MaxEventFuture < 0 {
		p = append(p, "rules.max_event_future: must not be negative")
	}
	if c.Rules.MaxEventPast < 0 {
		p = append(p, "rules.max_event_past: must not be negative")
	} else if c.Rules.MaxEventPast > 0 && c.Rules.MaxEventPast <= c.Rules.MaxEventAge {
		p = append(p, fmt.Sprintf("rules.max_event_past: %s must exceed rules.max_event_age %s", c.Rules.MaxEventPast, c.Rules.MaxEventAge))
	}
	if t := c.Etcd.QuarantineTTL; t != 0 && t < time.Minute {
		p = append(p, fmt.Sprintf("etcd.quarantine_ttl: %s is below the 1m minimum", t))
	}
	if c.Etcd.QuarantineMax < 0 {
		p = append(p, "etcd.quarantine_max: must not be negative")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		p = append(p, fmt.Sprintf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	return p
}

// contradictions reports settings that are each valid alone but contradict
// one another; each problem names both keys and their values (with the
// defaults of settings left zero).
func (c *Config) contradictions() []string {
	var p []string
	ttl := cmp.Or(c.Etcd.SessionTTL, defaultSessionTTL)
	dedup := cmp.Or(c.Etcd.DedupWindow, defaultDedupWindow)
	if c.Zoom.WatchdogTimeout <= c.Zoom.HeartbeatInterval {
		p = append(p, fmt.Sprintf("zoom.watchdog_timeout: %s must exceed zoom.heartbeat_interval %s (a healthy socket would be closed between two heartbeats)",
			c.Zoom.WatchdogTimeout, c.Zoom.HeartbeatInterval))
	}
	if m := c.Etcd.FenceMargin; m != 0 && m >= ttl-ttl/3 {
		p = append(p, fmt.Sprintf("etcd.fence_margin: %s must be below etcd.session_ttl %s − session_ttl/3 (%s), or a healthy leader fences itself between two keepalives",
			m, ttl, ttl-ttl/3))
	}
	if c.Rules.MaxEventAge > 0 && dedup < c.Rules.MaxEventAge {
		p = append(p, fmt.Sprintf("etcd.dedup_window: %s must be at least rules.max_event_age %s (an event older than the dedup log remembers could be applied twice)",
			dedup, c.Rules.MaxEventAge))
	}
	if g := c.Rules.HandoffGrace; g > 0 && g >= dedup/2 {
		p = append(p, fmt.Sprintf("rules.handoff_grace: %s must be below etcd.dedup_window/2 (etcd.dedup_window %s): a standby drops a pending event older than half the window before handing it off",
			g, dedup))
	}
	if i := c.Rules.EngagementIdleTimeout; i > 0 && i < c.Rules.MaxEventAge {
		p = append(p, fmt.Sprintf("rules.engagement_idle_timeout: %s must be at least rules.max_event_age %s (an answer arriving after the expiry could start a recording again)",
			i, c.Rules.MaxEventAge))
	}
	return p
}

// EtcdDataDir is where the embedded etcd keeps its data.
func (c *Config) EtcdDataDir() string { return filepath.Join(c.DataDir, "etcd") }

// hasTokenParam reports whether a URL carries a token-like query parameter
// (access_token in any case or escaping, or any name with "token").
func hasTokenParam(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.Contains(strings.ToLower(raw), "token")
	}
	for name := range u.Query() {
		if strings.Contains(strings.ToLower(name), "token") {
			return true
		}
	}
	return false
}
