package cluster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/internal/testcerts"
)

// An embedded etcd serving clients over TLS with client-certificate auth:
// the node connects with the CA and its certificate, and not without them.
func TestConnectOverTLS(t *testing.T) {
	pki := testcerts.New(t)
	e, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir(), ClientURL: "https://127.0.0.1:0",
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	base := cluster.Config{Endpoints: e.Endpoints(), Cluster: "tls", Node: "a", DialTimeout: 2 * time.Second}
	log := zerolog.New(zerolog.NewTestWriter(t))

	for _, c := range []struct {
		name    string
		mutate  func(*cluster.Config)
		wantErr bool
	}{
		{"CA and client certificate", func(c *cluster.Config) {
			c.CAFile, c.CertFile, c.KeyFile = pki.CAFile, pki.ClientCert, pki.ClientKey
		}, false},
		{"plain connection", func(*cluster.Config) {}, true},
		{"CA without client certificate", func(c *cluster.Config) { c.CAFile = pki.CAFile }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mutate(&cfg)
			cl, err := cluster.Connect(t.Context(), cfg, log)
			if c.wantErr {
				if err == nil {
					cl.Close()
					t.Fatal("Connect succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer cl.Close()
			if _, err := cl.Client().Put(t.Context(), cl.Keys().Root()+"tls-probe", "ok"); err != nil {
				t.Fatalf("Put over TLS: %v", err)
			}
			if ms, err := cl.Members(t.Context()); err != nil || len(ms) != 0 {
				t.Fatalf("Members = %v, %v; want none, nil", ms, err)
			}
		})
	}
}

func TestConfigTLSValidation(t *testing.T) {
	pki := testcerts.New(t)
	for _, c := range []struct {
		name string
		cfg  cluster.Config
		want string
	}{
		{"certificate without key", cluster.Config{CertFile: pki.ClientCert}, "tls"},
		{"key without certificate", cluster.Config{KeyFile: pki.ClientKey}, "tls"},
		{"missing CA file", cluster.Config{CAFile: pki.CAFile + ".missing"}, "tls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Endpoints, c.cfg.Node = []string{"127.0.0.1:1"}, "a"
			_, err := cluster.Connect(t.Context(), c.cfg, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Connect: %v, want an error naming %q", err, c.want)
			}
		})
	}
	if _, err := cluster.StartEmbedded(cluster.EmbedConfig{Dir: t.TempDir(), CertFile: pki.ServerCert, KeyFile: pki.ServerKey}); err == nil ||
		!strings.Contains(err.Error(), "https") {
		t.Fatalf("StartEmbedded with a certificate on http://: %v, want an error asking for https", err)
	}
}
