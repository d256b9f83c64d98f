package fofi

import (
	"math/bits"
	"reflect"
	"sync"
	"sync/atomic"
)

// queue holds the inputs the feeder has pulled and no worker has claimed
// yet. The feeder publishes every input the moment it pulls it, so that an
// iterator that blocks (a channel with nothing to send) never holds back an
// input pulled before; workers claim runs of consecutive inputs, as many as
// their batch size, with one compare-and-swap, and copy them out at once.
//
// It is a ring of slots: input i goes to ring[i & mask]. A slot's seq says
// which input it is free for: the feeder writes input i only once
// seq == i, and the worker that claimed it sets seq to i + len(ring) after
// copying it out. The ring is small: slots are held only between a push and
// the claim, so it fills only when every worker is busy and inputs pile up,
// and then the feeder waits, which is backpressure too.
//
// Memory order: the feeder writes a slot and then stores tail; a worker
// loads tail and then reads the slots below it. A worker clears a slot and
// then stores its seq; the feeder loads seq and then writes the slot.
type queue[In any] struct {
	ring []slot[In] // buf.slots, copied so that the hot path indexes it without the extra load
	buf  *ring[In]
	mask int64
	tail atomic.Int64 // inputs published; written by the feeder only
	head atomic.Int64 // inputs claimed

	// Inputs a worker claimed and gave back because its batch turned out
	// slow (see run.calls), claimed again before new inputs.
	mu        sync.Mutex
	returned  []returnedInputs[In]
	nReturned atomic.Int32 // len(returned)
	retItems  atomic.Int64 // inputs in returned

	// Sleeping workers. A worker counts itself in sleepers, checks once
	// more for inputs, and waits on wake; whoever publishes an input takes
	// one sleeper off the count and sends it a token (wake has room for
	// one per worker, so the send never blocks). ended is closed by the
	// feeder after its last input.
	sleepers atomic.Int32
	wake     chan struct{}
	ended    chan struct{}
}

type slot[In any] struct {
	seq atomic.Int64
	v   In
}

// returnedInputs are inputs start, start+1, ... given back by a worker.
type returnedInputs[In any] struct {
	start int64
	in    []In
	claim int64 // the next claim's size: 1, then doubling (see claim)
}

// Ring sizes are powers of two, ringSizes of them, from minRingSize, for a
// window of up to 16 inputs, to ringSize (1024): enough for every worker
// to claim a full batch while the feeder publishes the next ones.
const (
	minRingSize = 16
	ringSizes   = 7
	ringSize    = minRingSize << (ringSizes - 1)
)

// newQueue returns an empty queue whose ring holds the window, up to
// ringSize, reusing a ring a finished run released (see release).
func newQueue[In any](workers int, window int64) *queue[In] {
	size := int64(minRingSize)
	for size < window && size < ringSize {
		size *= 2
	}
	q := &queue[In]{mask: size - 1, wake: make(chan struct{}, workers), ended: make(chan struct{})}
	if r, ok := ringPool[In](size).Get().(*ring[In]); ok {
		q.buf = r
	} else {
		q.buf = &ring[In]{slots: make([]slot[In], size)}
		q.buf.reset(size)
	}
	q.ring = q.buf.slots
	return q
}

// A ring is the slots of a queue, kept behind a pointer so that releasing
// it to its pool allocates nothing.
type ring[In any] struct{ slots []slot[In] }

// ringPool returns the pool of rings of size slots for inputs of type In.
// Sizes are powers of two from minRingSize to ringSize, each with its own
// pool.
func ringPool[In any](size int64) *sync.Pool {
	sizes := poolsFor[[ringSizes]sync.Pool](reflect.TypeFor[slot[In]]())
	return &sizes[bits.TrailingZeros64(uint64(size/minRingSize))]
}

// reset empties the first n slots and makes slot i free for input i, as a
// new queue's first inputs need.
func (r *ring[In]) reset(n int64) {
	var zero In
	for i := range r.slots[:n] {
		r.slots[i].v = zero
		r.slots[i].seq.Store(int64(i))
	}
}

// release gives the ring, emptied, to the next queue of its type and size.
// Only once nothing uses the queue any more: after the run's feeder and
// every worker have returned. The queue is unusable afterwards.
func (q *queue[In]) release() {
	// Only the slots of inputs published were written; resetting them
	// also drops the inputs a stopped run left unclaimed.
	q.buf.reset(min(q.tail.Load(), int64(len(q.buf.slots))))
	ringPool[In](int64(len(q.buf.slots))).Put(q.buf)
	q.buf, q.ring = nil, nil
}

// free reports whether the slot of input i is free for it.
func (q *queue[In]) free(i int64) bool { return q.ring[i&q.mask].seq.Load() == i }

// push publishes input i, whose slot must be free, and wakes a sleeping
// worker if wake says so. Only the feeder calls push.
func (q *queue[In]) push(i int64, v In, wake func() bool) {
	q.ring[i&q.mask].v = v
	q.tail.Store(i + 1)
	if q.sleepers.Load() > 0 && wake() {
		q.wakeOne()
	}
}

// wakeOne wakes one sleeping worker, if there is one.
func (q *queue[In]) wakeOne() {
	for s := q.sleepers.Load(); s > 0; s = q.sleepers.Load() {
		if q.sleepers.CompareAndSwap(s, s-1) {
			q.wake <- struct{}{}
			return
		}
	}
}

// claim takes given-back inputs (one at first, then doubling), or else
// up to k of the oldest published ones, and appends them to in. It returns the index of the
// first. A claim of given-back inputs wakes another sleeping worker for
// the rest, so that inputs that turned slow spread over the workers: a
// worker that measured them slow claims them one at a time.
func (q *queue[In]) claim(k int64, in []In) (start int64, _ []In, ok bool) {
	if q.nReturned.Load() > 0 {
		more := false
		q.mu.Lock()
		if n := len(q.returned); n > 0 {
			r := &q.returned[n-1]
			// One at first, then doubling: inputs are given back
			// because a call before them stalled, so the next may
			// stall too and is worth a worker of its own; but a claim
			// stalls also when its worker merely waits for a processor,
			// and quick work claimed one input at a time would be
			// handed over one result at a time.
			take := min(int64(len(r.in)), r.claim, k)
			r.claim = min(2*r.claim, maxBatch)
			start, in = r.start, append(in, r.in[:take]...)
			q.retItems.Add(-take)
			if r.start += take; int64(len(r.in)) > take {
				r.in = r.in[take:]
				more = true
			} else {
				q.returned = q.returned[:n-1]
				q.nReturned.Add(-1)
				more = n > 1
			}
			ok = true
		}
		q.mu.Unlock()
		if ok {
			if more {
				q.wakeOne()
			}
			return start, in, true
		}
	}
	for {
		h := q.head.Load()
		t := q.tail.Load()
		if h >= t {
			return 0, in, false
		}
		n := min(t-h, k)
		if q.head.CompareAndSwap(h, h+n) {
			return h, q.take(h, n, in), true
		}
	}
}

// claimAfter takes up to n more published inputs starting at index next,
// if no other worker has claimed them first, and appends them to in. A
// worker uses it to grow its batch while the inputs that follow it are
// still free, so that it hands over fewer, fuller batches.
func (q *queue[In]) claimAfter(next, n int64, in []In) ([]In, bool) {
	t := q.tail.Load()
	if next >= t || q.nReturned.Load() > 0 {
		return in, false
	}
	n = min(t-next, n)
	if !q.head.CompareAndSwap(next, next+n) {
		return in, false
	}
	return q.take(next, n, in), true
}

// take copies inputs i..i+n-1, which the caller has claimed, out of the
// ring and frees their slots.
func (q *queue[In]) take(i, n int64, in []In) []In {
	var zero In
	for j := i; j < i+n; j++ {
		s := &q.ring[j&q.mask]
		in = append(in, s.v)
		s.v = zero // keep no input reachable
		s.seq.Store(j + int64(len(q.ring)))
	}
	return in
}

// pending reports whether an input waits to be claimed.
func (q *queue[In]) pending() bool {
	return q.nReturned.Load() > 0 || q.head.Load() < q.tail.Load()
}

// giveBack returns inputs start, start+1, ... (a copy of in) to be claimed
// again, and wakes a sleeping worker for them.
func (q *queue[In]) giveBack(start int64, in []In) {
	q.mu.Lock()
	q.returned = append(q.returned, returnedInputs[In]{start, append([]In(nil), in...), 1})
	q.nReturned.Add(1)
	q.retItems.Add(int64(len(in)))
	q.mu.Unlock()
	q.wakeOne()
}

// sleep waits until an input may be pending, the feeder has ended, or
// done is closed. It returns false for done.
func (q *queue[In]) sleep(done <-chan struct{}) bool {
	q.sleepers.Add(1)
	if q.pending() || q.finished() {
		q.unsleep()
		return true
	}
	select {
	case <-q.wake:
		return true
	case <-q.ended:
		q.unsleep()
		return true
	case <-done:
		// A token still due to this worker goes to wake, which has room
		// for one per worker, and is never read again.
		q.unsleep()
		return false
	}
}

// unsleep takes back the count of a worker that stops sleeping without a
// token: a count left behind would read as a sleeper to wake, both to the
// policy (which then starts no worker) and to wakeOne (whose token nobody
// takes). If a publisher took the count first, its token is on its way
// and is the worker's.
func (q *queue[In]) unsleep() {
	for s := q.sleepers.Load(); ; s = q.sleepers.Load() {
		if s == 0 {
			<-q.wake
			return
		}
		if q.sleepers.CompareAndSwap(s, s-1) {
			return
		}
	}
}

// finished reports whether the feeder has ended.
func (q *queue[In]) finished() bool {
	select {
	case <-q.ended:
		return true
	default:
		return false
	}
}
