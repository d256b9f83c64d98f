package fofi

// This file keeps the runs work-conserving: nothing that is ready waits
// behind a call that blocks. A worker claims a run of inputs at once (a
// claim) and hands their results over together, which is what makes quick
// work cheap; but a call can block at any time, for a millisecond or for
// ever, and then the rest of its claim and the results finished before it
// would wait with it. Like the Go runtime's sysmon, which retakes the P of a
// goroutine stuck in a system call, the workers' claims are sampled while a
// run has anything at risk (by the workers between claims, and by a
// watcher goroutine when no claim ends), and when a claim has not moved for
// a whole watch period the sampler takes over:
//
//   - the claim's unstarted tail goes back to the queue, and workers are
//     started (or woken) for it, one input each;
//   - the consumer is told to take the claim's finished results itself;
//   - inputs waiting in the queue while no claim moved get a worker woken
//     or started for them.
//
// Glossary, used in every file of the engine:
//
//	claim    inputs a worker has taken to call, consecutive indexes
//	lane     a worker's current claim, readable by the watcher and consumer
//	stall    a lane that has not started a call for a whole watch period
//	steal    take a stalled lane's unstarted tail and give it back
//	stop     end a run (lifecycle.stop; lifecycle.close stops and waits)
//	release  give back a resource: a Pool slot, a ring, a batch
//	park     the watcher's sleep while nothing is at risk

import (
	"sync"
	"sync/atomic"
	"time"
)

// lane is one worker's current claim: the inputs at offsets [0, end) of the
// claim, of which the worker has started those below next. word packs
// next<<32 | end, so that the worker starts each call with one atomic add
// on a line of its own, and a thief lowers end with one compare-and-swap:
// an add that takes next past end tells the worker that the rest of its
// claim is gone. After the add for offset i, the results of offsets below
// i are written (the add publishes them), so finished = min(next-1, end).
//
// mu guards what the watcher and the consumer read besides word: the
// claim's batch, and taken. The
// worker takes mu only to begin, extend and end a claim, and to record a
// failure; never per call.
type lane[In, Out any] struct {
	word atomic.Uint64

	mu    sync.Mutex
	b     *batch[In, Out] // the claim's inputs and results; nil between claims
	taken int             // results before this offset were taken by the consumer
	own   batch[In, Out]  // Map's batch for the lane's claims: Map writes results in place

	gen      atomic.Uint32 // claims begun; tells a new claim from a stalled one with the same word
	slotWait atomic.Bool   // the worker waits for a Pool slot for the claim (see sample)
	last     uint64        // word at the watcher's last sample; the watcher's own
	lastGen  uint32        // gen at the watcher's last sample; the watcher's own

	nextLane *lane[In, Out] // the list of lanes; set before the lane is published
	nextFree *lane[In, Out] // the free list; under lanes.mu
	_        [48]byte       // word is written once a call: keep other lanes off its cache line
}

// laneIdle is the word of a lane with no claim: next past end.
const laneIdle = 1 << 32

// unpack splits a lane's word into next and end.
func unpack(w uint64) (next, end int) { return int(w >> 32), int(uint32(w)) }

// begin publishes a new claim of n inputs. Only the lane's worker calls it.
func (l *lane[In, Out]) begin(b *batch[In, Out], n int) {
	l.mu.Lock()
	l.b, l.taken = b, 0
	l.gen.Add(1)
	l.word.Store(uint64(n))
	l.mu.Unlock()
}

// next starts the next call of the claim: it returns the offset of the
// input to call, or false when the claim is used up or its tail was
// stolen. Only the lane's worker calls it.
func (l *lane[In, Out]) next() (int, bool) {
	n, end := unpack(l.word.Add(1 << 32))
	return n - 1, n <= end
}

// extend grows the claim, all of whose calls are done, to end. No thief
// takes from such a claim (steal needs an unstarted call), so a plain
// store does. Only the lane's worker calls it, holding mu.
func (l *lane[In, Out]) extend(done, end int) {
	l.word.Store(uint64(done)<<32 | uint64(end))
}

// steal takes the unstarted tail of the claim, if there is one: it returns
// its offsets [from, to). The caller holds mu.
func (l *lane[In, Out]) steal() (from, to int, ok bool) {
	for {
		w := l.word.Load()
		n, e := unpack(w)
		if n >= e {
			return 0, 0, false
		}
		if l.word.CompareAndSwap(w, uint64(n)<<32|uint64(n)) {
			return n, e, true
		}
	}
}

// finished returns how many results of the claim are written.
func (l *lane[In, Out]) finished() int {
	n, e := unpack(l.word.Load())
	return max(min(n-1, e), 0)
}

// lanes is the set of a run's lanes: one per worker running, reused when a
// worker exits and another starts. It is a list that only grows at its
// head, so that the watcher and the consumer walk it without a lock and a
// new lane costs one allocation.
type lanes[In, Out any] struct {
	head atomic.Pointer[lane[In, Out]]
	mu   sync.Mutex
	free *lane[In, Out] // lanes of workers that exited, linked by nextFree
}

// get returns a lane for a new worker.
func (s *lanes[In, Out]) get() *lane[In, Out] {
	s.mu.Lock()
	if l := s.free; l != nil {
		s.free, l.nextFree = l.nextFree, nil
		s.mu.Unlock()
		return l
	}
	s.mu.Unlock()
	l := &lane[In, Out]{}
	l.word.Store(laneIdle)
	for {
		h := s.head.Load()
		l.nextLane = h
		if s.head.CompareAndSwap(h, l) {
			return l
		}
	}
}

// put gives back the lane of a worker that exits; its claim is over.
func (s *lanes[In, Out]) put(l *lane[In, Out]) {
	l.mu.Lock()
	l.b = nil
	l.word.Store(laneIdle)
	l.mu.Unlock()
	s.mu.Lock()
	l.nextFree, s.free = s.free, l
	s.mu.Unlock()
}

// all ranges over the lanes so far.
func (s *lanes[In, Out]) all(yield func(*lane[In, Out]) bool) {
	for l := s.head.Load(); l != nil; l = l.nextLane {
		if !yield(l) {
			return
		}
	}
}

// watched is what the watcher needs of a run (Run and Stream, or Map).
type watched[In, Out any] interface {
	// stealFrom gives a stalled lane's unstarted tail back to the run,
	// holding l.mu; it reports whether there was one.
	stealFrom(l *lane[In, Out]) bool
	// hostage tells the consumer to take the finished results of a
	// stalled lane, holding l.mu. It reports whether it told it now: a
	// nudge still pending is the consumer's to take, and the consumer
	// wakes the watcher once it has (a consumer stuck in user code is no
	// risk the watcher can do anything about, and must not keep it
	// sampling for ever).
	hostage(l *lane[In, Out]) bool
	// stalledQueue makes sure that inputs waiting to be claimed get a
	// worker when none was claimed for a whole period: it wakes a
	// sleeping worker, or, when no lane moved either, starts one. It
	// reports whether inputs wait that a worker could still be found for.
	stalledQueue(moved bool) bool
	// queued reports, without changing anything, whether inputs wait
	// that a worker could be found for (see stalledQueue).
	queued() bool
	// stolen is called after a sample that stole: the stolen inputs need
	// workers.
	stolen()
}

// watcher samples a run's lanes while the run has anything at risk. While
// claims flow, the workers sample, between claims, once a sample is due
// (see poll), with the clock reading they make anyway; the watcher
// goroutine's timer, pushed back by every sample, fires only when no
// worker has come to a claim's end for a period and a bit: when the calls
// block. So the watcher goroutine wakes about once in a run of 10,000
// calls of 1µs at c=2, where a timer that fired every period woke it 24 to
// 32 times, each time on a processor that the workers and the consumer
// share. The watcher goroutine parks while nothing is at risk.
type watcher[In, Out any] struct {
	lanes  *lanes[In, Out]
	run    watched[In, Out]
	t0     time.Time // the origin of due and the sample times
	parked atomic.Bool
	unpark chan struct{} // cap 1; sent by whoever clears parked
	alarm  alarm         // the watcher goroutine's timer; reset under mu

	due atomic.Int64 // since t0: when the next sample is due

	mu        sync.Mutex // held while sampling, by a worker or the watcher goroutine
	lastSteal int64      // since t0: the last sample that stole; under mu
}

// init prepares the watcher of a run; it must run before any worker.
func (w *watcher[In, Out]) init(ls *lanes[In, Out], run watched[In, Out], t0 time.Time) {
	w.lanes, w.run, w.t0 = ls, run, t0
	w.unpark = make(chan struct{}, 1)
	w.alarm.init()
	w.parked.Store(true) // until the first claim of more than one input
}

// wake unparks the watcher if it is parked. Callers change the state the
// watcher would see first (a claim begun, an input pushed), then call wake:
// either the watcher's check after it set parked sees the change, or wake
// sees parked set.
func (w *watcher[In, Out]) wake() {
	if w.parked.Load() && w.parked.CompareAndSwap(true, false) {
		w.unpark <- struct{}{} // cap 1, and only the one that cleared parked sends
	}
}

// poll samples the lanes if a sample is due and no one else is sampling.
// Workers call it at the end of a claim, with the time it ended, which
// tells whether a sample is due: a clock reading per claim, not per call.
func (w *watcher[In, Out]) poll(now time.Time) {
	t := int64(now.Sub(w.t0))
	if t < w.due.Load() || !w.mu.TryLock() {
		return
	}
	risk := false
	// The time the sample is taken, not the worker's reading: a worker
	// descheduled since it read the clock would otherwise set the next
	// sample due less than a period after this one, and judge a call
	// that starts in between stalled. One clock reading per sample.
	if t = int64(time.Since(w.t0)); t >= w.due.Load() {
		// The timer fires only if no worker samples for a period after
		// this one and a claim's length (see watchSlack).
		risk = w.sample(t, watchSlack)
	}
	w.mu.Unlock()
	if risk {
		w.wake() // a parked watcher does not see the timer
	}
}

// sample looks at the lanes once, at time t since t0, and sets when the
// next sample is due, pushing the timer back to then plus slack. It
// reports whether anything is at risk. w.mu is held.
func (w *watcher[In, Out]) sample(t int64, slack time.Duration) bool {
	risk, stole := sample(w.lanes, w.run)
	if stole {
		w.lastSteal = t
	}
	// A run whose claims have stalled is heavy-tailed: its next slow call
	// is likely to come soon, in a claim of quick calls again, and it is
	// likely to come while every other worker blocks too, when only the
	// timer samples. So the timer gets no slack either: the wake-ups it
	// may cost while claims flow are cheap next to calls that block.
	period := watchPeriod
	if w.lastSteal != 0 && t-w.lastSteal < int64(tailWindow) {
		period, slack = tailPeriod, 0
	}
	w.due.Store(t + int64(period))
	w.alarm.reset(period + slack)
	return risk
}

// watch is the watcher goroutine's body: it returns when done is closed.
// It starts parked (see init).
//
// Tokens on unpark: a waker sends one only when it clears parked, which
// only the watcher sets; after it sets parked, the watcher takes the one
// token of the waker that clears it, before it may set parked again, or
// clears parked itself. So at most one token is ever pending, and a waker
// never blocks, even after the watcher has returned.
func (w *watcher[In, Out]) watch(done <-chan struct{}) {
	defer w.alarm.close(&w.mu)
	asleep := true // parked was set, by init or below, and not cleared here
	for {
		if asleep {
			// In a testing/synctest bubble a parked watcher is durably
			// blocked, so a run whose calls all wait for ever is
			// reported as the deadlock it is instead of ticking for
			// ever. Once woken it samples at once, if a sample is
			// due: a timer under a millisecond fires a millisecond
			// late while every processor is idle (the netpoller's
			// timeout is in milliseconds), and a claim that stalls
			// from its first call would be noticed late.
			select {
			case <-w.unpark:
				asleep = false
			case <-done:
				return
			}
		} else {
			if !w.alarm.wait(&w.mu, done) {
				return
			}
		}
		w.mu.Lock()
		t := int64(time.Since(w.t0))
		if due := w.due.Load(); t < due {
			// A worker sampled since the timer was set, and pushed it
			// back; or a wake came before the next sample is due.
			w.alarm.reset(time.Duration(due - t))
			w.mu.Unlock()
			continue
		}
		if !w.sample(t, 0) {
			w.alarm.stop()
			w.parked.Store(true)
			asleep = true
			// Something that came at risk after the sample may have
			// been missed by its waker, which saw parked clear: sample
			// again once due. If a waker clears parked first, its
			// token wakes the watcher instead.
			if w.atRisk() && w.parked.CompareAndSwap(true, false) {
				asleep = false
				w.alarm.reset(time.Duration(w.due.Load() - t))
			}
		}
		w.mu.Unlock()
	}
}

// atRisk reports, without changing anything, whether anything came at
// risk since the last sample: a lane whose claim of more than one input
// has begun or moved since, or inputs waiting that a worker could be
// found for. w.mu is held.
func (w *watcher[In, Out]) atRisk() bool {
	for l := range w.lanes.all {
		word := l.word.Load()
		if word == l.last && l.gen.Load() == l.lastGen {
			// The sample judged it; but a claim judged to wait for a
			// Pool slot may have got it since (see processWithSlot).
			if n, e := unpack(word); n == 0 && e > 1 && !l.slotWait.Load() {
				return true
			}
			continue
		}
		if n, e := unpack(word); n <= e && e > 1 {
			return true
		}
	}
	return w.run.queued()
}

// sample looks at every lane once, steals the tails of stalled ones and
// frees their results; it reports whether anything is at risk: a claim
// with an unstarted tail or with results not handed over, or inputs
// waiting in the queue.
func sample[In, Out any](ls *lanes[In, Out], run watched[In, Out]) (risk, stole bool) {
	moved := false
	for l := range ls.all {
		w, g := l.word.Load(), l.gen.Load()
		n, e := unpack(w)
		same := w == l.last && g == l.lastGen
		l.last, l.lastGen = w, g
		if !same {
			moved = true
		}
		if n > e || (n <= 1 && e <= 1) {
			// No claim, or a claim of one input: nothing waits behind it.
			continue
		}
		if same && n == 0 {
			// Begun but no call started for a whole period. The claim
			// is not stolen: a claim must make a call, or Map would
			// count it complete with none and an ordered Run would
			// deliver an empty batch at the start index of the inputs
			// stolen from it. If its worker waits for a slot of the
			// run's Pool, which work conservation excepts, it wakes the
			// watcher once it has the slot (see processWithSlot);
			// otherwise the worker is merely late to make its first
			// call, and the claim stays at risk.
			if !l.slotWait.Load() {
				risk = true
			}
			continue
		}
		if same {
			// Stalled: its call has run for a whole period.
			l.mu.Lock()
			if l.gen.Load() != g {
				// The claim ended and its worker began the next one
				// (under l.mu) since the read above: the new claim may
				// have started no call, and stolen whole it would make
				// none. Under l.mu the claim stays the one judged, and
				// its next only grows, so steal leaves it a call.
				l.mu.Unlock()
				risk = true
				continue
			}
			if run.stealFrom(l) {
				stole = true
			}
			held := run.hostage(l)
			l.mu.Unlock()
			if held {
				risk = true
			}
		} else {
			risk = true
		}
	}
	if stole {
		run.stolen()
	}
	if run.stalledQueue(moved && !stole) {
		risk = true
	}
	return risk || stole, stole
}
