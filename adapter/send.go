package adapter

import (
	"context"
	"errors"

	"github.com/zccadapter/zccadapter/cluster/protocol"
	"github.com/zccadapter/zccadapter/rcapi"
)

// sendFenced runs one recorder call under the term's fencing, retrying it
// until the recorder answers: each try is bounded by the term's fencing
// deadline, re-derived per try (a try cut by the deadline is retried while
// the term is valid and L.ctx lives). It returns
//   - nil when call succeeded, or when the recorder refused it
//     (ErrInvalidTransition, ErrRejected): refused is called with that
//     error and the term goes on without it;
//   - protocol.ErrFenced when the term is no longer valid (nothing sent);
//   - an ErrStaleEpoch error, after ending the term (the recorder knows a
//     newer epoch);
//   - any other error of call (the term stops).
//
// call counts its own success; it must not retry.
func (L *leader) sendFenced(call func(context.Context) error, refused func(error)) error {
	for {
		if !L.term.Valid() {
			return protocol.ErrFenced
		}
		sctx, cancel := context.WithDeadline(L.ctx, L.term.Deadline())
		err := call(sctx)
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrStaleEpoch):
			L.term.Lose(err)
			return err
		case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrRejected):
			refused(err)
			return nil
		case errors.Is(err, context.DeadlineExceeded) && L.ctx.Err() == nil:
			continue // the deadline moved on, or the term is fenced: checked above
		default:
			return err
		}
	}
}

// send delivers one command (sendFenced); a refused command is reported
// (refused: an alert).
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
// commands (sendFenced); a refused update is logged.
func (L *leader) sendAgent(u rcapi.AgentUpdate) error {
	return L.sendFenced(func(ctx context.Context) error {
		_, err := L.n.sink.SendAgent(ctx, u)
		if err == nil {
			L.n.count(func(s *NodeStatus) { s.AgentUpdates++ })
		}
		return err
	}, func(err error) {
		L.log.Error().Err(err).Str("agent_id", u.AgentID).Msg("recorder refused an agent update")
	})
}
