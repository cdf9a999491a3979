// Package archtest keeps the import arrows of docs/ARCHITECTURE.md. It holds
// no code but a test, run by `go test ./...` and so by CI, that lists every
// package of the module with `go list -deps -json` and fails, naming the
// importing package, the imported one and the rule, on each import across a
// forbidden arrow: events or auth importing more than each other and the
// leaves, a leaf importing more than the leaves, cluster reaching up to the
// node or the tools, adapter reaching etcd other than through
// cluster/protocol, a simulator reaching into the node, a production package
// depending on test support.
//
// What it does not check: test files (packages are read as built for a
// binary), packages outside the module, or what a package's doc says. A rule
// marked pending is printed in the test log but fails only once
// enforcePending is switched on.
//
// It is test support, never imported by production code, and it imports
// nothing of this module.
package archtest
