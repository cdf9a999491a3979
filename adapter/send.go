package adapter

import (
	"context"
	"errors"
	"time"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/rcapi"
)

// sendFenced runs one recorder call under the term's fencing, retrying it
// until the recorder answers: each try is bounded by the term's fencing
// deadline, re-derived per try (a try cut by the deadline is retried while
// the term is valid and L.ctx lives). Each try makes at most
// MaxAttempts attempts (WithAttemptLimit); when they run out the recorder is
// probed (deadletter.go): answering, the call gives up with an
// *errSuspended; answering nothing, it is down, and the call is tried again,
// round after round. It returns
//   - nil when call succeeded, or when the recorder refused it
//     (ErrInvalidTransition, ErrRejected): refused is called with that
//     error and the term goes on without it;
//   - an *errSuspended when the attempts ran out while the
//     recorder answers other requests;
//   - protocol.ErrFenced when the term is no longer valid (nothing sent);
//   - an ErrStaleEpoch error, after ending the term (the recorder knows a
//     newer epoch);
//   - any other error of call (the term stops).
//
// call counts its own success; it must not retry.
func (L *leader) sendFenced(call func(context.Context) error, refused func(error)) error {
	since := time.Now()
	for {
		if !L.term.Valid() {
			return protocol.ErrFenced
		}
		sctx, cancel := context.WithDeadline(WithAttemptLimit(L.ctx, L.n.cfg.MaxAttempts), L.term.Deadline())
		err := call(sctx)
		cancel()
		var x *ExhaustedError
		switch {
		case err == nil:
			L.recorderAnswered(true)
			return nil
		case errors.Is(err, ErrStaleEpoch):
			L.term.Lose(err)
			return err
		case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrRejected):
			L.recorderAnswered(false)
			refused(err)
			return nil
		case errors.As(err, &x):
			if L.probe() {
				return &errSuspended{x: x, since: since}
			}
			continue // down: another round
		case errors.Is(err, context.DeadlineExceeded) && L.ctx.Err() == nil:
			continue // the deadline moved on, or the term is fenced: checked above
		default:
			return err
		}
	}
}

// recorderAnswered notes that the recorder decided a call (ok: took it),
// which ends a "down" verdict; a success is the evidence that turns a
// suspension into a dead letter.
func (L *leader) recorderAnswered(ok bool) {
	if ok {
		L.lastOK = time.Now()
	}
	if L.recorderDown {
		L.recorderDown = false
		L.n.count(func(s *NodeStatus) { s.RecorderDown = false })
		L.log.Info().Msg("recorder answers again")
	}
}

// probe reports whether the recorder answers a request now (its open
// recordings, within probeBudget and the fencing deadline); when it does
// not, the recorder is down (status, one warning per outage).
func (L *leader) probe() bool {
	pctx, cancel := context.WithDeadline(L.ctx, L.term.Deadline())
	defer cancel()
	pctx, cancel2 := context.WithTimeout(pctx, probeBudget)
	defer cancel2()
	_, err := L.n.sink.OpenRecordings(pctx)
	if err == nil {
		return true
	}
	if !L.recorderDown && L.ctx.Err() == nil {
		L.recorderDown = true
		L.n.count(func(s *NodeStatus) { s.RecorderDown = true })
		L.log.Warn().Err(err).Msg("recorder down: it answers nothing; commands are held and retried with the same ids")
	}
	return false
}

// send delivers command c of event's engagement (sendFenced); a refused
// command is reported (refused: an alert). An *errSuspended means the
// engagement must wait behind it.
func (L *leader) send(c rcapi.Command) error {
	return L.sendFenced(func(ctx context.Context) error {
		res, err := L.n.sink.Send(ctx, c)
		if err == nil {
			L.n.count(func(s *NodeStatus) {
				s.Commands++
				if res == rcapi.ResultDuplicate {
					s.Duplicates++
				}
			})
		}
		return err
	}, func(err error) { L.refused(c, err) })
}

// sendAgent delivers one roster update under the same fencing rules as
// commands (sendFenced); a refused update is logged, and so is one
// whose attempts ran out while the recorder answers (it is dropped: the
// agent's next update supersedes it; counted as dead-lettered).
func (L *leader) sendAgent(u rcapi.AgentUpdate) error {
	err := L.sendFenced(func(ctx context.Context) error {
		_, err := L.n.sink.SendAgent(ctx, u)
		if err == nil {
			L.n.count(func(s *NodeStatus) { s.AgentUpdates++ })
		}
		return err
	}, func(err error) {
		L.log.Error().Err(err).Str("agent_id", u.AgentID).Msg("recorder refused an agent update")
	})
	var s *errSuspended
	if errors.As(err, &s) {
		L.n.count(func(s *NodeStatus) { s.DeadLettered++ })
		_, reason := reasonOf(rcapi.Command{Action: "agent update", SegmentID: u.AgentID, ID: u.ID}, s.x)
		L.log.Error().Str("agent_id", u.AgentID).Str("reason", reason).Msg("the recorder refuses an agent update while it takes other requests; dropped")
		return nil
	}
	return err
}
