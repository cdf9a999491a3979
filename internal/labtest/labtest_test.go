package labtest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zccadapter/zccadapter/adapter"
	"github.com/zccadapter/zccadapter/config"
	"github.com/zccadapter/zccadapter/internal/labtest"
	"github.com/zccadapter/zccadapter/sim/zoom"
)

func TestMain(m *testing.M) { labtest.VerifyTestMain(m) }

// A lab's Config carries Options and Tune; a served node publishes its
// listener's address and answers on URL; an in-process one publishes
// "in-process"; Close stops nodes before what they were started after, and
// is idempotent.
func TestLabRunsServedAndInProcessNodes(t *testing.T) {
	var zoomSecret string
	l := labtest.NewLab(t, labtest.Options{Secret: "labtest-secret",
		Zoom:      func(c *zoom.Config) { zoomSecret = c.ClientSecret },
		Configure: func(c *config.Config) { c.Version = "v-configure" }})
	l.Tune = func(c *config.Config) { c.Rules.PauseOnHold = c.Version == "v-configure" }
	if c := l.Config("a"); zoomSecret != "labtest-secret" || c.Zoom.ClientSecret != zoomSecret ||
		!c.Rules.PauseOnHold || !strings.HasSuffix(c.Zoom.SubscriptionURL, "subscriptionId=sub-a") {
		t.Fatalf("config: secret %q (zoom %q), pause on hold %v, subscription %s", c.Zoom.ClientSecret, zoomSecret,
			c.Rules.PauseOnHold, c.Zoom.SubscriptionURL)
	}

	var order []string
	l.OnClose(func() { order = append(order, "before a") })
	a := l.Start(l.Config("a"), labtest.NodeOptions{Serve: true})
	a.WaitRole(t, adapter.RoleLeader, 10*time.Second)
	l.OnClose(func() { order = append(order, "after a") })
	b := l.Start(l.Config("b"), labtest.NodeOptions{})
	sb := b.WaitRole(t, adapter.RoleStandby, 10*time.Second)
	if b.Addr != "in-process" || b.URL != "" || !sb.SocketUp {
		t.Errorf("in-process node: addr %q url %q status %+v", b.Addr, b.URL, sb)
	}
	if !strings.HasPrefix(a.Addr, "127.0.0.1:") || a.URL != "http://"+a.Addr {
		t.Fatalf("served node: addr %q url %q", a.Addr, a.URL)
	}
	resp, err := http.Get(a.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Node, Role string
	}
	err = json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if err != nil || s.Node != "a" || s.Role != adapter.RoleLeader {
		t.Fatalf("GET /status: %+v, %v", s, err)
	}

	b.Stop()
	b.Stop()
	l.OnClose(func() {
		if a.Status().Role != adapter.RoleLeader {
			t.Error("a stopped before what was registered after it")
		}
	})
	l.Close()
	l.Close()
	if strings.Join(order, ", ") != "after a, before a" {
		t.Errorf("close order %v", order)
	}
	if _, err := http.Get(a.URL + "/status"); err == nil {
		t.Error("a's endpoints still served after Close")
	}
}

func TestWaitForReturnsOnceCondHolds(t *testing.T) {
	n := 0
	labtest.WaitFor(t, time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}
