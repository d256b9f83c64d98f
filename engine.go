package fofi

// This file is the engine that Run, Stream and Map share: its workers and
// the one loop each of them runs. An entry point plugs into it as a
// source, which says where a worker's claims come from and where their
// results go: Run and Stream pull inputs from an iterator into a queue and
// hand results to the consumer over a channel (fanout.go, queue.go,
// fanin.go); Map claims ranges of a slice's indexes and writes the results
// in place (map.go). An input's way through a worker, in engine.work:
//
//	source.claim     the input is claimed, with the ones after it, into a batch
//	lane.begin       the claim is published for the watcher (watch.go)
//	engine.calls     work is called for it, its result written to the batch
//	source.extend    the claim grows while the inputs after it are free
//	source.end       the results are handed over (or counted, for Map)
//
// while the watcher may take the claim's unstarted tail or its finished
// results at any time (see watch.go), and the scheduling policy decides
// how many workers run and how much each claims (policy.go).

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// source is an entry point's side of the engine. Its methods are called by
// the workers, concurrently, except where they say otherwise.
type source[In, Out any] interface {
	watched[In, Out]

	// batch returns an empty batch for a claim of up to k inputs by the
	// worker of lane l.
	batch(k int64, l *lane[In, Out]) *batch[In, Out]
	// claim takes up to k waiting inputs into b, setting b.start, b.in
	// and b.out, and reports whether there were any.
	claim(b *batch[In, Out], k int64) bool
	// claimed is called after a successful claim, before its calls.
	claimed()
	// idle is called when claim found nothing; b is the unused batch. It
	// waits until inputs may be waiting, and reports false when the
	// worker is to exit instead.
	idle(b *batch[In, Out]) bool
	// extend grows the claim on l, all of whose calls are done, by up to
	// n inputs right after it, if they are waiting, and reports whether
	// it did (see lane.extend).
	extend(l *lane[In, Out], b *batch[In, Out], n int64) bool
	// end ends the claim on l: its results, those of offsets below
	// l.finished(), go to the consumer. It reports false when the run
	// stopped meanwhile and the worker is to exit.
	end(l *lane[In, Out], b *batch[In, Out], perItem time.Duration) bool

	// claimLimit is the largest claim the source allows now (see
	// firstClaim and nextClaim).
	claimLimit() int64
	// backlog is what the source knows of the snapshot: sleepers,
	// backlog and batch. (A pointer to the snapshot, passed through the
	// interface, would move it to the heap at every decision.)
	backlog() (sleepers, backlog, batch int64)
	// returned is how many inputs the watcher or a worker gave back and
	// no worker has claimed again.
	returned() int64
}

// engine is the state that every entry point's run shares: its
// configuration, its workers, their lanes and the watcher. A run embeds it
// and sets src to itself.
type engine[In, Out any] struct {
	lifecycle
	cfg   config
	call  caller[In, Out]
	slots *slots    // with WithPool
	obs   *observer // with WithStats or WithProgress
	src   source[In, Out]

	workers  errgroup.Group
	started  atomic.Int64 // workers running (or about to)
	starting atomic.Int64 // workers started that have not tried to claim yet
	workNs   atomic.Int64 // work time per call in the last claim; 0 until measured
	t0       time.Time    // when the run started
	firstAt  atomic.Int64 // when the first input was claimed, since t0; 0 before
	// failAt is, for an ordered Run or Stream that fails fast, the
	// smallest index of a failed call so far, and math.MaxInt64 before
	// one fails, and always for the other runs (see ordered.go).
	failAt    atomic.Int64
	loopExact bool // failures lower failAt instead of stopping the run

	lanes    lanes[In, Out]
	watcher  watcher[In, Out]
	watching sync.WaitGroup
}

// startEngine starts the watcher; t0 and src must be set, and the
// lifecycle initialised.
func (e *engine[In, Out]) startEngine() {
	e.failAt.Store(math.MaxInt64)
	e.workers.SetLimit(e.cfg.concurrency) // TryGo enforces the bound; workersNeeded only estimates
	e.watcher.init(&e.lanes, e.src, e.t0)
	e.watching.Go(func() { e.guard(func() { e.watcher.watch(e.done) }) })
}

// stopWatcher waits for the watcher goroutine to return, once the run is
// stopped: its alarm rings at once, for it to see done closed.
func (e *engine[In, Out]) stopWatcher() {
	e.watcher.alarm.kick(&e.watcher.mu)
	e.watching.Wait()
}

// startWorker starts a worker unless concurrency of them run already.
func (e *engine[In, Out]) startWorker() bool {
	e.started.Add(1)
	e.starting.Add(1)
	if e.workers.TryGo(func() error {
		defer e.started.Add(-1)
		e.guard(e.work)
		return nil
	}) {
		return true
	}
	e.started.Add(-1)
	e.starting.Add(-1)
	return false
}

// startWorkers starts up to n workers, fewer if concurrency of them run.
func (e *engine[In, Out]) startWorkers(n int64) {
	for ; n > 0 && e.startWorker(); n-- {
	}
}

// workersNeeded reports how many more workers would help (see the
// function workersNeeded in policy.go).
func (e *engine[In, Out]) workersNeeded() int64 {
	s := snapshot{
		concurrency: int64(e.cfg.concurrency),
		procs:       int64(runtime.GOMAXPROCS(0)),
		started:     e.started.Load(),
		starting:    e.starting.Load(),
		work:        time.Duration(e.workNs.Load()),
	}
	s.sleepers, s.backlog, s.batch = e.src.backlog()
	if s.work == 0 {
		s.slowSoFar = e.slowSoFar()
	}
	if e.slots != nil && s.work > 0 && s.work < batchTarget {
		s.poolFull = e.slots.pool.full()
	}
	return workersNeeded(s)
}

// slowSoFar reports whether the first call, not finished yet, has been
// running for longer than batchTarget/4: slow work, before any call has
// finished to measure it.
func (e *engine[In, Out]) slowSoFar() bool {
	first := e.firstAt.Load()
	return first != 0 && int64(time.Since(e.t0))-first > int64(batchTarget/4)
}

// quick reports whether the work has been measured to take well under
// batchTarget a call.
func (e *engine[In, Out]) quick() bool {
	work := time.Duration(e.workNs.Load())
	return work > 0 && work < batchTarget
}

// firstClaim is a new worker's first claim: one input while the work is
// not measured yet or is slow, so that slow work is spread at once; for
// quick work, half of what the measured time per call gives, so that a
// worker started late does not ramp up from one input again, paying a
// hand-over per doubling (in a short run, such as a request's, the ramp of
// every worker is a good part of the run).
func (e *engine[In, Out]) firstClaim() int64 {
	if !e.quick() {
		return 1
	}
	return max(1, min(int64(batchTarget)/(2*e.workNs.Load()), e.src.claimLimit()))
}

// stolen starts workers for the inputs stolen, one each (see watched).
// The work is not marked slow: a claim also stalls when its worker is
// merely waiting for a processor, and CPU work marked slow would be handed
// over one result at a time.
func (e *engine[In, Out]) stolen() {
	if e.stopped() {
		return
	}
	e.startWorkers(e.src.returned() - e.starting.Load())
}

// work is a worker: it claims inputs from the source and processes them
// until the source has none left, or the run stops. Its lane shows its
// claim to the watcher and the consumer (see watch.go).
func (e *engine[In, Out]) work() {
	growStack()
	ctx, w := e.slots.worker(e.ctx)
	l := e.lanes.get()
	defer e.lanes.put(l)
	k := e.firstClaim()
	first := true
	for !e.stopped() {
		b := e.src.batch(k, l)
		ok := e.src.claim(b, k)
		if first {
			e.starting.Add(-1)
			first = false
		}
		if !ok {
			if !e.src.idle(b) {
				return
			}
			// The work may have turned slow while this worker waited.
			k = e.firstClaim()
			continue
		}
		if e.firstAt.Load() == 0 {
			e.firstAt.CompareAndSwap(0, max(int64(time.Since(e.t0)), 1))
		}
		e.src.claimed()
		l.begin(b, len(b.in))
		if len(b.in) > 1 {
			e.watcher.wake()
		}
		perItem, ok := e.fill(ctx, w, l, b, k)
		if !ok {
			return
		}
		k = nextClaim(k, perItem, e.src.claimLimit())
		if !e.src.end(l, b, perItem) {
			return
		}
	}
}

// fill processes the claim of b, then, while b holds fewer than k inputs
// and the source has the inputs right after it waiting, claims and
// processes those too. It returns the work time per call of the last part.
func (e *engine[In, Out]) fill(ctx context.Context, w *waiter, l *lane[In, Out], b *batch[In, Out], k int64) (time.Duration, bool) {
	for {
		perItem, ok := e.processWithSlot(ctx, w, l, b)
		done := l.finished()
		if !ok || done < len(b.in) { // stopped, or its tail was taken
			return perItem, ok
		}
		n := k - int64(done)
		if n <= 0 || perItem >= batchTarget/4 || !e.src.extend(l, b, n) {
			return perItem, true
		}
		e.watcher.wake() // the claim holds more than one input now
	}
}

// processWithSlot processes the claim of l, holding a slot of the run's
// pool if it has one. The deferred release gives the slot back even when
// work panics or calls runtime.Goexit.
func (e *engine[In, Out]) processWithSlot(ctx context.Context, w *waiter, l *lane[In, Out], b *batch[In, Out]) (time.Duration, bool) {
	if e.slots == nil {
		return e.process(ctx, l, b)
	}
	l.slotWait.Store(true)
	held, ok := e.slots.take(&e.lifecycle, w, e.obs)
	l.slotWait.Store(false)
	if !ok {
		return 0, false
	}
	defer e.slots.release(held)
	if len(b.in) > 1 {
		// The watcher may have parked while this worker waited (see
		// sample); if it parks after this, it sees slotWait cleared.
		e.watcher.wake()
	}
	return e.process(ctx, l, b)
}

// process makes the calls of the claim of l. It returns the work time per
// call, and false when the run stopped, in which case b is abandoned. The
// clock reading at its end is also when the worker samples the lanes, if
// a sample is due (see watcher.poll).
func (e *engine[In, Out]) process(ctx context.Context, l *lane[In, Out], b *batch[In, Out]) (time.Duration, bool) {
	if e.obs != nil {
		e.obs.batchStarted()
	}
	start := time.Now()
	calls, failed, ok := e.calls(ctx, l, b, start)
	end := time.Now()
	d := end.Sub(start)
	if e.obs != nil {
		e.obs.batchDone(calls, failed, d)
	}
	e.watcher.poll(end)
	if !ok || calls == 0 {
		return 0, ok
	}
	// A measured 0 (a coarse clock, or fake time in tests) still counts
	// as a measurement: the work is quick.
	perItem := max(d/time.Duration(calls), 1)
	e.workNs.Store(int64(perItem))
	return perItem, true
}

// calls makes the work calls of the claim of l, each started with
// lane.next, and reports how many it made, how many of those failed, and
// whether the run goes on. A claim that has run for twice batchTarget
// (checked after its first call and every clockEvery calls) gives the rest
// of its inputs back, as the watcher would once it stalls: quick work that
// turns slow is spread over the workers again.
func (e *engine[In, Out]) calls(ctx context.Context, l *lane[In, Out], b *batch[In, Out], start time.Time) (calls, failed int, ok bool) {
	// halted may lag a parent's cancellation while the processors are
	// busy (see stopped); once per claim, ask the context itself.
	if e.cancelled() {
		return 0, 0, false
	}
	for {
		i, more := l.next()
		if !more {
			return calls, failed, true
		}
		if e.stopped() {
			return calls, failed, false
		}
		if int64(b.start+i) > e.failAt.Load() {
			l.cut(i) // an earlier input failed: see ordered.go
			return calls, failed, true
		}
		calls++
		out, err := e.call.call(ctx, b.in[i])
		if err != nil {
			failed++
			te, ok := e.failed(b.start+i, b.in[i], err)
			if !ok {
				return calls, failed, false
			}
			l.mu.Lock() // the consumer reads errs when it takes results
			b.errs = append(b.errs, te)
			l.mu.Unlock()
			var zero Out
			out = zero
		}
		b.out[i] = out
		if (calls == 1 || calls%clockEvery == 0) && len(b.in)-i > 2 && time.Since(start) > 2*batchTarget {
			// The claim is slow: say so now, before the next claims.
			e.workNs.Store(int64(max(time.Since(start)/time.Duration(calls), batchTarget)))
			l.mu.Lock()
			stole := e.src.stealFrom(l)
			l.mu.Unlock()
			if stole {
				e.startWorkers(e.workersNeeded())
			}
		}
	}
}

// failed handles the error of the work call for input index, in. It
// returns the TaskError to record and true when the run goes on: with
// WithContinueOnError, and for an ordered Run or Stream, where the
// consumer stops the run once it reaches the failure (see failedAt).
func (e *engine[In, Out]) failed(index int, in In, err error) (*TaskError, bool) {
	if e.cancelled() {
		e.obs.stoppedCall()
		return nil, false // caused by the stop, not a reason for it
	}
	te := &TaskError{Index: index, Input: e.call.input(in), Err: err}
	switch {
	case e.cfg.continueOnError:
		return te, true
	case e.loopExact:
		e.failedAt(index)
		return te, true
	}
	e.stop(te)
	return nil, false
}
