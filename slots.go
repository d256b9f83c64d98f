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
// A call is told from the calls after it by its callCtx, but the worker
// reuses one callCtx for call after call, as long as no run looked it up:
// a context per call would cost an allocation per call, which quick work
// cannot afford. Once a run has looked a callCtx up (tainted it), the
// worker retires it before its next call: the callCtx is marked dead and
// the next call gets a fresh one. A run that looks a dead callCtx up
// borrows from a call further up, or waits for a slot of its own. What
// this cannot tell apart is a context that work kept without using it and
// that a run first uses after the call returned, while the same worker is
// in a later call: it is taken for that call's context until that call
// returns. Stream marks the calls of its context as used when it is
// called, not when it is ranged over, so that a Stream returned by work is
// not such a case.
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
)

// slotKey is the context key under which a callCtx of pool answers, so that
// a run on the same pool nested in its call can borrow its worker's slot.
// Keys of other pools pass through it to the calls further up.
type slotKey struct{ pool *Pool }

// usedKey is the context key under which every callCtx of a context marks
// itself as used by a run (see markUsed).
type usedKey struct{}

// markUsed marks the work calls that ctx comes from as used by a run, as
// looking their slot up would: their workers give their next calls fresh
// contexts. Stream calls it when it is called, since its run, and the
// lookup, happen only when it is ranged over, maybe after the call that
// made it has returned.
func markUsed(ctx context.Context) {
	if ctx != nil {
		ctx.Value(usedKey{})
	}
}

// callCtx is the context a worker gives its work calls: the run's context,
// standing for the worker's call, until it is retired.
type callCtx struct {
	context.Context // the run's context
	w               *slotWorker
	dead            atomic.Bool // retired: the calls it was given to have returned
}

// Value answers slotKey for its own pool with c itself, and marks c as
// looked up; usedKey marks it too. Every other key, and slotKey of another
// pool, goes to the run's context.
func (c *callCtx) Value(key any) any {
	switch k := key.(type) {
	case slotKey:
		if k.pool == c.w.s.pool {
			c.taint()
			return c
		}
	case usedKey:
		c.taint()
	}
	return c.Context.Value(key)
}

// taint tells c's worker to retire c before its next call.
func (c *callCtx) taint() {
	if !c.dead.Load() {
		c.w.st.Or(stTainted)
	}
}

// parent returns the nearest call on the same pool that c's run comes
// from, or nil.
func (c *callCtx) parent() *callCtx {
	p, _ := c.Context.Value(slotKey{c.w.s.pool}).(*callCtx)
	return p
}

// The bits of slotWorker.st.
const (
	stHeld    = 1 << iota // the worker holds a slot for a batch of calls
	stLent    = 1 << iota // a worker of a nested run borrows the slot
	stTainted = 1 << iota // a run looked cur up: retire it before the next call
)

// A slotWorker is what one worker of a pooled run needs to use the pool.
// It is also the context the scheduler passes to caller.call, which gives
// work cur instead (see call). It is one allocation per worker; the
// channels are made only when a worker waits.
type slotWorker struct {
	context.Context // the run's context
	s               *slots
	life            *lifecycle // the run's; set by take
	w               waiter
	st              atomic.Uint32 // stHeld, stLent, stTainted; stHeld alone while nothing happens
	cur             *callCtx      // the context of the worker's calls; written under mu, by the worker only
	first           callCtx       // cur until it is first retired

	mu      sync.Mutex
	from    *slotWorker   // the worker whose slot the batch borrowed; nil: a slot of the pool
	lentTo  *slotWorker   // the worker that borrows the slot; set exactly when stLent is
	changed chan struct{} // closed when the slot is given back or cur retired; made by a borrower that waits
	back    chan struct{} // cap 1: a token when the slot is given back; the worker's own
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
	w.first = callCtx{Context: ctx, w: w}
	w.cur = &w.first
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
	if !w.st.CompareAndSwap(0, stHeld) {
		// A run looked cur up after the worker's last batch: its call
		// has returned.
		w.mu.Lock()
		w.retireTainted()
		w.st.Or(stHeld)
		w.mu.Unlock()
	}
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
		w.from.giveBack(w)
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
		if c.dead.Load() {
			continue
		}
		l := c.w
		l.mu.Lock()
		if c.dead.Load() {
			l.mu.Unlock()
			continue
		}
		for st := l.st.Load(); st&stHeld != 0 && l.lentTo == nil; st = l.st.Load() {
			// A compare-and-swap, not an Or: the worker ends its batch
			// with one (in release) without the lock, and a slot it is
			// giving back must not be lent.
			if l.st.CompareAndSwap(st, st|stLent) {
				l.lentTo = w
				l.mu.Unlock()
				w.mu.Lock()
				w.from = l
				w.mu.Unlock()
				return true, nil
			}
		}
		// Not held: the worker is between batches, so c's call has
		// returned, and c is retired at its next batch. Held and lent:
		// wait for the borrower to give it back.
		if wake == nil && l.st.Load()&stHeld != 0 {
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
	if !w.st.CompareAndSwap(stHeld, 0) {
		w.mu.Lock()
		w.retireTainted()
		// No context is watched: the borrower's run comes from a call
		// of this worker's run, so it is cancelled with it and ends its
		// batch promptly, as a work call does.
		w.awaitReturn(nil)
		w.st.And(^uint32(stHeld))
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
	l.st.And(^uint32(stLent))
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
// ErrClosed then) or the run stopped. Before each call it retires cur if a
// run looked it up during the previous one, and waits while a run borrows
// the slot. While nothing of the sort happens it costs two loads.
func (w *slotWorker) call() (context.Context, bool) {
	if w.st.Load() == stHeld && !w.s.pool.closing.Load() {
		return w.cur, true
	}
	if w.s.pool.closing.Load() {
		w.life.stop(ErrClosed)
		return nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retireTainted()
	if !w.awaitReturn(w.life.done) {
		return nil, false
	}
	return w.cur, true
}

// retireTainted retires cur if a run looked it up: runs that look it up
// from now on find it dead. w.mu is held.
func (w *slotWorker) retireTainted() {
	if w.st.Load()&stTainted == 0 {
		return
	}
	w.cur.dead.Store(true)
	w.cur = &callCtx{Context: w.Context, w: w}
	w.st.And(^uint32(stTainted))
	w.wakeBorrowers()
}

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
		if c.dead.Load() {
			continue
		}
		for w := c.w; w != nil && !set[w]; {
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
