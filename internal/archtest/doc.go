// Package archtest keeps the import arrows of docs/ARCHITECTURE.md. It holds
// no code but a test, run by `go test ./...` and so by CI, that lists every
// package of the module with `go list -deps -json` and fails, naming the
// importing package, the imported one and the rule, on each import across a
// forbidden arrow: events or auth importing more than each other and the
// leaves, a leaf importing more than the leaves, cluster reaching up to the
// node or the tools, adapter reaching etcd other than through
// cluster/protocol, adapter/assemble importing more than the parts it wires,
// a simulator reaching into the node, a production package depending on test
// support.
//
// What it does not check: test files (packages are read as built for a
// binary), packages outside the module, or what a package's doc says. A rule
// marked pending fails only while enforcePending is on (it is on); with it
// off, such a rule's violations are only printed in the test log.
//
// It is test support, never imported by production code, and it imports
// nothing of this module.
package archtest
