package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/zccadapter/zccadapter/redact"
)

// quarantineNewest is how many of the newest quarantine entries the check
// names.
const quarantineNewest = 3

// checkQuarantine reports the cluster's quarantine: inputs the nodes put
// aside because they must never reach the rules (a malformed or
// implausible event, an unreadable handoff entry or state record). Entries
// are evidence, not a fault of this node's setup, so the check passes
// whatever their number, and says how many there are and why the newest
// were put there (never their raw input).
func (r *run) checkQuarantine(ctx context.Context) Result {
	if r.cl == nil {
		return skip("etcd not reachable (see %s)", CheckEtcdReachable)
	}
	qctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	count, newest, err := r.cl.Quarantined(qctx, quarantineNewest)
	if err != nil {
		return fail(fixEtcdDown, "reading the quarantine: %v", err)
	}
	if count == 0 {
		return pass("quarantine empty: no input was put aside")
	}
	var reasons []string
	for _, e := range newest {
		reasons = append(reasons, fmt.Sprintf("%s %s from %s: %s", e.At.Format("2006-01-02T15:04:05Z"), e.Node, e.Source,
			redact.Truncate(e.Reason, 160)))
	}
	return pass("quarantine holds %d input(s) never applied (kept etcd.quarantine_ttl); newest: %s", count, strings.Join(reasons, "; "))
}
