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
//	handoff/<key>      an event owed to the log: handed off by a standby, or held by the leader (dedup-window lease)
//	quarantine/<id>    an input put aside, never applied (quarantine lease, newest QuarantineMax kept)
//	deadletter/<eng>   an engagement parked behind a command the recorder kept refusing (JSON protocol.DeadLetter)
//	token              the shared access token, encrypted (AES-GCM)
//	token-lock/        the etcd mutex that makes token fetching single-flight
//	epoch-base         the epoch base (decimal), raised by BumpEpoch
//
// A term's epoch, the fencing token every recorder command carries, is the
// epoch base plus the create revision of the leader's election key; every
// leader write to etcd is guarded by the create revision alone. The base is
// 0 until an operator raises it after restoring etcd from a backup, whose
// revisions are lower than the epochs the recorder has seen (README, "etcd
// restored from a backup"). Epochs rise from term to term.
//
// The self-fencing deadline. A leader stops acting at s + TTL −
// FenceMargin, where s is the time, on the monotonic clock, at which it sent
// the last keepalive that etcd acknowledged. etcd's lease primary renews a
// lease to "now + TTL" when it processes the keepalive (lessor.Renew in
// go.etcd.io/etcd/server/v3/lease/lessor.go), which is after s; renewals and
// etcd leader changes only move the expiry later. So the server's expiry is
// at least s + TTL whatever the delays of the request and of its ack, and
// the deadline comes FenceMargin before it. etcd deletes the leader's key,
// and a successor's Campaign can return, only after that expiry: the old
// term's deadline has passed before a new term begins. (Counting from the
// ack's arrival instead would let a slow return path push the deadline past
// the server's expiry; a wall clock stepped backwards would too.)
//
// Every write of a leader is a txn guarded by CreateRevision(election key) ==
// epoch; a guard that fails ends the term.
//
// What this package does not guarantee: a Term is a belief, not a proof. A
// leader that is partitioned from etcd keeps its Term until its self-fencing
// deadline; etcd only elects a successor after the lease has expired on the
// server, and the recorder's epoch check is the second line of defence (G3).
// Clocks are assumed to run at the same rate on the nodes and the etcd
// members (the bound loses what the clocks drift apart within one TTL);
// their offsets do not matter. A batch too large for one txn (etcd's limits on
// operations and request bytes) is split, and a crash between its txns leaves
// state ahead of the log, where replaying those events yields no command that
// was not already sent.
//
// It never imports adapter, doctor, cmd, deploy, sim, bench, faultnet or
// internal: arrows run from the node down to the cluster, never back
// (internal/archtest checks this).
package cluster
