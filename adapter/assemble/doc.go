// Package assemble assembles one RIS node from its configuration as
// `zccadapter run` does: the etcd cluster connection's protocol view, the
// shared token source, the subscription client, the recorder sink, the
// node. It also holds the mappings from the configuration that the tools
// share with the node: the cluster's configuration (ClusterConfig) and the
// recorder's HTTP client (RecorderClient).
//
// It is the only package of the node's side that imports both adapter and
// cluster: adapter sees the cluster only through cluster/protocol, and this
// package hands it (*cluster.Cluster).Protocol(). It owns no behaviour of
// its own beyond checking the config values the node does not name, and it
// never imports doctor, cmd or test support (sim, bench, deploy, faultnet,
// internal); internal/archtest checks this.
package assemble
