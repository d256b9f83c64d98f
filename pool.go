package fofi

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by a run whose [Pool] is closed: at once by a run
// that starts on a closed pool, and by a run in progress once its in-flight
// work calls have returned.
var ErrClosed = errors.New("fofi: pool is closed")

// A Pool is a concurrency budget shared by many runs: across every [Run],
// [Stream] and [Map] given the pool with [WithPool], at most Limit work
// calls are in flight at once, whatever their own [WithConcurrency], which
// each run still keeps as well. A server makes one Pool per backend ("never
// more than 64 calls to the database at once") and passes it to the runs of
// every request.
//
// The budget is fair: work calls waiting for a slot get one in the order
// they started waiting, whichever run they belong to, so a small run that
// starts while a large one holds the pool gets its share of the slots at
// once and finishes in time proportional to its own size. A run's share is
// the number of its calls waiting, up to its own [WithConcurrency]; a run of
// quick work, which makes a batch of calls with each slot, starts no new
// goroutine to wait while the pool is full. A run waiting for a slot stops
// waiting as soon as its context is cancelled.
//
// Runs stay isolated: the error, panic or cancellation of one run stops only
// that run, and a panic or runtime.Goexit in work never leaks a slot.
//
// A work call that itself runs work on the same pool, with a context derived
// from the one its call received, does not wait for a slot of its own: its
// nested run borrows the slot of the call it runs in, and only its further
// concurrency waits for free slots (or for the borrowed one to be given
// back between batches). Precisely: a run on the pool borrows, for each
// batch of calls, the slot of the nearest work call on the same pool that
// its context comes from, through any number of runs and of other pools in
// between (a call on pool A that runs on pool B, whose work runs on A
// again, lends its A slot to that innermost run); if that call has
// returned, or its slot is lent already, the next such call further up;
// and otherwise it waits for a slot of the pool like any run. A slot is
// lendable only while the call that holds it runs: a run on a call's
// context after the call returned (a [Stream] that work returns, or a
// context that work keeps) waits for a slot of its own. A run that
// borrowed a slot during the call and is still going when the call returns
// (work that started it on another goroutine) keeps the slot for the rest
// of its batch: the worker makes its next call, or gives the slot back,
// only once every borrow of its slot has ended. The limit therefore holds
// for leaf calls, and nesting never deadlocks, even when every slot is
// held by the outer calls. Every call has a context of its own, so a
// context used after its call returned is never taken for the context of a
// later call on the same worker.
//
// A call's context is not cancelled when the call returns (unless
// [WithTaskTimeout] gave it a deadline): it lives as long as the run.
//
// Work calls that are quick are counted in batches: a run holds a slot
// while it makes one quick call after another, and gives the slot back
// between batches of about 100µs, which is when waiting runs get their
// turn.
//
// A Pool must be made with [NewPool]; the zero Pool is not usable, and
// [WithPool] reports it as an invalid option. A Pool is safe for concurrent
// use. It starts no goroutine.
//
// A Pool must not be shared between testing/synctest bubbles, nor between
// a bubble and code outside it, as golang.org/x/sync/semaphore.Weighted
// must not: a worker waiting in one bubble for a slot that another bubble
// gives back either crashes the test binary ("send on synctest channel
// from outside bubble") or is reported as a deadlock. Its waits must block
// durably inside a bubble, for synctest.Wait and fake time to work, and Go
// has no way to ask in which bubble a goroutine runs. Make a Pool per test
// instead, and inject it into the code under test (a handler's server
// struct, say) rather than using a package-level Pool there.
type Pool struct {
	limit int

	// state is the number of slots in use, plus the flags waitersFlag and
	// closedFlag. While no flag is set, acquire and release take or give
	// back a slot with one compare-and-swap; a flag sends them to the slow
	// path, under mu. The flags change only under mu, so a fast path that
	// races with a waiter queueing or with Close fails its swap and waits
	// for mu: a slot given back never misses a waiter. Every slot in use
	// is held by a goroutine, so the count never reaches the flags' bits,
	// whatever the limit.
	state atomic.Int64

	mu        sync.Mutex
	waiters   waitQueue     // first come first served; not empty exactly when waitersFlag is set
	drained   chan struct{} // made by close; closed when no slot is in use
	nWaiting  atomic.Int64  // waiters.n, readable without the lock
	shutdowns []*shutdown   // the calls of Shutdown in progress

	// closing is set with closedFlag. Workers read it before every work
	// call, so it has a cache line of its own: state, next to it, is
	// written by every batch of every run.
	_       [64]byte
	closing atomic.Bool
	_       [60]byte
}

const (
	waitersFlag = 1 << 62 // set while a worker waits for a slot
	closedFlag  = 1 << 61 // set by Close, and never cleared
	poolFlags   = waitersFlag | closedFlag
)

// A waiter is a worker waiting for a slot. Each worker has one, reused for
// every wait, so that waiting allocates nothing after the first time.
type waiter struct {
	ready      chan error // cap 1: receives nil when granted a slot, ErrClosed when closed; made at the first wait
	prev, next *waiter
	owner      *slotWorker // the worker it is part of; nil in tests of the pool alone
}

// waitQueue is an intrusive FIFO list of waiters.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) push(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
}

// NewPool returns a Pool of limit slots. limit must be at least 1; otherwise
// NewPool returns an error wrapping [ErrInvalidOption].
func NewPool(limit int) (*Pool, error) {
	if limit < 1 {
		return nil, configError("NewPool(%d): limit must be at least 1", limit)
	}
	return &Pool{limit: limit}, nil
}

// Limit returns the pool's number of slots.
func (p *Pool) Limit() int { return p.limit }

// InFlight returns how many slots are held at this moment: the work calls in
// flight on the pool, counting a run that makes quick calls one after
// another as one. It is a racy snapshot, meant for metrics.
func (p *Pool) InFlight() int { return int(p.state.Load() &^ poolFlags) }

// Waiting returns how many of the runs' workers wait for a slot at this
// moment. It is a racy snapshot, meant for metrics: a pool whose Waiting is
// often above zero is the bottleneck of the runs that share it.
func (p *Pool) Waiting() int { return int(p.nWaiting.Load()) }

// Close closes the pool. Runs that start afterwards return [ErrClosed] at
// once; runs in progress start no new work call and return ErrClosed once
// their calls in flight have returned. Close itself returns when every work
// call in flight on the pool has returned. It always returns nil. Close may
// be called more than once, and concurrently with runs and with itself.
//
// Called from a work call on the pool, Close never returns, since it waits
// for that call too, as sync.WaitGroup.Wait does when called from a
// goroutine it waits for: use [Pool.Shutdown] there.
func (p *Pool) Close() error {
	<-p.close()
	return nil
}

// Shutdown closes the pool as [Pool.Close] does and waits, like
// http.Server.Shutdown, for the work calls in flight on the pool to return,
// except the calls that ctx comes from and the calls that are themselves in
// Shutdown. The calls ctx comes from are the work call on the pool whose
// context ctx is or is derived from, and the calls on the pool that call
// runs in, nested; Shutdown finds them through ctx. So a work call that
// meets a fatal error can shut the pool down with its own context: p.Shutdown(ctx)
// returns once the other calls have returned, and the runs on the pool
// start no call after it. With a context that comes from no call on the
// pool, Shutdown waits for every call, as Close does.
//
// If ctx is done first, Shutdown returns ctx's error; the pool is closed
// all the same. A ctx done because the pool closed does not count: closing
// stops the runs on the pool, which cancels the context of their calls,
// and a work call's context is what Shutdown is given there. Otherwise it
// returns nil. Shutdown may be called more than
// once, and concurrently with runs, Close and itself.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.close()
	sd := &shutdown{ctx: ctx, wake: make(chan struct{}, 1)}
	p.mu.Lock()
	p.shutdowns = append(p.shutdowns, sd)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.shutdowns = slices.DeleteFunc(p.shutdowns, func(o *shutdown) bool { return o == sd })
		p.mu.Unlock()
		// The calls that ctx comes from are no longer exempt: another
		// Shutdown may now have to wait for them, or may be done.
		p.wakeShutdowns()
	}()
	done := ctx.Done()
	for {
		if p.settled() {
			return nil
		}
		select {
		case <-sd.wake:
		case <-done:
			if errors.Is(context.Cause(ctx), ErrClosed) {
				// The run ctx comes from was stopped because the pool
				// closed: not a reason to stop waiting.
				done = nil
				continue
			}
			return ctx.Err()
		}
	}
}

// A shutdown is a call of Shutdown in progress. wake (cap 1) gets a token
// when a slot is released or a borrowed slot given back, after which it
// checks again whether it is done.
type shutdown struct {
	ctx  context.Context // Shutdown's argument, for as long as it runs
	wake chan struct{}
}

// settled reports whether the calls in flight on the pool are all calls
// that the Shutdowns in progress come from or wait in.
func (p *Pool) settled() bool {
	if p.InFlight() == 0 {
		return true
	}
	p.mu.Lock()
	ctxs := make([]context.Context, len(p.shutdowns))
	for i, sd := range p.shutdowns {
		ctxs[i] = sd.ctx
	}
	p.mu.Unlock()
	set := make(map[*slotWorker]bool)
	for _, ctx := range ctxs {
		exempt(ctx, p, set)
	}
	return settledFor(p, set)
}

// wakeShutdowns tells every Shutdown in progress to check again.
func (p *Pool) wakeShutdowns() {
	p.mu.Lock()
	p.wakeShutdownsLocked()
	p.mu.Unlock()
}

// wakeShutdownsLocked is wakeShutdowns with p.mu held.
func (p *Pool) wakeShutdownsLocked() {
	for _, sd := range p.shutdowns {
		select {
		case sd.wake <- struct{}{}:
		default: // a token is there already
		}
	}
}

// close closes the pool, if it is open, and returns a channel closed when
// no slot is in use.
func (p *Pool) close() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drained == nil {
		p.drained = make(chan struct{})
		p.closing.Store(true)
		old := p.state.Or(closedFlag)
		for w := p.waiters.head; w != nil; w = p.waiters.head {
			p.waiters.remove(w)
			w.ready <- ErrClosed // buffered and empty: never blocks
		}
		p.state.And(^waitersFlag)
		p.nWaiting.Store(0)
		if old&^poolFlags == 0 {
			close(p.drained)
		}
	}
	return p.drained
}

// tryAcquire takes a free slot if no flag is set, without the lock.
func (p *Pool) tryAcquire() bool {
	for {
		s := p.state.Load()
		if s&poolFlags != 0 || s >= int64(p.limit) {
			return false
		}
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// An alternative is what a worker waiting for a slot may get instead: the
// slot of a call its run is nested in (see slots.borrow).
type alternative interface {
	// try takes the alternative if it is free. Otherwise it returns a
	// channel closed when it may have become free, or nil if it will not.
	try() (ok bool, wake <-chan struct{})
}

// acquire waits for a slot, first come first served, or, when wake is
// closed, for alt to be free, whichever comes first, and reports which it
// got. alt may be nil, and wake nil or a channel of alt's. It returns ctx's
// error if ctx is done first, and ErrClosed if the pool is or gets closed.
func (p *Pool) acquire(ctx context.Context, w *waiter, alt alternative, wake <-chan struct{}) (gotAlt bool, err error) {
	if p.tryAcquire() {
		return false, nil
	}
	p.mu.Lock()
	for {
		s := p.state.Load()
		if s&closedFlag != 0 {
			p.mu.Unlock()
			return false, ErrClosed
		}
		if s&waitersFlag != 0 {
			break // join the queue
		}
		if s < int64(p.limit) {
			if p.tryAcquire() {
				p.mu.Unlock()
				return false, nil
			}
			continue
		}
		// Full: raise the flag, in the same swap that saw no slot free, so
		// that a release after it takes the slow path and finds w queued.
		if p.state.CompareAndSwap(s, s|waitersFlag) {
			break
		}
	}
	if w.ready == nil {
		w.ready = make(chan error, 1) // only its own worker waits with w
	}
	p.waiters.push(w)
	p.nWaiting.Add(1)
	p.mu.Unlock()

wait:
	for {
		select {
		case err := <-w.ready:
			return false, err
		case <-wake:
			// Keep the place in the queue while alt is taken by another.
			if gotAlt, wake = alt.try(); gotAlt {
				break wait
			}
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		}
	}
	p.mu.Lock()
	select {
	case granted := <-w.ready:
		// Granted (or closed) in the meantime: give the slot back rather
		// than lose it.
		p.mu.Unlock()
		if granted == nil {
			p.release()
		}
	default:
		p.dequeue(w)
		p.mu.Unlock()
	}
	return gotAlt, err
}

// dequeue removes w from the queue, and lowers waitersFlag if w was the
// last waiter. p.mu must be held.
func (p *Pool) dequeue(w *waiter) {
	p.waiters.remove(w)
	p.nWaiting.Add(-1)
	if p.waiters.n == 0 {
		p.state.And(^waitersFlag)
	}
}

// release returns a slot, handing it to the first waiter if there is one.
func (p *Pool) release() {
	for {
		s := p.state.Load()
		if s&poolFlags != 0 {
			break
		}
		if p.state.CompareAndSwap(s, s-1) {
			return
		}
	}
	p.mu.Lock()
	if w := p.waiters.head; w != nil {
		// The slot goes straight to the waiter, so that a run that has
		// just released cannot take it back ahead of the queue.
		p.dequeue(w)
		w.ready <- nil // buffered and empty: never blocks
	} else if s := p.state.Add(-1); s&closedFlag != 0 {
		if s&^poolFlags == 0 {
			close(p.drained)
		}
		p.wakeShutdownsLocked()
	}
	p.mu.Unlock()
}

// full reports, without the lock, whether no slot is free or workers wait
// for one: a worker started now would only wait.
func (p *Pool) full() bool {
	s := p.state.Load()
	return s&waitersFlag != 0 || s&^poolFlags >= int64(p.limit)
}

// isClosed reports whether Close was called, without the lock.
func (p *Pool) isClosed() bool { return p.state.Load()&closedFlag != 0 }
