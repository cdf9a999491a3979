package cluster

import (
	"context"

	"github.com/zccadapter/zccadapter/auth"
	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// The etcd implementations of the protocol's interfaces.
var (
	_ protocol.Cluster         = protocolCluster{}
	_ protocol.Term            = (*Term)(nil)
	_ protocol.Mirror          = (*Mirror)(nil)
	_ protocol.HealthPublisher = (*HealthPublisher)(nil)
	_ auth.Store               = (*TokenStore)(nil)
)

// Protocol returns c as the etcd-free protocol.Cluster a node runs on: the
// same connection, whose Campaign, NewMirror, NewHealthPublisher and
// NewTokenStore return the protocol's interfaces instead of this package's
// types. It does no I/O; Close still closes c.
func (c *Cluster) Protocol() protocol.Cluster { return protocolCluster{c} }

// protocolCluster is a Cluster seen through protocol.Cluster. The methods
// that return this package's types are wrapped to return the interfaces (Go
// has no covariant results); the others are c's own.
type protocolCluster struct{ *Cluster }

func (p protocolCluster) Campaign(ctx context.Context, m protocol.Member) (protocol.Term, error) {
	t, err := p.Cluster.Campaign(ctx, m)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (p protocolCluster) NewMirror() protocol.Mirror { return p.Cluster.NewMirror() }

func (p protocolCluster) NewHealthPublisher() protocol.HealthPublisher {
	return p.Cluster.NewHealthPublisher()
}

func (p protocolCluster) NewTokenStore(clientSecret string) (auth.Store, error) {
	s, err := p.Cluster.NewTokenStore(clientSecret)
	if err != nil {
		return nil, err
	}
	return s, nil
}
