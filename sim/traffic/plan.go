package traffic

import (
	"math/rand/v2"
	"time"
)

// callPlan is the story of one call, a pure function of (Config, call index): nothing in it
// depends on timing or goroutine scheduling. Offsets are from the moment the call is
// answered. Whether a planned transfer happens, and which agents take the call, are decided
// at run time.
type callPlan struct {
	Index      int
	Outbound   bool
	Queue      int           // index into site.inboundQueues (inbound calls)
	Talk       time.Duration // answer to end of the conversation
	Hold       bool
	HoldAt     time.Duration // offset of the hold
	HoldFor    time.Duration // hold length; HoldAt+HoldFor <= the end of its part of the talk
	Transfer   bool          // inbound only
	TransferAt time.Duration // offset of the transfer
	ToQueue    int           // index into site.inboundQueues, != Queue
	AgentEnds  bool          // the agent ends the call (user_ended first); else the consumer hangs up
	WrapUp     time.Duration // the last agent's wrap-up, 1-2 s
	OldWrapUp  time.Duration // the transferring agent's wrap-up, 1-2 s
}

// Seed streams: each random sequence the model draws from has its own stream, so one
// sequence never shifts another.
const (
	streamArrivals uint64 = 0x6172726976616c73 // "arrivals"
	streamCall     uint64 = 0x63616c6c00000000 // + call index
)

func callRNG(seed int64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), streamCall+uint64(index)*0x9E3779B97F4A7C15))
}

func arrivalRNG(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), streamArrivals))
}

// uniform returns a duration in [lo, hi].
func uniform(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
}

// planCall draws the story of call index. Every draw is made whatever the settings, in a
// fixed order, so changing one probability does not reshuffle the other parts of a story.
func planCall(cfg Config, nQueues, index int) callPlan {
	r := callRNG(cfg.Seed, index)
	p := callPlan{Index: index}

	outboundDraw := r.Float64()
	holdDraw := r.Float64()
	transferDraw := r.Float64()
	p.Talk = uniform(r, time.Duration(cfg.MinCall), time.Duration(cfg.MaxCall))
	p.Queue = r.IntN(nQueues)
	p.ToQueue = (p.Queue + 1 + r.IntN(nQueues-1)) % nQueues
	transferFrac := 0.3 + 0.4*r.Float64()
	holdAfterTransfer := r.IntN(2) == 1
	holdLen := uniform(r, time.Second, 5*time.Second)
	holdPos := r.Float64()
	p.AgentEnds = r.IntN(2) == 1
	p.WrapUp = uniform(r, time.Second, 2*time.Second)
	p.OldWrapUp = uniform(r, time.Second, 2*time.Second)

	p.Outbound = outboundDraw < prob(cfg.OutboundFraction)
	p.Hold = holdDraw < prob(cfg.HoldProbability)
	p.Transfer = !p.Outbound && transferDraw < prob(cfg.TransferProbability)
	if p.Outbound {
		p.AgentEnds = true // outbound: the agent ends the call, then the consumer leg ends
	}

	// The hold happens inside one part of the talk: before or after the transfer point.
	start, end := time.Duration(0), p.Talk
	if p.Transfer {
		p.TransferAt = time.Duration(float64(p.Talk) * transferFrac)
		if holdAfterTransfer {
			start = p.TransferAt
		} else {
			end = p.TransferAt
		}
	}
	if p.Hold {
		part := end - start
		p.HoldFor = holdLen
		if p.HoldFor > part/2 {
			// Too short a part for a 1-5 s hold: scale it to 10-50 % of the part.
			p.HoldFor = time.Duration(float64(part) * float64(holdLen) / float64(10*time.Second))
		}
		p.HoldAt = start + time.Duration(holdPos*float64(part-p.HoldFor))
	}
	return p
}
