// Package cluster is everything zccadapter keeps in etcd, and the etcd
// implementation of the contract of cluster/protocol: the session and
// election of the pair, the epoch (fencing token), the self-fencing deadline,
// the leader's guarded batch writes (Term.CommitBatch builds every etcd txn
// of the leader: engagement state, dedup log, handoff queue), the handoff of
// events from a standby, the standby's mirror, node health and membership,
// the shared OAuth token (the etcd implementation of auth.Store) and the
// embedded etcd member. It is the only package that speaks etcd; the node
// runtime sees it through the etcd-free interfaces of package protocol
// (Cluster.Protocol).
//
// Keys live under /<prefix>/<cluster>/ (DESIGN §4):
//
//	election/<lease>   the election (go.etcd.io/etcd/client/v3/concurrency)
//	members/<node>     membership, bound to the node's session lease
//	health/<node>      the node's socket health, bound to a lease of its own
//	dedup/<key>        an applied event's dedup key, bound to a dedup-window lease
//	state/<eng>        one engagement's recording state (JSON; once closed, bound to the dedup-window lease)
//	handoff/<key>      an event owed to the log: handed off by a standby, or held by the leader
//	token              the shared access token, encrypted (AES-GCM)
//	token-lock/        the etcd mutex that makes token fetching single-flight
//
// Every write of a leader is a txn guarded by CreateRevision(election key) ==
// epoch; a guard that fails ends the term.
//
// What this package does not guarantee: a Term is a belief, not a proof. A
// leader that is partitioned from etcd keeps its Term until its self-fencing
// deadline (session TTL − FenceMargin after its last keepalive that etcd
// acknowledged); etcd only elects a successor after the lease has expired on
// the server, and the recorder's epoch check is the second line of defence
// (G3). Clocks are assumed to run at the same rate on both nodes; their
// offsets do not matter. A batch too large for one txn (etcd's limits on
// operations and request bytes) is split, and a crash between its txns leaves
// state ahead of the log, where replaying those events yields no command that
// was not already sent.
//
// It never imports adapter, doctor, cmd, deploy, sim, bench, faultnet or
// internal: arrows run from the node down to the cluster, never back
// (internal/archtest checks this).
package cluster
