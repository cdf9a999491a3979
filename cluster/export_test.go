package cluster

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Unexported names the external tests (package cluster_test) use.

var (
	ErrTokenUnreadable = errTokenUnreadable
	ErrTokenConflict   = errTokenConflict
	MaxTxnOps          = maxTxnOps
	MaxTxnBytes        = maxTxnBytes
)

func (c *Config) Validate() error { return c.validate() }

func (k Keys) Token() string { return k.token() }

func (t *Term) LeaderKey() string { return t.key }

func (t *Term) Done() <-chan struct{} { return t.done }

func (t *Term) CommitOps(ctx context.Context, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	return t.commit(ctx, ops...)
}
