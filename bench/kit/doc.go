// Package kit holds what the benchmarks of zccadapter share: a corpus of
// realistic Zoom events recorded from the traffic model, an open-loop pacer,
// percentiles, wrappers of the etcd client that time leader commits and
// standby watch deliveries, the conversion of recorded events into the
// leader's writes, and readers of process metrics.
//
// It is test support: never imported by production code (internal/archtest
// checks this); only the benchmarks of bench, adapter and events import it.
package kit
