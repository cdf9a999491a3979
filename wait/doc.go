// Package wait owns the project's one context-aware sleep and its one
// exponential backoff policy. Every retry loop (subscription reconnects,
// recorder sends, campaigns, etcd handoffs, the drill's polls) waits through
// it, so that "stop waiting when the context ends" and "how fast do we back
// off" are written once.
//
// It is a leaf: it imports nothing of this module, and every package may
// import it, including events and auth.
package wait
