package protocol

import "errors"

// Errors of the cluster protocol. Callers test for them with errors.Is; a
// Term's Err is one of them (or a cause given to Term.Lose) once the term
// has ended.
var (
	// ErrFenced is returned when the self-fencing deadline passed before the
	// call: the node may no longer send recorder commands or write as leader.
	// It is also a Term's Err when the deadline passed without a new
	// keepalive ack.
	ErrFenced = errors.New("cluster: self-fencing deadline passed")
	// ErrNotLeader is returned by Term.CommitBatch when the election key's
	// create revision no longer equals the term's epoch: another node leads,
	// or the lease expired. The term has ended with it; the caller must stop
	// acting as leader at once.
	ErrNotLeader = errors.New("cluster: not the leader any more")
	// ErrSessionLost is a Term's Err (and Campaign's error) when its lease
	// stopped being refreshed: etcd unreachable for longer than the TTL, or
	// the lease was revoked.
	ErrSessionLost = errors.New("cluster: session lease lost")
	// ErrPhantomLeader is returned by Campaign when the election reported
	// success but the node's own key or session was gone (an etcd trap:
	// Campaign may return after the session expired). The caller campaigns
	// again with a new session.
	ErrPhantomLeader = errors.New("cluster: campaign returned without a live key and session")
)
