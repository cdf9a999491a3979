package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// EmbedConfig configures an embedded etcd member (go.etcd.io/etcd/server/v3/embed).
type EmbedConfig struct {
	// Name of the member. Default "default".
	Name string
	// Dir is the data directory. Required.
	Dir string
	// ClientURL to listen on for clients, e.g. http://127.0.0.1:2379.
	// Default http://127.0.0.1:0 (a free port; see Endpoints).
	ClientURL string
	// PeerURL to listen on for peers. Default http://127.0.0.1:0.
	PeerURL string
	// AdvertiseClientURL and AdvertisePeerURL default to the listen URLs.
	AdvertiseClientURL, AdvertisePeerURL string
	// InitialCluster is "name=peerURL,..." for a multi-member cluster.
	// Default: this member alone.
	InitialCluster string
	// ClusterState is "new" (default) or "existing".
	ClusterState string
	// LogLevel of etcd's own logger. Default "error".
	LogLevel string
	// StartTimeout bounds the wait for the member to be ready. Default 30s.
	StartTimeout time.Duration
	// CertFile and KeyFile (PEM), when set, serve clients over TLS; the
	// ClientURL must then be https://. ClientCAFile, when set as well,
	// requires client certificates signed by it (--client-cert-auth).
	CertFile, KeyFile, ClientCAFile string
	// AutoCompactionRetention is how much MVCC history the member keeps
	// (etcd's --auto-compaction-mode=periodic
	// --auto-compaction-retention). Default (zero) 5m; negative keeps all
	// history, and the database then grows with every dedup and state write
	// until etcd's space quota (2 GiB by default) refuses writes
	// (BENCHMARKS.md, etcd size).
	AutoCompactionRetention time.Duration
}

// Embedded is a running embedded etcd member.
type Embedded struct {
	e    *embed.Etcd
	once sync.Once
}

// StartEmbedded starts an etcd member and blocks until it serves clients or
// StartTimeout passes.
func StartEmbedded(cfg EmbedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded etcd: data dir is required")
	}
	ec := embed.NewConfig()
	ec.Dir = cfg.Dir
	ec.Name = cmp.Or(cfg.Name, ec.Name)
	parse := func(field, s, def string) (url.URL, error) {
		s = cmp.Or(s, def)
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return url.URL{}, fmt.Errorf("embedded etcd: %s %q is not a URL", field, s)
		}
		return *u, nil
	}
	cu, err := parse("client url", cfg.ClientURL, "http://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	pu, err := parse("peer url", cfg.PeerURL, "http://127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	acu, err := parse("advertise client url", cfg.AdvertiseClientURL, cu.String())
	if err != nil {
		return nil, err
	}
	apu, err := parse("advertise peer url", cfg.AdvertisePeerURL, pu.String())
	if err != nil {
		return nil, err
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") || (cfg.ClientCAFile != "" && cfg.CertFile == "") {
		return nil, errors.New("embedded etcd: tls: set the certificate and key files together (and the client CA only with them)")
	}
	if cfg.CertFile != "" {
		if cu.Scheme != "https" {
			return nil, fmt.Errorf("embedded etcd: client url %q must be https:// with a certificate", cu.String())
		}
		ec.ClientTLSInfo = transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
			TrustedCAFile: cfg.ClientCAFile, ClientCertAuth: cfg.ClientCAFile != ""}
		ec.ClientAutoTLS = false
	}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{acu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{apu}
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	} else {
		ec.InitialCluster = ec.Name + "=" + apu.String()
	}
	if cfg.ClusterState == "existing" {
		ec.ClusterState = embed.ClusterStateFlagExisting
	}
	switch r := cfg.AutoCompactionRetention; {
	case r == 0:
		ec.AutoCompactionMode, ec.AutoCompactionRetention = embed.CompactorModePeriodic, "5m"
	case r > 0:
		ec.AutoCompactionMode, ec.AutoCompactionRetention = embed.CompactorModePeriodic, r.String()
	}
	ec.LogLevel = cmp.Or(cfg.LogLevel, "error")
	if cfg.LogLevel == "" {
		// Quiet by default: etcd logs its own shutdown as errors.
		ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	}
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, 30*time.Second)
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(cfg.StartTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd: not ready after %s", cfg.StartTimeout)
	}
	return &Embedded{e: e}, nil
}

// Endpoints are the addresses clients dial (host:port).
func (m *Embedded) Endpoints() []string {
	var out []string
	for _, l := range m.e.Clients {
		out = append(out, l.Addr().String())
	}
	return out
}

// Err reports a fatal serving error of the member.
func (m *Embedded) Err() <-chan error { return m.e.Err() }

// Close stops the member gracefully and waits for it (see embed.Etcd.Close).
// Safe to call more than once.
func (m *Embedded) Close() { m.once.Do(m.e.Close) }
