// Command bench runs every benchmark of zccadapter and prints one table in
// which each figure stands beside its reference, measured in the same run,
// and the budget it is held to (BENCHMARKS.md).
//
//	go run ./bench                 # everything, about 6 minutes on 2 cores
//	go run ./bench -drills 30      # 30 crash and 30 graceful failovers (about 8 more minutes)
//
// It builds the zccadapter binary (the failover and footprint benchmarks run
// it as OS processes), then runs `go test -run '^$' -bench …` on ./events
// (parse cost per event, -benchtime 1s), ./adapter (leader pipeline,
// latency, mirror lag: in-process lab, -benchtime 1x) and ./bench (failover
// drills, footprint, simulated etcd hour: processes and embedded etcd,
// -benchtime 1x), one package at a time so that nothing else competes for
// the two cores. The raw `go test` output, which benchstat reads, is kept
// in the file -raw names.
//
// A command of its own, never imported; its benchmarks (the _test.go files
// of this directory) drive real processes and embedded etcd. Nothing of a
// node imports bench or bench/kit (internal/archtest checks this).
package main
