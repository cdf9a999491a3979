package doctor_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/adapter/assemble"
	"github.com/zccadapter/zccadapter/cluster"
	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func TestMain(m *testing.M) { labtest.VerifyTestMain(m) }

const labSecret = "doctor-lab-secret-51e0a7"

// lab is the shared in-process lab (labtest.Lab) for doctor and status:
// nodes carry version v-test and serve their endpoints.
type lab struct{ *labtest.Lab }

// newLab starts a lab; zc (may be nil) adjusts the simulated Zoom's
// configuration.
func newLab(t *testing.T, zc func(*zoom.Config)) *lab {
	t.Helper()
	return &lab{labtest.NewLab(t, labtest.Options{Secret: labSecret, Zoom: zc,
		Configure: func(c *config.Config) { c.Version = "v-test" }})}
}

// start runs node name built like `zccadapter run` builds one, its
// endpoints served on a loopback listener published as its address.
func (l *lab) start(name string) *labtest.Node {
	l.T.Helper()
	return l.Start(l.Config(name), labtest.NodeOptions{Serve: true})
}

// register writes a membership record for node under a lease, as a
// running node's campaign does, and keeps it until the test ends.
func (l *lab) register(node, subscription, address string) {
	l.T.Helper()
	cl, err := cluster.Connect(l.T.Context(), assemble.ClusterConfig(l.Config(node), l.Etcd.Endpoints()), l.Log)
	if err != nil {
		l.T.Fatal(err)
	}
	l.T.Cleanup(func() { cl.Close() })
	lease, err := cl.Client().Grant(l.T.Context(), 30)
	if err != nil {
		l.T.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Member{Node: node, Subscription: subscription, Version: "v-test", Address: address,
		Since: time.Now().UTC()})
	if _, err := cl.Client().Put(l.T.Context(), cl.Keys().Member(node), string(b), clientv3.WithLease(lease.ID)); err != nil {
		l.T.Fatal(err)
	}
}

// deadEndpoint is a loopback address nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
