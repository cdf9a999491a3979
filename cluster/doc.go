// Package cluster holds everything the adapter keeps in etcd: the session and
// election of the 1+1 pair, the epoch (fencing token), the self-fencing
// deadline, the dedup log, the handoff of events between nodes, the
// replicated engagement state, membership, and the shared OAuth token. It is
// the only package that speaks etcd; the node runtime sees it through the
// etcd-free interfaces of package protocol (Cluster.Protocol).
//
// Keys live under /<prefix>/<cluster>/ (DESIGN §4):
//
//	election/<lease>   the election (go.etcd.io/etcd/client/v3/concurrency)
//	members/<node>     membership, bound to the node's session lease
//	health/<node>      a node's socket health, bound to a lease of its own
//	dedup/<key>        an applied event's dedup key, bound to a dedup-window lease
//	state/<eng>        one engagement's recording state (JSON)
//	handoff/<key>      an event a standby saw that the leader's log did not show
//	token              the shared access token, encrypted (AES-GCM)
//	token-lock/        the etcd mutex that makes token fetching single-flight
//
// What this package does not guarantee: a Term is a belief, not a proof. A
// leader that is partitioned from etcd keeps its Term until its self-fencing
// deadline (last keepalive ack + TTL − FenceMargin); etcd only elects a
// successor after the lease has expired on the server, and the recorder's
// epoch check is the second line of defence (G3). Clocks are assumed to run
// at the same rate on both nodes; their offsets do not matter.
package cluster
