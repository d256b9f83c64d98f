package fofi

import (
	"context"
	"errors"
	"iter"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Run calls work for every input on up to [WithConcurrency] goroutines and
// passes each result to consume, which is called on the goroutine that
// called Run, one result at a time. It is the concurrent form of
//
//	for in := range inputs {
//		out, err := work(ctx, in)
//		if err != nil {
//			return err
//		}
//		if err := consume(out); err != nil {
//			return err
//		}
//	}
//
// and keeps its promises: Run returns when every input has been processed
// or the run stopped, and in both cases only after every work call has
// returned and every goroutine it started has exited.
//
// Results reach consume in completion order, or in input order with
// [WithOrdered]. inputs is ranged over once, lazily, on one goroutine of
// Run's, never further ahead of consume than the buffer allows (see
// Backpressure in the package documentation).
//
// By default the first error stops the run: a work error, returned as a
// [*TaskError], or a consume error, returned as is. Cancelling ctx stops the
// run too, and Run returns an error for which errors.Is(err, ctx.Err())
// holds. With [WithContinueOnError] work errors are collected instead. A
// panic or runtime.Goexit in work or in inputs is replayed on the caller's
// goroutine once the run has stopped (see Panics). Results that have not
// reached consume when the run stops are dropped.
//
// Run returns nil for an empty input without calling work or consume. A nil
// ctx, inputs, work or consume, or an invalid option, makes Run return an
// error wrapping [ErrInvalidOption] before it calls anything.
func Run[In, Out any](ctx context.Context, inputs iter.Seq[In],
	work func(context.Context, In) (Out, error), consume func(Out) error, opts ...Option) error {
	if consume == nil {
		return configError("Run: nil consume function")
	}
	r, err := newRun("Run", ctx, inputs, work, opts)
	if err != nil {
		return err
	}
	return r.consumeWith(consume)
}

// consumeWith does the run with consume as the consumer: the body of Run.
func (r *run[In, Out]) consumeWith(consume func(Out) error) error {
	return r.do(func(v Out, te *TaskError) bool {
		if te != nil {
			r.taskErrs = append(r.taskErrs, te)
			return true
		}
		if err := consume(v); err != nil {
			r.stop(err)
			return false
		}
		return true
	})
}

// Stream returns an iterator that runs work like [Run] each time it is
// ranged over, and yields the results to the loop body on the ranging
// goroutine: the loop body is the consumer. Every range starts a fresh run
// and pulls inputs anew.
//
// By default a failed run yields one final (zero, err) pair and ends: err
// is the first [*TaskError], the context's error or a configuration error
// wrapping [ErrInvalidOption]. With [WithContinueOnError] every failed work
// call is yielded as (zero, *TaskError) in its place in the sequence, and
// the run goes on.
//
// Leaving the loop early, by break, return, panic or runtime.Goexit,
// cancels the work in flight and waits for it: when the loop statement is
// left, nothing the run started is still running. The yielded pairs are
// valid after the loop.
func Stream[In, Out any](ctx context.Context, inputs iter.Seq[In],
	work func(context.Context, In) (Out, error), opts ...Option) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		r, err := newRun("Stream", ctx, inputs, work, opts)
		if err != nil {
			yield(zero, err)
			return
		}
		r.yieldTo(yield)
	}
}

// yieldTo does the run with the loop body yield as the consumer: the body
// of the iterator that Stream returns.
func (r *run[In, Out]) yieldTo(yield func(Out, error) bool) {
	var zero Out
	broke := false
	err := r.do(func(v Out, te *TaskError) bool {
		var ok bool
		if te != nil {
			ok = yield(zero, failure(te))
		} else {
			ok = yield(v, nil)
		}
		broke = !ok // do stops the run when deliver returns false
		return ok
	})
	// Task errors have been yielded one by one; what is left is the
	// reason the run stopped, if it was not the loop's own break.
	if err != nil && !broke {
		yield(zero, err)
	}
}

// newRun validates the arguments and options. It starts nothing.
func newRun[In, Out any](name string, ctx context.Context, inputs iter.Seq[In],
	work func(context.Context, In) (Out, error), opts []Option) (*run[In, Out], error) {
	switch {
	case ctx == nil:
		return nil, configError("%s: nil context", name)
	case inputs == nil:
		return nil, configError("%s: nil inputs iterator", name)
	case work == nil:
		return nil, configError("%s: nil work function", name)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, parentError(ctx, context.Cause(ctx))
	}
	r := &run[In, Out]{cfg: cfg, inputs: inputs, pool: batchPool[In, Out]()}
	if cfg.pool != nil {
		r.slots = newSlots(ctx, cfg.pool)
	}
	r.obs = newObserver(&cfg)
	r.call = newCaller(work, &cfg, r.obs)
	r.window = int64(cfg.concurrency) + int64(cfg.buffer) + 1
	r.failAt.Store(math.MaxInt64)
	r.lifecycle.init(ctx)
	return r, nil
}

// run is the state of one Run or one range over a Stream.
//
// Goroutines: the feeder ranges over inputs and publishes each input in
// the queue; up to concurrency workers, started through an errgroup as
// needed, claim inputs from the queue, call work and hand result batches to
// the consumer; the consumer is the caller's goroutine. The caller cancels
// the run and waits for the feeder and every worker before it returns.
//
// Channels: out (workers and feeder to consumer) is buffered and never
// closed: the feeder's end message says how many inputs to expect instead,
// so that no goroutine has to wait for the workers in order to close it.
// room (consumer and workers to feeder) wakes a feeder waiting for space in
// the window or for a free slot in the queue. The queue has its own wake-up
// channels (see queue).
type run[In, Out any] struct {
	lifecycle
	cfg    config
	inputs iter.Seq[In]
	call   caller[In, Out]
	window int64 // inputs pulled but not yet consumed: at most concurrency + buffer + 1
	// failAt is, with WithOrdered, the smallest index of a failed call so
	// far, and math.MaxInt64 before one fails (see ordered.go). Read
	// before every call, so kept beside fields that are only read.
	failAt atomic.Int64

	q        *queue[In]
	started  atomic.Int64 // workers running (or about to)
	starting atomic.Int64 // workers started that have not tried to claim yet

	t0         time.Time    // when the run started
	firstClaim atomic.Int64 // when the first input was claimed, since t0; 0 before
	out        chan *batch[In, Out]
	room       chan struct{}

	consumed      atomic.Int64 // inputs whose batch the consumer has finished
	feederWaiting atomic.Bool  // the feeder waits on room for consumed to grow
	workNs        atomic.Int64 // work time per item in the last batch; 0 until measured

	pool  *sync.Pool // of *batch[In, Out], shared by every run of these types
	slots *slots     // with WithPool
	obs   *observer  // with WithStats or WithProgress

	lanes    lanes[In, Out]
	watcher  watcher
	lastHead int64         // the queue's head at the watcher's last sample; the watcher's own
	nudge    chan struct{} // watcher to consumer: take the results of a stalled lane

	feeder   sync.WaitGroup
	watching sync.WaitGroup
	workers  errgroup.Group
	taskErrs []*TaskError // with WithContinueOnError; owned by the consumer
}

// do runs the whole run with deliver as the consumer; deliver returns false
// to stop the run. do returns once nothing of the run is running, with the
// run's error; it replays a panic or Goexit of the run's goroutines.
func (r *run[In, Out]) do(deliver func(Out, *TaskError) bool) error {
	r.t0 = time.Now()
	r.q = newQueue[In](r.cfg.concurrency, r.window)
	// At most window batches exist, so out blocks a sender only when the
	// window is larger than its capacity and batches are small.
	// It is not reused from run to run, as the ring is: a channel made in
	// one testing/synctest bubble is fatal to use from outside it.
	r.out = make(chan *batch[In, Out], min(r.window, 4096)+1)
	r.room = make(chan struct{}, 1)
	r.nudge = make(chan struct{}, 1)
	r.watcher.unpark = make(chan struct{}, 1)
	r.workers.SetLimit(r.cfg.concurrency)
	if r.cfg.ordered && !r.cfg.continueOnError {
		deliver = r.stopAtFailure(deliver)
	}
	r.feeder.Go(func() { r.lifecycle.guard(r.feed) })
	r.watching.Go(func() { r.lifecycle.guard(func() { watch(&r.watcher, &r.lanes, r, r.done) }) })

	// The deferred shutdown also runs when deliver panics or calls
	// runtime.Goexit: the panic then leaves Run only after every
	// goroutine of the run has exited.
	defer r.shutdown()
	complete := r.consume(deliver)
	r.shutdown()
	// Nothing of the run runs any more, so the next run may reuse its
	// ring. (When deliver panics, the deferred shutdown runs instead, and
	// the ring is left to the garbage collector.)
	r.q.release()
	r.replay()
	if r.obs != nil {
		r.obs.tick(true)
	}

	var err error
	if !complete {
		err = failure(r.err())
	}
	if len(r.taskErrs) == 0 {
		return err
	}
	// Only WithContinueOnError collects task errors: report them in input
	// order, then the reason the run stopped early, if any.
	slices.SortFunc(r.taskErrs, func(a, b *TaskError) int { return a.Index - b.Index })
	errs := make([]error, 0, len(r.taskErrs)+1)
	for _, te := range r.taskErrs {
		errs = append(errs, failure(te))
	}
	return errors.Join(append(errs, err)...)
}

// shutdown stops the run and waits for its goroutines. It may run twice.
// The feeder and the watcher, which start workers, are waited for first;
// workers start workers only from a goroutine of the group, which Wait is
// waiting for, so Go never races with a Wait that could return.
func (r *run[In, Out]) shutdown() {
	r.close()
	r.feeder.Wait()
	r.watching.Wait()
	r.workers.Wait()
	if r.obs != nil {
		r.obs.fill(&r.cfg)
	}
}

// feed ranges over the inputs and publishes them in the queue, keeping
// pulled - consumed within the window.
func (r *run[In, Out]) feed() {
	var (
		pulled   int64 // inputs pulled so far, which is also the next index
		seen     int64 // consumed, as last read
		finished bool  // a yield returned false
	)
	r.inputs(func(v In) bool {
		if finished || r.stopped() || pulled > r.failAt.Load() {
			finished = true // an iterator that calls yield after false gets false again
			return false
		}
		if !r.q.free(pulled) && !r.waitFor(func() bool { return r.q.free(pulled) }) {
			finished = true
			return false
		}
		r.q.push(pulled, v, r.wakeWorker)
		pulled++
		if r.watcher.parked.Load() && (r.q.sleepers.Load() > 0 || r.started.Load() < int64(r.cfg.concurrency)) {
			r.watcher.wake() // the input may wait behind workers that block
		}
		if r.feederAsks(pulled) {
			r.startWorkers(r.workersNeeded())
		}
		if pulled-seen >= r.window {
			seen = r.consumed.Load()
			if pulled-seen >= r.window && !r.waitFor(func() bool { return pulled-r.consumed.Load() < r.window }) {
				finished = true
				return false
			}
		}
		return true
	})
	close(r.q.ended) // the feeder is its only closer
	if !finished && !r.stopped() {
		select {
		case r.out <- &batch[In, Out]{end: true, total: pulled}:
		case <-r.done:
		}
	}
}

// feederAsks reports whether the feeder, having published pulled inputs,
// should ask workersNeeded, which costs a handful of atomic loads of lines
// the workers write: never once concurrency workers run; for quick work,
// every 64 inputs only; before the work is measured, only while every
// worker started has claimed, since a worker yet to claim asks itself when
// it claims (see work). A fast iterator publishes a short run's inputs
// before its first worker is even scheduled, and asking at each of them
// cost 16 concurrent runs of 500 inputs 10ns an input (CPU profile of
// BenchmarkPool), about what the push itself costs.
func (r *run[In, Out]) feederAsks(pulled int64) bool {
	if r.started.Load() >= int64(r.cfg.concurrency) {
		return false
	}
	if r.quick() {
		return pulled&63 == 0
	}
	return r.workNs.Load() != 0 || r.starting.Load() == 0
}

// workersNeeded reports how many more workers would help (see the
// function workersNeeded in policy.go).
func (r *run[In, Out]) workersNeeded() int64 {
	s := snapshot{
		concurrency: int64(r.cfg.concurrency),
		procs:       int64(runtime.GOMAXPROCS(0)),
		started:     r.started.Load(),
		starting:    r.starting.Load(),
		sleepers:    int64(r.q.sleepers.Load()),
		backlog:     r.q.tail.Load() - r.q.head.Load() + r.q.retItems.Load(),
		work:        time.Duration(r.workNs.Load()),
		batch:       r.batchLimit(),
	}
	if s.work == 0 {
		s.slowSoFar = r.slowSoFar()
	}
	if r.slots != nil && s.work > 0 && s.work < batchTarget {
		s.poolFull = r.slots.pool.full()
	}
	return workersNeeded(s)
}

// startWorkers starts up to n workers, fewer if concurrency of them run.
func (r *run[In, Out]) startWorkers(n int64) {
	for ; n > 0 && r.startWorker(); n-- {
	}
}

// wakeWorker reports whether a sleeping worker should be woken for the
// input just published: always when no worker is awake, since nothing may
// be published after it for a long time; otherwise, for quick work, only
// once a full batch waits, as the workers awake claim what is published
// before they sleep. Waking a worker per input would hand quick work over
// one input at a time.
func (r *run[In, Out]) wakeWorker() bool {
	if r.started.Load() <= int64(r.q.sleepers.Load()) || !r.quick() {
		return true
	}
	return r.q.tail.Load()-r.q.head.Load() >= r.batchLimit()
}

// slowSoFar reports whether the first call, not finished yet, has been
// running for longer than batchTarget/4: slow work, before any call has
// finished to measure it.
func (r *run[In, Out]) slowSoFar() bool {
	first := r.firstClaim.Load()
	return first != 0 && int64(time.Since(r.t0))-first > int64(batchTarget/4)
}

// quick reports whether the work has been measured to take well under
// batchTarget a call.
func (r *run[In, Out]) quick() bool {
	work := time.Duration(r.workNs.Load())
	return work > 0 && work < batchTarget
}

// startWorker starts a worker unless concurrency of them run already.
func (r *run[In, Out]) startWorker() bool {
	r.started.Add(1)
	r.starting.Add(1)
	if r.workers.TryGo(func() error {
		defer r.started.Add(-1)
		r.guard(r.work)
		return nil
	}) {
		return true
	}
	r.started.Add(-1)
	r.starting.Add(-1)
	return false
}

// waitFor blocks until room, the feeder's condition, holds, or the run
// stops. The consumer (as it consumes) and the workers (as they claim
// inputs) send on r.room while feederWaiting is set.
func (r *run[In, Out]) waitFor(room func() bool) bool {
	for {
		r.feederWaiting.Store(true)
		// Either room sees the other side's progress, or the other
		// side's load of feederWaiting sees true and sends on room.
		if room() {
			r.feederWaiting.Store(false)
			return true
		}
		select {
		case <-r.room:
		case <-r.done:
			return false
		}
	}
}

// wakeFeeder wakes the feeder if it waits.
func (r *run[In, Out]) wakeFeeder() {
	if r.feederWaiting.Load() {
		select {
		case r.room <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// work is a worker: it claims inputs from the queue and processes them
// until the feeder has ended and nothing is left, or the run stops. Its
// lane shows its claim to the watcher and the consumer (see watch.go).
func (r *run[In, Out]) work() {
	growStack()
	ctx, w := r.slots.worker(r.ctx)
	l := r.lanes.get()
	defer r.lanes.put(l)
	k := r.firstBatchSize()
	first := true
	for !r.stopped() {
		b := r.newBatch(k)
		start, in, ok := r.q.claim(k, b.in)
		b.start, b.in = int(start), in
		if first {
			r.starting.Add(-1)
			first = false
		}
		if ok {
			if r.firstClaim.Load() == 0 {
				r.firstClaim.CompareAndSwap(0, max(int64(time.Since(r.t0)), 1))
			}
			r.wakeFeeder() // the slots claimed are free again
			// Inputs still wait and nobody sleeps: slow work gets one more
			// worker now, not only when the feeder pushes again (it may
			// have ended, or be stuck in a slow iterator).
			if r.q.pending() && r.started.Load() < int64(r.cfg.concurrency) {
				r.startWorkers(r.workersNeeded())
			}
		} else {
			r.recycle(b)
			if r.q.finished() {
				if r.q.pending() {
					continue // given back by another worker
				}
				return
			}
			if !r.sleep() {
				return
			}
			// The work may have turned slow while this worker slept.
			k = r.firstBatchSize()
			continue
		}
		b.out = b.out[:len(b.in)]
		l.begin(b, 0, len(b.in))
		if len(b.in) > 1 {
			r.watcher.wake()
		}
		perItem, ok := r.fill(ctx, w, l, b, k)
		if !ok {
			return
		}
		k = r.nextBatchSize(k, perItem)
		if b = r.endClaim(l, b); b == nil {
			continue // the consumer took every result already
		}
		if r.obs != nil {
			r.obs.handedOver(len(b.out) - len(b.errs))
		}
		select {
		case r.out <- b:
		case <-r.done:
			return
		}
		// Let the consumer, just woken by the send, run now. Woken
		// goroutines wait in this processor's runnext slot, which idle
		// processors are slow to steal from, so without this it waits
		// for the whole next batch of quick work, and the window fills
		// meanwhile. Slow work blocks soon anyway, and yielding would
		// only queue its workers behind each other.
		if perItem < batchTarget {
			runtime.Gosched()
		}
	}
}

// endClaim ends the claim of lane l, whose batch is b, and returns b with
// only the results the consumer has not taken, or nil when it took them
// all (b is then recycled).
func (r *run[In, Out]) endClaim(l *lane[In, Out], b *batch[In, Out]) *batch[In, Out] {
	done := l.finished()
	l.mu.Lock()
	from := l.taken
	l.b = nil
	l.mu.Unlock()
	b.out = b.out[:done]
	if from == 0 {
		return b
	}
	if from == done {
		r.recycle(b)
		return nil
	}
	n := copy(b.out, b.out[from:])
	clear(b.out[n:])
	b.out = b.out[:n]
	b.start += from
	b.errs = errsIn(b.errs[:0], b.errs, b.start, b.start+n)
	return b
}

// errsIn appends to dst the failures in errs whose input index is in
// [from, to), keeping their order. dst may share errs' array: it never
// gets ahead of the reading.
func errsIn(dst, errs []*TaskError, from, to int) []*TaskError {
	for _, te := range errs {
		if te.Index >= from && te.Index < to {
			dst = append(dst, te)
		}
	}
	return dst
}

// fill processes the claim of b, then, while b holds fewer than k inputs
// and the inputs right after it are published and unclaimed, claims and
// processes those too. It returns the work time per call of the last part.
func (r *run[In, Out]) fill(ctx context.Context, w *waiter, l *lane[In, Out], b *batch[In, Out], k int64) (time.Duration, bool) {
	yielded := false
	for {
		perItem, ok := r.processWithSlot(ctx, w, l, b)
		done := l.finished()
		if !ok || done < len(b.in) { // stopped, or its tail was taken
			return perItem, ok
		}
		next, room := int64(b.start+done), k-int64(done)
		if room <= 0 || perItem >= batchTarget/4 {
			return perItem, true
		}
		more := r.claimAfter(l, b, next, room)
		if !more && !yielded && !r.q.finished() {
			// Let the feeder, if it shares this processor, publish some
			// more before the batch goes out half empty.
			runtime.Gosched()
			yielded = true
			more = r.claimAfter(l, b, next, room)
		}
		if !more {
			return perItem, true
		}
		r.wakeFeeder()
		r.watcher.wake() // the claim holds more than one input now
	}
}

// claimAfter extends the claim of l, all of whose calls are done, with up
// to n inputs from index next on (see queue.claimAfter).
func (r *run[In, Out]) claimAfter(l *lane[In, Out], b *batch[In, Out], next, n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	done := len(b.in)
	in, more := r.q.claimAfter(next, n, b.in)
	if !more {
		return false
	}
	b.in, b.out = in, b.out[:len(in)]
	l.extend(done, len(in))
	return true
}

// stealFrom gives the unstarted tail of the stalled lane l back to the
// queue (see watched). l.mu is held.
func (r *run[In, Out]) stealFrom(l *lane[In, Out]) bool {
	b := l.b
	if b == nil {
		return false
	}
	from, to, ok := l.steal()
	if !ok {
		return false
	}
	r.q.giveBack(int64(b.start+from), b.in[from:to])
	clear(b.in[from:to])
	return true
}

// hostage tells the consumer to take the finished results of the stalled
// lane l, if it has any (see watched). l.mu is held.
func (r *run[In, Out]) hostage(l *lane[In, Out]) bool {
	if l.b == nil || l.finished() <= l.taken {
		return false
	}
	select {
	case r.nudge <- struct{}{}:
		return true
	default: // a nudge is pending already
		return false
	}
}

// stalledQueue gets a worker for inputs that wait in the queue while no
// claim was made for a whole watch period (see watched).
func (r *run[In, Out]) stalledQueue(moved bool) bool {
	h := r.q.head.Load()
	last := r.lastHead
	r.lastHead = h
	if !r.q.pending() || r.stopped() {
		return false
	}
	asleep := r.q.sleepers.Load() > 0
	free := r.started.Load() < int64(r.cfg.concurrency)
	if !asleep && !free {
		return false // every worker is busy: the first to finish claims
	}
	if h == last || r.q.nReturned.Load() > 0 {
		switch {
		case asleep:
			r.q.wakeOne()
		case !moved:
			r.startWorker()
		}
	}
	return true
}

// stolen starts workers for the inputs stolen, one each (see watched).
// The work is not marked slow: a claim also stalls when its worker is
// merely waiting for a processor, and CPU work marked slow would be handed
// over one result at a time.
func (r *run[In, Out]) stolen() {
	if r.stopped() {
		return
	}
	r.startWorkers(r.q.retItems.Load() - r.starting.Load())
}

// sleep waits for inputs (see queue.sleep). When the run is observed, a
// wait that starts while the feeder waits for room in the window is
// backpressure, and counts as Blocked.
func (r *run[In, Out]) sleep() bool {
	if r.obs == nil {
		return r.q.sleep(r.done)
	}
	t0, blocked := time.Now(), r.feederWaiting.Load()
	ok := r.q.sleep(r.done)
	if blocked {
		r.obs.blocked.Add(int64(time.Since(t0)))
	}
	return ok
}

// processWithSlot processes the claim of l, holding a slot of the run's
// pool if it has one. The deferred release gives the slot back even when
// work panics or calls runtime.Goexit.
func (r *run[In, Out]) processWithSlot(ctx context.Context, w *waiter, l *lane[In, Out], b *batch[In, Out]) (time.Duration, bool) {
	if r.slots == nil {
		return r.process(ctx, l, b)
	}
	borrowed, ok := r.slots.take(&r.lifecycle, w, r.obs)
	if !ok {
		return 0, false
	}
	defer r.slots.release(borrowed)
	if len(b.in) > 1 {
		r.watcher.wake() // it may have parked while this worker waited (see sample)
	}
	return r.process(ctx, l, b)
}

// process makes the calls of the claim of l and collects the results. It
// returns the work time per call, and false when the run stopped, in which
// case b is abandoned.
func (r *run[In, Out]) process(ctx context.Context, l *lane[In, Out], b *batch[In, Out]) (time.Duration, bool) {
	if r.obs != nil {
		r.obs.batchStarted()
	}
	start := time.Now()
	calls, failed, ok := r.calls(ctx, l, b, start)
	d := time.Since(start)
	if r.obs != nil {
		r.obs.batchDone(calls, failed, d)
	}
	if !ok || calls == 0 {
		return 0, ok
	}
	// A measured 0 (a coarse clock, or fake time in tests) still counts
	// as a measurement: the work is quick.
	perItem := max(d/time.Duration(calls), 1)
	r.workNs.Store(int64(perItem))
	return perItem, true
}

// calls makes the work calls of the claim of l, each started with
// lane.next, and reports how many it made, how many of those failed, and
// whether the run goes on. A claim that has run for twice batchTarget
// (checked after its first call and every clockEvery calls) gives the rest
// of its inputs back, as the watcher would once it stalls: quick work that
// turns slow is spread over the workers again.
func (r *run[In, Out]) calls(ctx context.Context, l *lane[In, Out], b *batch[In, Out], start time.Time) (calls, failed int, ok bool) {
	// halted may lag a parent's cancellation while the processors are
	// busy (see stopped); once per claim, ask the context itself.
	if r.cancelled() {
		return 0, 0, false
	}
	for {
		i, more := l.next()
		if !more {
			return calls, failed, true
		}
		if r.stopped() {
			return calls, failed, false
		}
		if int64(b.start+i) > r.failAt.Load() {
			l.cut(i) // an earlier input failed: see ordered.go
			return calls, failed, true
		}
		calls++
		out, err := r.call.call(ctx, b.in[i])
		if err != nil {
			failed++
			te, ok := r.failed(b.start+i, b.in[i], err)
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
			r.workNs.Store(int64(max(time.Since(start)/time.Duration(calls), batchTarget)))
			l.mu.Lock()
			stole := r.stealFrom(l)
			l.mu.Unlock()
			if stole {
				r.startWorkers(r.workersNeeded())
			}
		}
	}
}

// failed handles the error of the work call for input index, in. It
// returns the TaskError to record and true when the run goes on: with
// WithContinueOnError, and with WithOrdered, where the consumer stops the
// run once it reaches the failure (see failedAt).
func (r *run[In, Out]) failed(index int, in In, err error) (*TaskError, bool) {
	if r.cancelled() {
		return nil, false // caused by the stop, not a reason for it
	}
	te := &TaskError{Index: index, Input: r.call.input(in), Err: err}
	switch {
	case r.cfg.continueOnError:
		return te, true
	case r.cfg.ordered:
		r.failedAt(index)
		return te, true
	}
	r.stop(te)
	return nil, false
}
