// Package adapter is the recording logic of zccadapter and the runtime of one
// RIS node.
//
// It owns:
//
//   - the recording rules (DESIGN §5): the engagement and segment state
//     machines of [Rules], which turn Zoom Contact Center events into Recording
//     Control API commands with deterministic ids ([CommandID]: the same fact
//     gets the same id on every node), and the agent roster updates;
//   - the recorder [Sink] and its HTTP implementation, which retries a command
//     with the same id until the recorder decides or the context ends;
//   - the [Node]: one goroutine owns its role (starting, standby, promoting,
//     leader, stopping), and each role and step is a function of its own. The
//     node runs its subscription and receives each event through the deliver
//     function it passes to the subscription's Run. As standby it keeps every
//     event of its own socket in a bounded pending set and hands to the leader,
//     through the cluster, each one the leader's log does not show after the
//     handoff grace. As leader it promotes (state at the latest revision,
//     epoch claim, reconciliation with the recorder's open recordings, the
//     backlog in event time order), then applies each event: rules, send to
//     the recorder, then log the event's dedup key and its engagement's state
//     in a guarded batch (the term's CommitBatch), never the other way round;
//   - the node's status and its /healthz, /readyz, /status and /metrics.
//
// The route of one event, and what the standby does with it, is drawn in
// docs/ARCHITECTURE.md.
//
// What this package does not guarantee:
//
//   - One send per command. A command can reach the recorder more than once (a
//     retry after a timeout, or a successor replaying an event the old leader
//     sent but had not logged); it carries the same id each time, and the
//     recorder answers duplicate (G2). A recorder that forgets ids applies it
//     again.
//   - Events no socket delivered. An event reaches the leader from its own
//     socket or from a standby's handoff; one that neither subscription
//     delivered is not recovered.
//   - Fencing on its own. A term is the node's belief that it leads: the leader
//     stops sending at the term's self-fencing deadline, and it is the
//     recorder's epoch check that refuses a deposed leader (G3).
//   - Every pending event kept. The pending set is bounded
//     (NodeConfig.MaxPending) and an event waits at most half the dedup
//     window: beyond either it is dropped and counted.
//
// It sees the cluster only through the records and interfaces of
// cluster/protocol: it never imports package cluster or the etcd client
// (adapter/assemble wires a cluster into a node), nor doctor, cmd, or test
// support (sim, bench, deploy, faultnet, internal). internal/archtest checks
// this.
package adapter
