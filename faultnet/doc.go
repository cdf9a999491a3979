// Package faultnet is a TCP proxy for failure tests: it sits between a node
// and etcd (or any TCP peer) and can pass traffic, cut it (close every
// connection and refuse new ones, as a crashed peer or a firewall reject
// would), blackhole it (keep connections open but deliver nothing, as a
// silent partition would) or delay it; latency and blackholes can also be set
// for one direction only (SetLatency, SetBlackhole), as on an asymmetric
// path. Modeled on etcd's integration test
// bridge. Used by in-process tests and by local drills.
//
// It is test support: never imported by production code (internal/archtest
// checks this), and it imports nothing of this module.
package faultnet
