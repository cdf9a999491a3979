package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
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
	// stops acting: it fences itself at the send time of its last
	// acknowledged keepalive + SessionTTL − FenceMargin (monotonic clock). Default 1.5s, or 30% of SessionTTL when that is less;
	// must be less than SessionTTL − SessionTTL/3
	// (one keepalive period), or a healthy leader would fence itself between
	// two acks.
	FenceMargin time.Duration
	// DedupWindow is how long an applied event's key is remembered. Default
	// 20m; minimum 1m; it should exceed the rules' max event age.
	DedupWindow time.Duration
	// QuarantineTTL is how long a quarantine entry is kept (between 3/4 and
	// 1 TTL: entries share a lease renewed every quarter TTL). Zero means
	// the default, 7 days; else at least 1m.
	QuarantineTTL time.Duration
	// QuarantineMax is the most quarantine entries kept; older ones are
	// deleted as new ones come. Zero means the default, 1000; must not be
	// negative.
	QuarantineMax int
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
	c.Prefix = cmp.Or(c.Prefix, "zccadapter")
	c.Cluster = cmp.Or(c.Cluster, "default")
	c.SessionTTL = cmp.Or(c.SessionTTL, 5*time.Second)
	c.FenceMargin = cmp.Or(c.FenceMargin, min(1500*time.Millisecond, c.SessionTTL*3/10))
	c.DedupWindow = cmp.Or(c.DedupWindow, 20*time.Minute)
	c.DialTimeout = cmp.Or(c.DialTimeout, 5*time.Second)
	c.QuarantineTTL = cmp.Or(c.QuarantineTTL, DefaultQuarantineTTL)
	c.QuarantineMax = cmp.Or(c.QuarantineMax, DefaultQuarantineMax)
}

// validate reports the first invalid field, naming it.
func (c *Config) validate() error {
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
	case c.QuarantineTTL != 0 && c.QuarantineTTL < time.Minute:
		return fmt.Errorf("cluster: quarantine_ttl: %s is below the 1m minimum", c.QuarantineTTL)
	case c.QuarantineMax < 0:
		return fmt.Errorf("cluster: quarantine_max: %d is negative", c.QuarantineMax)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("cluster: tls: set both the certificate and the key file, or neither")
	}
	return nil
}
