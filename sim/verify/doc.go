// Package verify checks a recorder's ledger against the simulator's ground
// truth: the guarantees of DESIGN §3 that a ledger can show (G1 no lost
// command, G2 no duplicate effect, G3 fencing, G6 order). Drills and
// in-process tests share it.
//
// What it does not check: G4 (the drill times failovers itself), G5 and
// G7–G9, which a ledger cannot show.
//
// It is test support: production code never imports it. Like every sim
// package, it imports of this module only the wire vocabulary (events, auth,
// rcapi), other sim packages and the leaves redact and wait; never the node's
// or the cluster's packages. internal/archtest checks both.
package verify
