// Package doctor checks a node's setup end to end and surveys a running
// cluster: the logic of `zccadapter doctor` (Run) and `zccadapter status`
// (Survey).
//
// Run walks the seed's procedure for one node's configuration: the
// Server-to-Server credentials get a token; the token's scopes cover the
// minimum list (PROTOCOL §4); this node's subscription URL connects and
// answers a heartbeat; no other live member uses the same subscription; the
// recorder answers; etcd is reachable, has a quorum, writes quickly and
// compacts its history; the clock agrees with etcd's and Zoom's. Each check ends pass, fail (with a
// one-line fix) or skip (it depends on one that failed, or cannot be
// measured here).
//
// What it does not guarantee: every check is a sample at one moment. Run
// fetches a token of its own from Zoom (not the cluster's shared one) and
// writes and deletes one key under the cluster's prefix. It does not probe
// a subscription that a live node holds — this node running with its socket
// up, or another node on the same subscription — because Zoom may answer a
// second socket by closing the first, and events sent in between would be
// lost to that node; Options.ProbeRunning overrides this.
// Clock skew is measured against HTTP Date headers (one-second resolution),
// so only an offset beyond that resolution is detected.
//
// It is a tool beside the node: it reads the cluster (package cluster, and
// etcd directly for members without quorum), a node's /status document
// (adapter's NodeStatus) and the configuration (config, with the mapping of
// adapter/assemble), and talks to Zoom (auth, events) and the recorder
// (rcapi). Nothing of a node imports it, and it never imports cmd or test
// support (sim, bench, deploy, faultnet, internal).
package doctor
