package adapter

import (
	"context"
	"errors"
	"time"

	"github.com/zccadapter/zccadapter/rcapi"
)

// fenceKeeper is a Sink whose recorder's epoch fence a leader keeps up
// (HTTPSink): the leader re-announces its epoch every EpochReannounce and
// whenever Recovered delivers, so that a recorder that lost its fence gets
// it back before a deposed leader's message arrives.
type fenceKeeper interface {
	// EpochReannounce is the period; ≤ 0: no re-announcement.
	EpochReannounce() time.Duration
	// Recovered delivers a value when the recorder answers after failed
	// attempts.
	Recovered() <-chan struct{}
}

// startFenceKeeper runs keepFence on one of the term's watchers (joined by
// stopTerm) when the sink is a fenceKeeper with a positive period. It does
// not block.
func (L *leader) startFenceKeeper() {
	fk, ok := L.n.sink.(fenceKeeper)
	if !ok || fk.EpochReannounce() <= 0 {
		return
	}
	L.watchers.Add(1)
	go func() {
		defer L.watchers.Done()
		L.keepFence(fk)
	}()
}

// keepFence re-announces the term's epoch to the recorder (POST /v1/epoch)
// every period and after each recovery of the recorder, until L.ctx ends.
// Each claim is fenced like a command: sent only while the term is valid
// and bounded by its fencing deadline. A stale-epoch answer ends the term
// (L.term.Lose), like a command's; a claim the recorder took as new
// although it had taken it before is the sink's to log and count
// (HTTPSink.ClaimEpoch). Other errors are logged at Debug: the sink has
// already reported the recorder down.
func (L *leader) keepFence(fk fenceKeeper) {
	tick := time.NewTicker(fk.EpochReannounce())
	defer tick.Stop()
	claim := rcapi.EpochClaim{Epoch: L.term.Epoch(), Node: L.n.cfg.Name}
	for {
		select {
		case <-L.ctx.Done():
			return
		case <-tick.C:
		case <-fk.Recovered():
		}
		if !L.term.Valid() || L.ctx.Err() != nil {
			continue // the term is ending; L.ctx follows
		}
		ctx, cancel := context.WithDeadline(L.ctx, L.term.Deadline())
		err := L.n.sink.ClaimEpoch(ctx, claim)
		cancel()
		var se *StaleEpochError
		switch {
		case err == nil:
		case errors.As(err, &se):
			L.log.Error().Int64("recorder_epoch", se.Epoch).Msg("the recorder has seen a higher epoch than this term's: ending the term")
			L.term.Lose(err)
			return
		case L.ctx.Err() != nil:
			return
		case errors.Is(err, ErrRejected):
			L.log.Error().Err(err).Msg("the recorder refused the epoch re-announcement as malformed")
		default:
			L.log.Debug().Err(err).Msg("epoch re-announcement failed; retried at the next period")
		}
	}
}
