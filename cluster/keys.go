package cluster

import "path"

// Keys names the cluster's etcd keys (the layout in the package doc). Tools
// that read etcd directly (doctor, benchmarks, tests) use it; a node never
// needs it.
type Keys struct{ root string }

func newKeys(prefix, cluster string) Keys {
	return Keys{root: "/" + path.Join(prefix, cluster) + "/"}
}

// Root is the prefix of every key of the cluster, ending in '/'.
func (k Keys) Root() string { return k.root }

// Election is the election prefix: the leader's key is its oldest key.
func (k Keys) Election() string { return k.root + "election/" }

// Member is a node's membership key.
func (k Keys) Member(node string) string { return k.root + "members/" + node }

// members is the membership prefix.
func (k Keys) members() string { return k.root + "members/" }

// Dedup is an applied event's key in the dedup log.
func (k Keys) Dedup(key string) string { return k.root + "dedup/" + key }

// DedupPrefix is the prefix of the dedup log.
func (k Keys) DedupPrefix() string { return k.root + "dedup/" }

// State is an engagement's state record.
func (k Keys) State(engagementID string) string { return k.root + "state/" + engagementID }

// statePrefix is the prefix of the replicated state.
func (k Keys) statePrefix() string { return k.root + "state/" }

// Handoff is an event's entry in the handoff queue.
func (k Keys) Handoff(key string) string { return k.root + "handoff/" + key }

// handoffPrefix is the prefix of the handoff queue.
func (k Keys) handoffPrefix() string { return k.root + "handoff/" }

// Quarantine is a quarantine entry's key (QuarantineEntry.ID).
func (k Keys) Quarantine(id string) string { return k.root + "quarantine/" + id }

// QuarantinePrefix is the prefix of the quarantine.
func (k Keys) QuarantinePrefix() string { return k.root + "quarantine/" }

// DeadLetter is an engagement's dead-letter entry.
func (k Keys) DeadLetter(engagementID string) string { return k.root + "deadletter/" + engagementID }

// DeadLetterPrefix is the prefix of the dead-letter set.
func (k Keys) DeadLetterPrefix() string { return k.root + "deadletter/" }

// health is a node's health key.
func (k Keys) health(node string) string { return k.root + "health/" + node }

// healthPrefix is the prefix of every node's health record.
func (k Keys) healthPrefix() string { return k.root + "health/" }

// token is the shared token's key.
func (k Keys) token() string { return k.root + "token" }

// epochBase holds the epoch base: a term's epoch is it plus the create
// revision of the leader's key (epoch.go).
func (k Keys) epochBase() string { return k.root + "epoch-base" }

// tokenLock is the prefix of the token mutex.
func (k Keys) tokenLock() string { return k.root + "token-lock/" }
