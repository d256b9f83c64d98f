package fofi

// This file is the runs' side of a Pool: how one run takes and gives back
// the pool's slots, and how a nested run borrows the slot of a call it runs
// in.
//
// Each worker of a pooled run is a slotWorker. It holds a slot (of the
// pool, or borrowed) for a batch of calls, and gives its calls a callCtx:
// the run's context plus the identity of the worker's call. A run started
// with a context derived from a callCtx of its own pool finds the nearest
// with ctx.Value(slotKey{pool}), and from it the calls further up, and
// borrows the slot of the first of them whose call still runs and whose
// slot nobody borrows at the moment. Every worker of the nested run borrows
// that way, per batch, or else waits for a slot of the pool like any run.
//
// A call is told from every other call by its callCtx: each call gets a
// context of its own, which stays the context of that call for good. The
// worker counts its calls (the generation in st, which moves on when a
// call returns and when a batch begins), a callCtx records the generation
// of its call, and a run that looks it up borrows only while the worker
// holds its slot and is still in that generation. So a context
// used after its call returned, by a Stream that work returned, a run
// left going on another goroutine, or a context kept in a variable, finds
// its call over and borrows from a call further up, or waits for a slot of
// its own. The contexts come in chunks (see callCtx), so that a context
// per call costs 8 bytes and a 512th of an allocation.
//
// While its slot is lent, a worker starts no call and gives no slot back:
// it waits, before its next call and at the end of its batch, for the
// borrow to end. So a nested run that outlives its call keeps the slot it
// borrowed for the rest of its batch, and the limit holds.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// slotKey is the context key under which a callCtx of pool answers, so that
// a run on the same pool nested in its call can borrow its worker's slot.
// Keys of other pools pass through it to the calls further up.
type slotKey struct{ pool *Pool }

// callCtx is the context a worker gives one work call: the run's context,
// and the identity of the call, which nested runs borrow its slot through.
// Each call has one of its own, so that a context used after its call
// returned is told from the context of the worker's later calls. It is
// one word, v: the call's generation (see stGen) times ctxIndex, plus its
// index in the chunk it was made in. A chunk holds its worker, then its
// contexts, so that a call leaves 8 bytes of garbage that the collector
// does not scan, where a pointer to the worker in each context would
// double that and make the collector scan it.
type callCtx struct{ v uint64 }

// The chunks: a worker's first 16 calls take their contexts from a small
// one, so that a short run does not make a big one; later calls from
// chunks of 512 (4KB).
type (
	ctxChunkHead struct{ w *slotWorker }
	ctxChunk16   struct {
		ctxChunkHead
		ctxs [16]callCtx
	}
	ctxChunk512 struct {
		ctxChunkHead
		ctxs [512]callCtx
	}
)

const ctxIndex = 512 // v's multiplier: more than the largest chunk's index

// worker relies on every chunk's contexts starting right after its head.
var (
	_ [unsafe.Offsetof(ctxChunk16{}.ctxs) - unsafe.Sizeof(ctxChunkHead{})]struct{}
	_ [unsafe.Sizeof(ctxChunkHead{}) - unsafe.Offsetof(ctxChunk16{}.ctxs)]struct{}
	_ [unsafe.Offsetof(ctxChunk512{}.ctxs) - unsafe.Sizeof(ctxChunkHead{})]struct{}
	_ [unsafe.Sizeof(ctxChunkHead{}) - unsafe.Offsetof(ctxChunk512{}.ctxs)]struct{}
)

// worker returns the worker of c's call: the head of the chunk c is in,
// which is c's index contexts and one head before c, in one allocation.
func (c *callCtx) worker() *slotWorker {
	back := int(unsafe.Sizeof(ctxChunkHead{})) + int(c.v%ctxIndex)*int(unsafe.Sizeof(*c))
	return (*ctxChunkHead)(unsafe.Add(unsafe.Pointer(c), -back)).w
}

func (c *callCtx) Deadline() (time.Time, bool) { return c.worker().Context.Deadline() }
func (c *callCtx) Done() <-chan struct{}       { return c.worker().Context.Done() }
func (c *callCtx) Err() error                  { return c.worker().Context.Err() }

// Value answers slotKey for its own pool with c itself. Every other key,
// and slotKey of another pool, goes to the run's context.
func (c *callCtx) Value(key any) any {
	w := c.worker()
	if k, ok := key.(slotKey); ok && k.pool == w.s.pool {
		return c
	}
	return w.Context.Value(key)
}

// runs reports whether c's call still runs: its worker holds a slot and
// has made no call since. It may be over the moment after.
func (c *callCtx) runs(st uint64) bool {
	return st&stHeld != 0 && st>>stGen == c.v/ctxIndex
}

// parent returns the nearest call on the same pool that c's run comes
// from, or nil.
func (c *callCtx) parent() *callCtx {
	w := c.worker()
	p, _ := w.Context.Value(slotKey{w.s.pool}).(*callCtx)
	return p
}

// The bits of slotWorker.st: two flags, and above them the generation,
// which the worker advances when it takes a slot for a batch and as each
// call returns, so that the contexts of the calls before are over.
const (
	stHeld = 1 << iota // the worker holds a slot for a batch of calls
	stLent             // a worker of a nested run borrows the slot

	stGen   = 2                  // the shift of the generation
	stFlags = 1<<stGen - 1       // the flags' bits
	genOne  = uint64(1) << stGen // one generation
)

// A slotWorker is what one worker of a pooled run needs to use the pool.
// It is also the context the scheduler passes to caller.call, which gives
// work a callCtx instead (see call). It is one allocation per worker, with
// the first contexts in it; the channels are made only when a worker
// waits.
type slotWorker struct {
	context.Context // the run's context
	s               *slots
	life            *lifecycle // the run's; set by take
	w               waiter
	// st holds stHeld, stLent and the generation. The worker changes it
	// with an add (the generation, as a call returns), a compare-and-swap
	// (release), or under mu; a borrower sets stLent under mu, with a
	// compare-and-swap that fails once the generation moved.
	st    atomic.Uint64
	ctxs  []callCtx // the contexts of the worker's current chunk; written by the worker only
	given int       // how many of ctxs were given

	mu      sync.Mutex
	from    *slotWorker   // the worker whose slot the batch borrowed; nil: a slot of the pool
	lentTo  *slotWorker   // the worker that borrows the slot; set exactly when stLent is
	changed chan struct{} // closed when the slot is given back or the call moves on; made by a borrower that waits
	back    chan struct{} // cap 1: a token when the slot is given back; the worker's own
}

// next returns the context of the call of generation gen.
func (w *slotWorker) next(gen uint64) *callCtx {
	if w.given == len(w.ctxs) {
		if w.ctxs == nil {
			ch := &ctxChunk16{ctxChunkHead: ctxChunkHead{w}}
			w.ctxs = ch.ctxs[:]
		} else {
			ch := &ctxChunk512{ctxChunkHead: ctxChunkHead{w}}
			w.ctxs = ch.ctxs[:]
		}
		w.given = 0
	}
	c := &w.ctxs[w.given]
	c.v = gen*ctxIndex + uint64(w.given)
	w.given++
	return c
}

// slots is how one run takes and gives back the pool's slots.
type slots struct {
	pool *Pool
	near *callCtx // the nearest call on pool that the run's context comes from, if any
}

func newSlots(ctx context.Context, p *Pool) *slots {
	s := &slots{pool: p}
	s.near, _ = ctx.Value(slotKey{p}).(*callCtx)
	return s
}

// worker returns what a worker of a run with the run's ctx needs: the
// context for its work calls and its waiter. Without a pool (s is nil),
// that is ctx itself and no waiter.
func (s *slots) worker(ctx context.Context) (context.Context, *waiter) {
	if s == nil {
		return ctx, nil
	}
	w := &slotWorker{Context: ctx, s: s}
	w.w.owner = w
	return w, &w.w
}

// take acquires a slot for a batch of run l, counting the wait in obs (if
// the run is observed), and stops l with ErrClosed if the pool is closed.
// It returns the worker, for release, and whether the run goes on; a
// context error means the run stopped already.
func (s *slots) take(l *lifecycle, ww *waiter, obs *observer) (*slotWorker, bool) {
	w := ww.owner
	w.life = l
	var t0 time.Time
	if obs != nil {
		t0 = time.Now()
	}
	err := s.acquire(l.ctx, w)
	if obs != nil {
		obs.poolWait.Add(int64(time.Since(t0)))
	}
	if err != nil {
		l.stop(err)
		return nil, false
	}
	// Between batches nobody changes st: borrowers lend only a held
	// slot, and release waited for the last borrow to end.
	w.st.Add(genOne + stHeld)
	return w, true
}

// acquire borrows the slot of a call the run is nested in, or takes a slot
// of the pool, whichever is free first.
func (s *slots) acquire(ctx context.Context, w *slotWorker) error {
	if s.near == nil {
		_, err := s.pool.acquire(ctx, &w.w, nil, nil)
		return err
	}
	borrowed, wake := s.borrow(w)
	if !borrowed {
		var err error
		if borrowed, err = s.pool.acquire(ctx, &w.w, w, wake); err != nil {
			return err
		}
	}
	if borrowed && s.pool.isClosed() {
		w.mu.Lock()
		from := w.from
		w.from = nil
		w.mu.Unlock()
		from.giveBack(w)
		return ErrClosed
	}
	return nil
}

// try borrows a slot for w, for Pool.acquire (see borrow).
func (w *slotWorker) try() (bool, <-chan struct{}) { return w.s.borrow(w) }

// borrow lends w, for its batch, the slot of the first call that the run's
// context comes from, nearest first, that still runs and whose slot is not
// lent. If none is free it returns a channel closed when the nearest call
// that runs has its slot given back or returns, or nil if no call runs.
func (s *slots) borrow(w *slotWorker) (bool, <-chan struct{}) {
	var wake <-chan struct{}
	for c := s.near; c != nil; c = c.parent() {
		l := c.worker()
		if !c.runs(l.st.Load()) {
			continue
		}
		l.mu.Lock()
		st := l.st.Load()
		for ; c.runs(st) && l.lentTo == nil; st = l.st.Load() {
			// A compare-and-swap, not an Or: the worker ends the call
			// (returned) or its batch (release) without the lock, and
			// the slot of a call that is over must not be lent.
			if l.st.CompareAndSwap(st, st|stLent) {
				l.lentTo = w
				l.mu.Unlock()
				w.mu.Lock()
				w.from = l
				w.mu.Unlock()
				return true, nil
			}
		}
		// Running and lent: wait for the borrower to give it back, or
		// for the call to end. Over: try the calls further up.
		if wake == nil && c.runs(st) {
			if l.changed == nil {
				l.changed = make(chan struct{})
			}
			wake = l.changed
		}
		l.mu.Unlock()
	}
	return false, wake
}

// release gives back the slot w holds, once no run borrows it: a slot
// still lent when the batch ends is waited for, since the worker would
// otherwise give back, or use for its next batch, a slot in use.
func (s *slots) release(w *slotWorker) {
	if st := w.st.Load(); st&stFlags != stHeld || !w.st.CompareAndSwap(st, st&^stHeld) {
		w.mu.Lock()
		// No context is watched: the borrower's run comes from a call
		// of this worker's run, so it is cancelled with it and ends its
		// batch promptly, as a work call does.
		w.awaitReturn(nil)
		w.st.And(^uint64(stHeld))
		w.mu.Unlock()
	}
	if w.from == nil { // written by this worker only
		s.pool.release()
		return
	}
	l := w.from
	w.mu.Lock()
	w.from = nil
	w.mu.Unlock()
	l.giveBack(w)
}

// giveBack ends the borrow of l's slot by b.
func (l *slotWorker) giveBack(b *slotWorker) {
	l.mu.Lock()
	l.lentTo = nil
	l.st.And(^uint64(stLent))
	if l.back != nil {
		select {
		case l.back <- struct{}{}:
		default: // a token is there already
		}
	}
	l.wakeBorrowers()
	l.mu.Unlock()
	if p := l.s.pool; p.isClosed() {
		p.wakeShutdowns()
	}
}

// call returns the context for the worker's next work call, and false if
// the call must not be made: the pool is closed (the run is stopped with
// ErrClosed then) or the run stopped. The generation moved on when the
// call before returned (see returned), so no context of this generation
// has been given out, and none can have been lent: while nothing waits it
// costs two loads. While a run still borrows the slot from the call before
// it, it waits first.
func (w *slotWorker) call() (context.Context, bool) {
	closing := w.s.pool.closing.Load()
	if st := w.st.Load(); st&stFlags == stHeld && !closing {
		return w.next(st >> stGen), true
	}
	if closing {
		w.life.stop(ErrClosed)
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.awaitReturn(w.life.done) {
		return nil, false
	}
	return w.next(w.st.Load() >> stGen), true
}

// returned ends the call that call gave a context to: from now on a run
// on that context borrows from a call further up, or waits for a slot of
// its own. An Add, not a compare-and-swap, keeps stLent: a run that
// borrowed during the call keeps the slot, and the next call waits for it.
// A call that panics or exits the goroutine ends with its batch instead
// (see release).
func (w *slotWorker) returned() { w.st.Add(genOne) }

// awaitReturn waits until no run borrows w's slot, or done is closed, and
// reports whether the slot is back. w.mu is held, and released while it
// waits.
func (w *slotWorker) awaitReturn(done <-chan struct{}) bool {
	for w.lentTo != nil {
		if w.back == nil {
			w.back = make(chan struct{}, 1)
		}
		w.mu.Unlock()
		select {
		case <-w.back:
		case <-done:
			w.mu.Lock()
			return false
		}
		w.mu.Lock()
	}
	return true
}

// wakeBorrowers wakes the borrowers waiting for w's slot. w.mu is held.
func (w *slotWorker) wakeBorrowers() {
	if w.changed != nil {
		close(w.changed) // made and closed under w.mu, then forgotten: one closer
		w.changed = nil
	}
}

// exempt adds to set the workers of the calls on pool p that ctx comes
// from, and the workers whose slots they borrow, for Shutdown.
func exempt(ctx context.Context, p *Pool, set map[*slotWorker]bool) {
	c, _ := ctx.Value(slotKey{p}).(*callCtx)
	for ; c != nil; c = c.parent() {
		if !c.runs(c.worker().st.Load()) {
			continue
		}
		for w := c.worker(); w != nil && !set[w]; {
			set[w] = true
			w.mu.Lock()
			next := w.from
			w.mu.Unlock()
			w = next
		}
	}
}

// settledFor reports whether every call in flight on p is one of set's: the
// slots of p in use are all held by workers of set, and none of them lends
// its slot outside set.
func settledFor(p *Pool, set map[*slotWorker]bool) bool {
	held := 0
	for w := range set {
		w.mu.Lock()
		st, from, lentTo := w.st.Load(), w.from, w.lentTo
		w.mu.Unlock()
		if lentTo != nil && !set[lentTo] {
			return false
		}
		if st&stHeld != 0 && from == nil {
			held++
		}
	}
	return p.InFlight() <= held
}
