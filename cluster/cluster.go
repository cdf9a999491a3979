package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/zccadapter/zccadapter/cluster/protocol"
)

// Cluster is a node's connection to the cluster's etcd. Safe for concurrent
// use. Close releases it. Protocol returns it as the etcd-free
// protocol.Cluster a node runs on.
type Cluster struct {
	cfg    Config
	keys   Keys
	client *clientv3.Client
	log    zerolog.Logger
	// abandoned counts etcd calls a caller stopped waiting for (a
	// campaign cancelled while etcd does not answer); Close joins them.
	abandoned sync.WaitGroup
	// handoffLease and quarantineLease are the shared leases of handoff
	// entries (one dedup window) and quarantine entries (QuarantineTTL).
	handoffLease, quarantineLease sharedLease
}

// Connect dials etcd with cfg (defaults applied, then validated: an invalid
// field is named in the error). It does not block on the connection beyond
// cfg.DialTimeout; ctx bounds the first read that verifies it.
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*Cluster, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cc, err := cfg.ClientConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("connect etcd %v: %w", cfg.Endpoints, err)
	}
	c := &Cluster{cfg: cfg, keys: newKeys(cfg.Prefix, cfg.Cluster), client: cli,
		log: log.With().Str("component", "cluster").Logger()}
	sctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(sctx, c.keys.Root()+"probe"); err != nil {
		cli.Close()
		return nil, fmt.Errorf("connect etcd %v: %w", cfg.Endpoints, err)
	}
	return c, nil
}

// Config returns the effective configuration (defaults applied).
func (c *Cluster) Config() Config { return c.cfg }

// Settings returns the node id and the timings a node acts on (defaults
// applied). It does no I/O.
func (c *Cluster) Settings() protocol.Settings {
	return protocol.Settings{Node: c.cfg.Node, SessionTTL: c.cfg.SessionTTL, DedupWindow: c.cfg.DedupWindow}
}

// Keys returns the cluster's key names.
func (c *Cluster) Keys() Keys { return c.keys }

// Client returns the etcd client; it stays owned by the Cluster (Close
// closes it).
func (c *Cluster) Client() *clientv3.Client { return c.client }

// Close closes the etcd client and waits for the etcd calls that callers
// abandoned (a campaign cancelled while etcd did not answer), which closing
// the client ends. Terms, mirrors and health publishers must be stopped
// first.
func (c *Cluster) Close() error {
	err := c.client.Close()
	c.abandoned.Wait()
	return err
}

// Members lists the live members of the cluster; records that do not decode
// are skipped. ctx bounds the read.
func (c *Cluster) Members(ctx context.Context) ([]protocol.Member, error) {
	resp, err := c.client.Get(ctx, c.keys.members(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	out := make([]protocol.Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var m protocol.Member
		if json.Unmarshal(kv.Value, &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// Leader returns the current leader's node id and epoch (the epoch base
// plus the create revision of its key, as Term.Epoch), or "" and 0 if none
// leads. ctx bounds the read.
func (c *Cluster) Leader(ctx context.Context) (string, int64, error) {
	resp, err := c.client.Txn(ctx).Then(
		clientv3.OpGet(c.keys.Election(), clientv3.WithFirstCreate()...),
		clientv3.OpGet(c.keys.epochBase()),
	).Commit()
	if err != nil {
		return "", 0, fmt.Errorf("read leader: %w", err)
	}
	lead := resp.Responses[0].GetResponseRange().Kvs
	if len(lead) == 0 {
		return "", 0, nil
	}
	base, err := parseEpochBase(resp.Responses[1].GetResponseRange().Kvs)
	if err != nil {
		return "", 0, err
	}
	return string(lead[0].Value), base + lead[0].CreateRevision, nil
}
