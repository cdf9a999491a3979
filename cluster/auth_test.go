package cluster_test

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// An embedded etcd with authentication enabled (a root user, and a user
// whose role may only read and write the cluster's keys): the node connects
// with its username and password, campaigns and writes under its keys; it
// is refused without a password, with a wrong one, and without a user.
func TestConnectWithEtcdAuth(t *testing.T) {
	e := startEtcd(t)
	const prefix = "/zccadapter/"
	admin, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"add role root", func() error { _, err := admin.RoleAdd(ctx, "root"); return err }},
		{"add user root", func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err }},
		{"grant root", func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err }},
		{"add role zccadapter", func() error { _, err := admin.RoleAdd(ctx, "zccadapter"); return err }},
		{"grant the cluster's keys", func() error {
			_, err := admin.RoleGrantPermission(ctx, "zccadapter", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"add user node", func() error { _, err := admin.UserAdd(ctx, "node", "node-pw"); return err }},
		{"grant node", func() error { _, err := admin.UserGrantRole(ctx, "node", "zccadapter"); return err }},
		{"enable auth", func() error { _, err := admin.AuthEnable(ctx); return err }},
	} {
		if err := step.do(); err != nil {
			admin.Close()
			t.Fatalf("%s: %v", step.what, err)
		}
	}
	admin.Close()

	// etcd checks passwords with bcrypt, which takes seconds under -race.
	base := cluster.Config{Endpoints: e.Endpoints(), Cluster: "auth", Node: "a", DialTimeout: 15 * time.Second,
		SessionTTL: 2 * time.Second, FenceMargin: 500 * time.Millisecond}
	log := zerolog.New(zerolog.NewTestWriter(t))
	for _, c := range []struct {
		name               string
		username, password string
		wantErr            bool
	}{
		{"username and password", "node", "node-pw", false},
		{"no password", "node", "", true},
		{"wrong password", "node", "not-the-password", true},
		{"no user", "", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			cfg.Username, cfg.Password = c.username, c.password
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
			if _, err := cl.Client().Put(t.Context(), cl.Keys().Root()+"auth-probe", "ok"); err != nil {
				t.Fatalf("Put under the cluster's keys: %v", err)
			}
			if _, err := cl.Client().Put(t.Context(), "/elsewhere", "no"); err == nil {
				t.Error("Put outside the role's keys succeeded; the test's role is too wide")
			}
			term, err := cl.Campaign(t.Context(), protocol.Member{Subscription: "sub-a"})
			if err != nil {
				t.Fatalf("Campaign as a user limited to %s: %v", prefix, err)
			}
			if err := term.Resign(t.Context()); err != nil {
				t.Errorf("Resign: %v", err)
			}
		})
	}
}
