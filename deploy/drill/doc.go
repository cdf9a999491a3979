// Package drill runs failover drills against a real cluster: by default
// local OS processes (one etcd member, the simulated Zoom, the reference
// recorder and RIS nodes a, b, …, each on its own subscription), or the
// docker-compose lab. A Scenario says what traffic to run and which faults
// to inject when; the default one SIGKILLs the leader mid-traffic and
// restarts it as standby, later SIGTERMs the new leader. Afterwards the drill
// verifies the guarantees of DESIGN §3 from the recorder's ledger and the
// simulator's ground truth:
//
//	G1 no lost command      every recording action of the truth reached the recorder
//	G2 no duplicate effect  no segment got an action twice; repeats were absorbed by id
//	G3 fencing              no command was applied with an epoch lower than one applied before it
//	G4 failover time        graceful takeover < 250ms, crash takeover < session TTL + 1s
//	G6 order                the recorder refused no command as out of order
//
// Times are measured on one machine clock: the fault's moment in the drill,
// the election's in the node's status, the takeover's at the recorder (the
// new leader's epoch claim).
//
// What a drill does not show: G5 (the standby's view) and G7–G9 are not among
// the invariants it verifies, and a passing drill is one run of one scenario.
//
// It is tooling: `zccadapter drill` and the benchmarks use it; never imported
// by production code (internal/archtest checks this). It reads nodes through
// their /status (adapter's NodeStatus), the recorder through rcapi, and
// verifies with sim/verify.
package drill
