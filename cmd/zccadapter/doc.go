// Command zccadapter is the Zoom Contact Center recording adapter: one
// binary for a RIS node (run), its operators' tools, the drill, the
// simulators and an embedded etcd member.
//
//	run                  run one RIS node (adapter/assemble builds it from --config)
//	status               the pair at a glance: leader, epoch, each node, the recorder
//	doctor               check this node's setup end to end and say how to fix each failure
//	auth exchange        trade an authorization code for a refresh token, stored in the cluster
//	auth token           the cluster's token: granted scopes, expiry, missing minimum scopes
//	health --url URL     exit 0 when URL answers 200 (a container healthcheck without a shell)
//	etcd                 run an etcd member (embedded etcd server) until interrupted
//	drill                run a failover drill on local processes (or --compose) and verify the guarantees
//	sim zoom             run the simulated Zoom
//	sim recorder         run the reference recorder
//	service              install, remove or run a node as a Windows service
//	version              print the version
//
// main only calls run, under signal.NotifyContext (interrupt and SIGTERM): a
// signal cancels the command's context and the subcommand shuts down. An
// error is printed and exits non-zero, with the error's own exit code when
// it carries one (status 2 on problems, doctor and drill 1 on a failure,
// an interrupted drill 130).
//
// It may import every package of this module, simulators and drill
// included; nothing imports it.
package main
