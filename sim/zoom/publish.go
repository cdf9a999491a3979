package zoom

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/zccadapter/zccadapter/events"
)

// Message-frame header names (PROTOCOL §1).
const (
	HeaderTimestamp = "x-zm-request-timestamp"
	HeaderSignature = "x-zm-signature"
)

// envelope is an event as Zoom sends it (PROTOCOL §3).
type envelope struct {
	Event   string  `json:"event"`
	EventTS int64   `json:"event_ts"`
	Payload payload `json:"payload"`
}

type payload struct {
	AccountID string         `json:"account_id"`
	Object    map[string]any `json:"object"`
}

// Publish wraps object in Zoom's envelope — {"event":name,"event_ts":at in
// unix ms,"payload":{"account_id":Config.AccountID,"object":object}} —
// records it for the REST subset, and sends one message frame to every
// subscription with an open socket (to each socket under
// SecondConnectionAllow), through that subscription's faults. It returns the
// number of subscriptions the event reached after faults (see the package
// doc): 0 when nobody is connected, every copy was dropped, after Close, or if
// object cannot be encoded as JSON (logged). It never blocks on a socket: a
// socket whose queue is full is closed as a slow consumer instead. object is
// encoded before Publish returns and not retained.
//
// Publish has the signature of traffic.Emitter and is safe for concurrent
// use; without delay, jitter or reorder faults, events published by one
// goroutine reach each socket in order.
func (s *Server) Publish(name string, at time.Time, object map[string]any) (delivered int) {
	raw, err := json.Marshal(envelope{
		Event:   name,
		EventTS: at.UnixMilli(),
		Payload: payload{AccountID: s.cfg.AccountID, Object: object},
	})
	if err != nil {
		s.log.Error().Err(err).Str("event", name).Msg("cannot encode event")
		return 0
	}
	s.recordEvent(name, at, object)
	return s.publish(nil, raw, true)
}

// PublishTo sends raw as the content of one message frame to each listed
// subscription that has an open socket, through its faults; nil subs means
// every subscription. Unknown ids and repeats are ignored. raw is sent
// verbatim unless the subscription has content faults and raw is a JSON
// object; raw need not be valid JSON (to test a client's handling of bad
// content). It returns the number of subscriptions reached, and is otherwise
// like Publish (but records nothing for REST).
func (s *Server) PublishTo(subs []string, raw json.RawMessage) int {
	return s.publish(subs, raw, true)
}

// decision is what a subscription's faults do to one frame.
type decision struct {
	drop    bool
	dup     bool
	holdFor int // reorder: later frames that overtake it; 0: not held
	delay   time.Duration
	maxHold time.Duration
}

// decide draws the fault decisions of one frame from r, always in the same
// order and number, whatever f says.
func decide(r *rand.Rand, f Faults) decision {
	dropU, dupU, reorderU, jitterU, windowU := r.Float64(), r.Float64(), r.Float64(), r.Float64(), r.Float64()
	d := decision{
		drop:    dropU < f.Drop,
		dup:     dupU < f.Duplicate,
		delay:   time.Duration(f.Delay) + time.Duration(jitterU*float64(f.Jitter)),
		maxHold: time.Duration(f.ReorderMaxHold),
	}
	if reorderU < f.Reorder {
		d.holdFor = min(f.ReorderWindow, 1+int(windowU*float64(f.ReorderWindow)))
	}
	return d
}

// streamRNG returns the random stream of item n of a named sequence (a
// subscription id, or a request kind) under seed.
func streamRNG(seed int64, name string, n uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()^(n*0x9E3779B97F4A7C15)))
}

// outFrame is one subscription's copy of an event, before its frame is built
// (at send time, so the timestamp header is the send time).
type outFrame struct {
	content string
	dup     bool
	holdFor int
	maxHold time.Duration
}

// heldFrame is a frame held back by the reorder fault.
type heldFrame struct {
	f        *outFrame
	left     int // later frames still to overtake it
	released bool
}

// publish sends raw to subs (nil: all) through each subscription's faults;
// transform allows content faults. It returns the subscriptions reached.
func (s *Server) publish(subs []string, raw []byte, transform bool) int {
	if subs == nil {
		subs = s.cfg.Subscriptions
	}
	type target struct {
		sub     *subscription
		faults  Faults
		n       uint64
		d       decision
		content string
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	seed := s.set.Seed
	var targets []target
	for i, id := range subs {
		sub := s.subs[id] // keys are fixed: no lock needed to look up
		if sub == nil || slices.Contains(subs[:i], id) {
			continue
		}
		targets = append(targets, target{sub: sub, faults: s.set.Faults[id], n: sub.frames})
		sub.frames++
	}
	s.mu.Unlock()

	// Decisions and content changes are made outside the lock; each
	// subscription's copy draws from its own stream.
	var doc map[string]any
	decoded := false
	for i := range targets {
		t := &targets[i]
		r := streamRNG(seed, t.sub.id, t.n)
		t.d = decide(r, t.faults)
		t.content = string(raw)
		if transform && t.faults.changesContent() {
			if !decoded {
				doc, decoded = decodeObject(raw), true
			}
			if doc != nil {
				t.content = string(transformContent(doc, t.faults, r, t.sub.id))
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	now := s.clock.Now()
	delivered := 0
	for _, t := range targets {
		if s.dispatchLocked(t.sub, t.d, t.content, now) {
			delivered++
		}
	}
	return delivered
}

// dispatchLocked applies one frame's decision and reports whether it counts
// as delivered to sub.
func (s *Server) dispatchLocked(sub *subscription, d decision, content string, now time.Time) bool {
	switch {
	case d.drop:
		sub.st.FramesDropped++
		return false
	case s.set.Faults[sub.id].HalfOpen:
		sub.st.Blackholed++
		return false
	case len(sub.conns) == 0:
		return false // nobody listening: the event is gone (PROTOCOL §1)
	}
	f := &outFrame{content: content, dup: d.dup, holdFor: d.holdFor, maxHold: d.maxHold}
	if d.delay > 0 {
		sub.st.Delayed++
		sub.delayed++
		s.scheduleLocked(schedItem{at: now.Add(d.delay), sub: sub, frame: f})
		return true
	}
	return s.sendLocked(sub, f, now)
}

// sendLocked sends f now, or holds it back for the reorder fault. A frame
// sent now overtakes the held ones; those it was the last to overtake follow
// it.
func (s *Server) sendLocked(sub *subscription, f *outFrame, now time.Time) bool {
	if f.holdFor > 0 {
		h := &heldFrame{f: f, left: f.holdFor}
		sub.held = append(sub.held, h)
		sub.st.Reordered++
		s.scheduleLocked(schedItem{at: now.Add(f.maxHold), sub: sub, held: h})
		return true
	}
	ok := s.deliverLocked(sub, f)
	for _, h := range slices.Clone(sub.held) {
		if h.left--; h.left <= 0 {
			s.releaseHeldLocked(sub, h)
		}
	}
	return ok
}

// releaseHeldLocked sends a held frame now.
func (s *Server) releaseHeldLocked(sub *subscription, h *heldFrame) {
	if h.released {
		return
	}
	h.released = true
	sub.held = slices.DeleteFunc(sub.held, func(x *heldFrame) bool { return x == h })
	s.deliverLateLocked(sub, h.f)
}

// deliverLateLocked sends a frame whose time has come, counting it lost if
// no socket is open.
func (s *Server) deliverLateLocked(sub *subscription, f *outFrame) {
	switch {
	case s.set.Faults[sub.id].HalfOpen:
		sub.st.Blackholed++
	case len(sub.conns) == 0:
		sub.st.Lost++
	default:
		s.deliverLocked(sub, f)
	}
}

// deliverLocked builds f's frame and queues it (twice for a duplicate) to
// every open socket of sub. It reports whether some socket took it.
func (s *Server) deliverLocked(sub *subscription, f *outFrame) bool {
	if s.set.Faults[sub.id].HalfOpen {
		sub.st.Blackholed++
		return false
	}
	if len(sub.conns) == 0 {
		return false
	}
	b := s.messageFrame(f.content)
	queued := false
	for _, c := range slices.Clone(sub.conns) {
		if s.enqueueLocked(c, b) {
			queued = true
			if f.dup {
				s.enqueueLocked(c, b)
			}
		}
	}
	if queued {
		sub.st.EventsSent++
		if f.dup {
			sub.st.Duplicated++
		}
	}
	return queued
}

// messageFrame builds a message frame holding content as a string, with the
// timestamp header and, when Config.SecretToken is set, the signature.
func (s *Server) messageFrame(content string) []byte {
	ts := strconv.FormatInt(s.clock.Now().UnixMilli(), 10)
	h := map[string]string{HeaderTimestamp: ts}
	if s.cfg.SecretToken != "" {
		h[HeaderSignature] = Sign(s.cfg.SecretToken, ts, content)
	}
	if utf8.ValidString(content) {
		return mustFrame(frame{Module: "message", Header: h, Content: content})
	}
	// json.Marshal would turn each invalid byte into U+FFFD; Zoom's frames
	// may carry them raw, so put the content in with its bytes kept.
	b := mustFrame(frame{Module: "message", Header: h, Content: ""})
	return bytes.Replace(b, []byte(`"content":""`), append([]byte(`"content":`), quoteRaw(content)...), 1)
}

// quoteRaw quotes s as a JSON string as json.Marshal would, except that
// bytes that are not valid UTF-8 are written as they are.
func quoteRaw(s string) []byte {
	out := []byte{'"'}
	for len(s) > 0 {
		n := 0
		for n < len(s) {
			r, size := utf8.DecodeRuneInString(s[n:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			n += size
		}
		if n > 0 {
			q, _ := json.Marshal(s[:n]) // valid UTF-8: cannot fail
			out = append(out, q[1:len(q)-1]...)
			s = s[n:]
			continue
		}
		out = append(out, s[0])
		s = s[1:]
	}
	return append(out, '"')
}

// Sign returns the x-zm-signature of a message frame: "v0=" +
// hex(HMAC-SHA256(secretToken, "v0:"+timestamp+":"+content)).
func Sign(secretToken, timestamp, content string) string {
	return events.Signature(secretToken, timestamp, content)
}

// decodeObject decodes raw as one JSON object, numbers kept verbatim; nil if
// raw is anything else.
func decodeObject(raw []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil
	}
	return m
}

// transformContent applies f's content faults to an event decoded by
// decodeObject (not changed) and encodes the result.
func transformContent(doc map[string]any, f Faults, r *rand.Rand, subID string) []byte {
	m := maps.Clone(doc)
	if f.EventTSSkew != 0 {
		if n, ok := m["event_ts"].(json.Number); ok {
			if v, err := n.Int64(); err == nil {
				m["event_ts"] = json.Number(strconv.FormatInt(v+f.EventTSSkew, 10))
			}
		}
	}
	if f.VolatileField != "" {
		if p, ok := m["payload"].(map[string]any); ok {
			if o, ok := p["object"].(map[string]any); ok {
				p, o = maps.Clone(p), maps.Clone(o)
				o[f.VolatileField] = fmt.Sprintf("https://zoom.us/rec/download/%s/%016x", url.PathEscape(subID), r.Uint64())
				p["object"] = o
				m["payload"] = p
			}
		}
	}
	if !f.ShuffleKeys {
		b, _ := json.Marshal(m) // decoded JSON always encodes
		return b
	}
	var buf bytes.Buffer
	encodeShuffled(&buf, m, r)
	return buf.Bytes()
}

// encodeShuffled writes v as JSON with the keys of every object in a random
// order that differs from the sorted one (when there are two keys or more).
func encodeShuffled(buf *bytes.Buffer, v any, r *rand.Rand) {
	switch x := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		perm := slices.Clone(keys)
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		if len(perm) > 1 && slices.Equal(perm, keys) {
			perm[0], perm[1] = perm[1], perm[0]
		}
		buf.WriteByte('{')
		for i, k := range perm {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			buf.Write(kb)
			buf.WriteByte(':')
			encodeShuffled(buf, x[k], r)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeShuffled(buf, e, r)
		}
		buf.WriteByte(']')
	default:
		b, _ := json.Marshal(x) // strings, json.Number, bools and null always encode
		buf.Write(b)
	}
}

// scheduler holds delayed frames and held frames' deadlines, released by one
// goroutine started on first use and ended by Close. Guarded by Server.mu.
type scheduler struct {
	items   schedHeap
	seq     uint64
	running bool
	wake    chan struct{} // capacity 1: an earlier item was added
}

// schedItem is a delayed frame (frame) or a held frame's deadline (held).
type schedItem struct {
	at    time.Time
	seq   uint64
	sub   *subscription
	frame *outFrame
	held  *heldFrame
}

type schedHeap []schedItem

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h schedHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *schedHeap) Push(x any)   { *h = append(*h, x.(schedItem)) }
func (h *schedHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// scheduleLocked adds an item and makes sure the scheduler runs. The caller
// has checked that the server is not closed.
func (s *Server) scheduleLocked(it schedItem) {
	s.sched.seq++
	it.seq = s.sched.seq
	heap.Push(&s.sched.items, it)
	if !s.sched.running {
		s.sched.running = true
		s.wg.Add(1)
		go s.scheduleLoop()
	}
	select {
	case s.sched.wake <- struct{}{}:
	default:
	}
}

// scheduleLoop releases due items in (time, arrival) order until Close
// begins; items still waiting then are dropped.
func (s *Server) scheduleLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		now := s.clock.Now()
		for s.sched.items.Len() > 0 && !s.sched.items[0].at.After(now) {
			s.releaseLocked(heap.Pop(&s.sched.items).(schedItem), now)
		}
		var next time.Time
		pending := s.sched.items.Len() > 0
		if pending {
			next = s.sched.items[0].at
		}
		s.mu.Unlock()

		var t timer
		var fire <-chan time.Time
		if pending {
			t = s.clock.TimerAt(next)
			fire = t.C()
		}
		select {
		case <-s.stopCtx.Done():
			stopTimer(t)
			return
		case <-s.sched.wake:
		case <-fire:
		}
		stopTimer(t)
	}
}

// releaseLocked acts on a due item.
func (s *Server) releaseLocked(it schedItem, now time.Time) {
	if it.held != nil {
		s.releaseHeldLocked(it.sub, it.held) // its deadline: no-op if already sent
		return
	}
	it.sub.delayed--
	switch {
	case s.set.Faults[it.sub.id].HalfOpen:
		it.sub.st.Blackholed++
	case len(it.sub.conns) == 0:
		it.sub.st.Lost++
	default:
		s.sendLocked(it.sub, it.frame, now)
	}
}
