// Package protocol is the contract between a node's runtime (package
// adapter) and the cluster it runs on (package cluster, on etcd): the
// records a node reads and writes, the errors it tests for, the facts of the
// cluster's configuration it acts on, and the interfaces the cluster
// implements. The adapter depends on this package only, so it can run on a
// fake cluster in tests and never sees etcd's key layout, transactions or
// leases.
//
// It owns no behaviour: every contract stated here is kept by package
// cluster (DESIGN §4 describes the protocol on etcd). It never imports etcd,
// package cluster or package adapter; besides the standard library it
// imports only package auth, for the token store's interface.
package protocol
