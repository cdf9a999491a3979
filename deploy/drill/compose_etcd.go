package drill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/zccadapter/zccadapter/wait"
)

// StopEtcd implements Backend: it stops a member's container with SIGTERM
// (`docker stop`, 10s grace). member "" is the etcd leader at this moment.
func (c *Compose) StopEtcd(ctx context.Context, member string) (string, error) {
	if member == "" {
		var err error
		if member, err = c.etcdLeader(ctx); err != nil {
			return "", err
		}
	}
	if c.id(member) == "" || !strings.HasPrefix(member, "etcd-") {
		return "", fmt.Errorf("compose lab: no etcd member %q (the lab runs %s)", member, strings.Join(composeEtcdMembers, ", "))
	}
	if _, err := c.docker(ctx, "stop", "--time", "10", c.id(member)); err != nil {
		return "", fmt.Errorf("compose lab: stop %s: %w", member, err)
	}
	return member, nil
}

// EtcdKeepsQuorum reports that stopping one etcd member leaves a quorum
// (two of three): a restart-etcd need not end the leader's term, and a
// successor, if any, is measured from the stop rather than from the
// member's return. The drill may check for this method.
func (c *Compose) EtcdKeepsQuorum() bool { return len(composeEtcdMembers) >= 3 }

// StartEtcd implements Backend: `docker start`, then it waits until the
// member answers /health.
func (c *Compose) StartEtcd(ctx context.Context, member string) error {
	if c.id(member) == "" || !strings.HasPrefix(member, "etcd-") {
		return fmt.Errorf("compose lab: no etcd member %q", member)
	}
	if _, err := c.docker(ctx, "start", c.id(member)); err != nil {
		return fmt.Errorf("compose lab: start %s: %w", member, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url(member)+"/health", nil)
		if resp, err := c.hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := wait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("compose lab: etcd member %s not healthy 30s after start", member)
}

// etcdLeader asks each member's published client port for its status and
// returns the member that leads.
func (c *Compose) etcdLeader(ctx context.Context) (string, error) {
	var eps []string
	memberOf := map[string]string{}
	for _, m := range composeEtcdMembers {
		ep := strings.TrimPrefix(c.url(m), "http://")
		eps = append(eps, ep)
		memberOf[ep] = m
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("compose lab: etcd client: %w", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ep := range eps {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err == nil && st.Leader != 0 && st.Header.MemberId == st.Leader {
				return memberOf[ep], nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("compose lab: no etcd member reports itself leader")
		}
		if err := wait.Sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}
