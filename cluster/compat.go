package cluster

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// This file keeps package adapter compiling until it runs on package
// protocol (through Cluster.Protocol and Term.CommitBatch). Nothing else
// uses these names; delete the file when adapter no longer does.

// Member is protocol.Member, under its old name for package adapter.
type Member = protocol.Member

// Health is protocol.Health, under its old name for package adapter.
type Health = protocol.Health

// Handoff is protocol.Handoff, under its old name for package adapter.
type Handoff = protocol.Handoff

// Snapshot is protocol.Snapshot, under its old name for package adapter.
type Snapshot = protocol.Snapshot

// ErrFenced is protocol.ErrFenced, under its old name for package adapter.
var ErrFenced = protocol.ErrFenced

// Commit runs ops in one etcd transaction guarded by
// CreateRevision(leaderKey) == epoch (DESIGN §4). It returns
// protocol.ErrFenced without writing when the term is no longer Valid, and
// protocol.ErrNotLeader (ending the term) when the guard fails. ctx bounds
// the call. For package adapter until it uses CommitBatch.
func (t *Term) Commit(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return t.commit(ctx, ops...)
}

// DedupLease returns a lease for dedup records and closed engagements: it
// lives one DedupWindow from its grant. A new lease is granted when the
// current one is older than a quarter window, so a record lives between 3/4
// and 1 window. ctx bounds a grant. For package adapter until it uses
// CommitBatch.
func (t *Term) DedupLease(ctx context.Context) (clientv3.LeaseID, error) { return t.dedupLease(ctx) }

// ForgetDedupLease makes the next DedupLease grant a new lease (after a txn
// failed because the lease was gone). For package adapter until it uses
// CommitBatch.
func (t *Term) ForgetDedupLease() { t.forgetDedupLease() }

// IsLeaseNotFound reports whether err says a lease no longer exists. For
// package adapter until it uses CommitBatch.
func IsLeaseNotFound(err error) bool { return isLeaseNotFound(err) }
