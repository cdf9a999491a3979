package cluster

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Errors returned by this package.
var (
	// ErrNotLeader is returned by Term.Commit when the election key's create
	// revision no longer equals the term's epoch: another node leads, or the
	// lease expired. The caller must stop acting as leader at once.
	ErrNotLeader = errors.New("cluster: not the leader any more")
	// ErrFenced is returned when the self-fencing deadline passed before the
	// call: the node may no longer send recorder commands or write as leader.
	ErrFenced = errors.New("cluster: self-fencing deadline passed")
	// ErrPhantomLeader is returned by Campaign when the election reported
	// success but the node's own key or session was gone (an etcd trap:
	// Campaign may return after the session expired). The caller campaigns
	// again with a new session.
	ErrPhantomLeader = errors.New("cluster: campaign returned without a live key and session")
)

// Config configures the connection to etcd and the cluster's keys.
type Config struct {
	// Endpoints of the etcd cluster, e.g. ["127.0.0.1:2379"]. Required.
	Endpoints []string
	// Prefix is the first key segment. Default "zccadapter".
	Prefix string
	// Cluster names the pair; two pairs may share one etcd under different
	// names. Default "default".
	Cluster string
	// Node is this node's id, unique in the cluster (e.g. "a"). Required.
	Node string
	// SessionTTL is the lease TTL of a node's session, rounded to whole
	// seconds (etcd leases have one-second resolution). Default 5s; minimum
	// 2s. A crashed leader is replaced after at most this long.
	SessionTTL time.Duration
	// FenceMargin is how long before the server-side lease expiry a leader
	// stops acting: it fences itself at last keepalive ack + SessionTTL −
	// FenceMargin. Default 1.5s, or 30% of SessionTTL when that is less;
	// must be less than SessionTTL − SessionTTL/3
	// (one keepalive period), or a healthy leader would fence itself between
	// two acks.
	FenceMargin time.Duration
	// DedupWindow is how long an applied event's key is remembered. Default
	// 20m; it should exceed the rules' max event age.
	DedupWindow time.Duration
	// DialTimeout bounds the first connection. Default 5s.
	DialTimeout time.Duration
	// Username and Password, when set, authenticate to etcd.
	Username, Password string
	// CAFile, CertFile and KeyFile (PEM), when any is set, make the
	// connection TLS: CAFile verifies the servers (empty: the system's trust
	// store); CertFile and KeyFile, set both or neither, are the client
	// certificate for etcd's --client-cert-auth.
	CAFile, CertFile, KeyFile string
}

// TLSEnabled reports whether the connection to etcd uses TLS.
func (c Config) TLSEnabled() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// ClientConfig returns the etcd client configuration of c: endpoints, dial
// timeouts, credentials and TLS, with defaults applied. It loads the TLS
// files and fails naming the one it cannot use. Connect uses it; tools that
// need a bare client (doctor, which must reach members without quorum) use
// it too.
func (c Config) ClientConfig() (clientv3.Config, error) {
	c.setDefaults()
	cc := clientv3.Config{
		Endpoints:            c.Endpoints,
		DialTimeout:          c.DialTimeout,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Username:             c.Username,
		Password:             c.Password,
		Logger:               zap.NewNop(),
	}
	if c.TLSEnabled() {
		if (c.CertFile == "") != (c.KeyFile == "") {
			return clientv3.Config{}, errors.New("cluster: tls: set both the certificate and the key file, or neither")
		}
		tc, err := transport.TLSInfo{TrustedCAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
			Logger: zap.NewNop()}.ClientConfig()
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("cluster: tls: %w", err)
		}
		cc.TLS = tc
	}
	return cc, nil
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "zccadapter"
	}
	if c.Cluster == "" {
		c.Cluster = "default"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 5 * time.Second
	}
	if c.FenceMargin == 0 {
		c.FenceMargin = min(1500*time.Millisecond, c.SessionTTL*3/10)
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = 20 * time.Minute
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
}

// Validate reports the first invalid field, naming it.
func (c *Config) Validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("cluster: endpoints: at least one etcd endpoint is required")
	case c.Node == "" || strings.ContainsAny(c.Node, "/ "):
		return fmt.Errorf("cluster: node: %q is not a valid node id (non-empty, no '/' or spaces)", c.Node)
	case strings.Contains(c.Cluster, "/") || strings.Contains(c.Prefix, "/"):
		return errors.New("cluster: prefix and cluster must not contain '/'")
	case c.SessionTTL < 2*time.Second:
		return fmt.Errorf("cluster: session_ttl: %s is below the 2s minimum", c.SessionTTL)
	case c.FenceMargin <= 0 || c.FenceMargin >= c.SessionTTL-c.SessionTTL/3:
		return fmt.Errorf("cluster: fence_margin: %s must be > 0 and < session_ttl − session_ttl/3 (%s)", c.FenceMargin, c.SessionTTL-c.SessionTTL/3)
	case c.DedupWindow < time.Minute:
		return fmt.Errorf("cluster: dedup_window: %s is below the 1m minimum", c.DedupWindow)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("cluster: tls: set both the certificate and the key file, or neither")
	}
	return nil
}

// Keys names the cluster's etcd keys.
type Keys struct{ root string }

func newKeys(prefix, cluster string) Keys {
	return Keys{root: "/" + path.Join(prefix, cluster) + "/"}
}

// Root is the prefix of every key of the cluster, ending in '/'.
func (k Keys) Root() string { return k.root }

// Election is the election prefix.
func (k Keys) Election() string { return k.root + "election/" }

// Member is a node's membership key.
func (k Keys) Member(node string) string { return k.root + "members/" + node }

// Members is the membership prefix.
func (k Keys) Members() string { return k.root + "members/" }

// Dedup is an applied event's key; DedupPrefix the prefix of all of them.
func (k Keys) Dedup(key string) string { return k.root + "dedup/" + key }

// DedupPrefix is the prefix of the dedup log.
func (k Keys) DedupPrefix() string { return k.root + "dedup/" }

// State is an engagement's state record; StatePrefix the prefix of all.
func (k Keys) State(engagementID string) string { return k.root + "state/" + engagementID }

// StatePrefix is the prefix of the replicated state.
func (k Keys) StatePrefix() string { return k.root + "state/" }

// Handoff is an event handed to the leader; HandoffPrefix the prefix of all.
func (k Keys) Handoff(key string) string { return k.root + "handoff/" + key }

// HandoffPrefix is the prefix of the handoff queue.
func (k Keys) HandoffPrefix() string { return k.root + "handoff/" }

// Token is the shared token's key; TokenLock the mutex prefix.
func (k Keys) Token() string { return k.root + "token" }

// TokenLock is the prefix of the token mutex.
func (k Keys) TokenLock() string { return k.root + "token-lock/" }

// Cluster is a node's connection to the cluster's etcd. Safe for concurrent
// use. Close releases it.
type Cluster struct {
	cfg    Config
	keys   Keys
	client *clientv3.Client
	log    zerolog.Logger
	// abandoned counts etcd calls a caller stopped waiting for (a
	// campaign cancelled while etcd does not answer); Close joins them.
	abandoned sync.WaitGroup
}

// Connect dials etcd. It does not block on the connection beyond
// cfg.DialTimeout; ctx bounds the first status call that verifies it.
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*Cluster, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cc, err := cfg.ClientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect etcd %v: %w", cfg.Endpoints, err)
	}
	c := &Cluster{cfg: cfg, keys: newKeys(cfg.Prefix, cfg.Cluster), client: cli,
		log: log.With().Str("component", "cluster").Logger()}
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(sctx, c.keys.Root()+"probe"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("connect etcd %v: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Config returns the effective configuration (defaults applied).
func (c *Cluster) Config() Config { return c.cfg }

// Keys returns the cluster's key names.
func (c *Cluster) Keys() Keys { return c.keys }

// Client returns the etcd client; it stays owned by the Cluster.
func (c *Cluster) Client() *clientv3.Client { return c.client }

// Close closes the etcd client. Terms and mirrors must be stopped first.
func (c *Cluster) Close() error {
	err := c.client.Close()
	c.abandoned.Wait() // closing the client ends them
	return err
}
