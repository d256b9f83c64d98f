package fofi

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
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
		observeNoRun(&cfg, false)
		return nil, parentError(ctx, context.Cause(ctx))
	}
	r := &run[In, Out]{inputs: inputs, pool: batchPool[In, Out]()}
	r.cfg = cfg
	if cfg.pool != nil {
		r.slots = newSlots(ctx, cfg.pool)
	}
	r.obs = newObserver(&cfg)
	r.call = newCaller(work, &cfg, r.obs)
	r.window = int64(cfg.concurrency) + int64(cfg.buffer) + 1
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
	engine[In, Out]
	inputs iter.Seq[In]
	window int64 // inputs pulled but not yet consumed: at most concurrency + buffer + 1
	q      *queue[In]
	pool   *sync.Pool // of *batch[In, Out], shared by every run of these types

	out           chan *batch[In, Out]
	room          chan struct{}
	consumed      atomic.Int64  // inputs whose batch the consumer has finished
	feederWaiting atomic.Bool   // the feeder waits on room for consumed to grow
	lastHead      int64         // the queue's head at the last sample; under watcher.mu
	nudge         chan struct{} // watcher to consumer: take the results of a stalled lane

	feeder   sync.WaitGroup
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
	if r.cfg.ordered && !r.cfg.continueOnError {
		r.loopExact = true
		deliver = r.stopAtFailure(deliver)
	}
	r.src = r
	r.startEngine()
	r.feeder.Go(func() { r.lifecycle.guard(r.feed) })

	// The deferred shutdown also runs when deliver panics or calls
	// runtime.Goexit: the panic then leaves Run only after every
	// goroutine of the run has exited.
	defer r.shutdown()
	complete := r.consume(deliver)
	if r.obs != nil {
		r.obs.complete = complete
	}
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
	r.stopWatcher()
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
	return r.q.tail.Load()-r.q.head.Load() >= r.claimLimit()
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

// extend grows the claim of l, all of whose calls are done, with up to n
// inputs right after it, if they are published and unclaimed (see
// queue.claimAfter); if they are not, it first lets the feeder, if it
// shares this processor, publish some more, so that the batch does not go
// out half empty.
func (r *run[In, Out]) extend(l *lane[In, Out], b *batch[In, Out], n int64) bool {
	if !r.claimAfter(l, b, n) {
		if r.q.finished() {
			return false
		}
		runtime.Gosched()
		if !r.claimAfter(l, b, n) {
			return false
		}
	}
	r.wakeFeeder()
	return true
}

func (r *run[In, Out]) claimAfter(l *lane[In, Out], b *batch[In, Out], n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	done := len(b.in)
	in, more := r.q.claimAfter(int64(b.start+done), n, b.in)
	if !more {
		return false
	}
	b.in, b.out = in, b.out[:len(in)]
	l.extend(done, len(in))
	return true
}

// batch returns a batch for a claim of up to k inputs (see newBatch).
func (r *run[In, Out]) batch(k int64, _ *lane[In, Out]) *batch[In, Out] { return r.newBatch(k) }

// claim claims up to k inputs from the queue into b.
func (r *run[In, Out]) claim(b *batch[In, Out], k int64) bool {
	start, in, ok := r.q.claim(k, b.in)
	b.start, b.in = int(start), in
	b.out = b.out[:len(in)]
	return ok
}

// claimed frees the claimed inputs' room for the feeder, and, while
// inputs still wait and no worker sleeps, gets slow work one more worker
// now, not only when the feeder pushes again (it may have ended, or be
// stuck in a slow iterator).
func (r *run[In, Out]) claimed() {
	r.wakeFeeder()
	if r.q.pending() && r.started.Load() < int64(r.cfg.concurrency) {
		r.startWorkers(r.workersNeeded())
	}
}

// idle puts b back and sleeps until inputs are published, unless the
// feeder has ended and nothing is left.
func (r *run[In, Out]) idle(b *batch[In, Out]) bool {
	r.recycle(b)
	if r.q.finished() {
		return r.q.pending() // given back by another worker
	}
	return r.sleep()
}

// end hands the results of the claim of l that the consumer has not taken
// to the consumer (see endClaim).
func (r *run[In, Out]) end(l *lane[In, Out], b *batch[In, Out], perItem time.Duration) bool {
	if b = r.endClaim(l, b); b == nil {
		return true // the consumer took every result already
	}
	if r.obs != nil {
		r.obs.handedOver(len(b.out) - len(b.errs))
	}
	select {
	case r.out <- b:
	case <-r.done:
		return false
	}
	// Let the consumer, just woken by the send, run now. Woken goroutines
	// wait in this processor's runnext slot, which idle processors are
	// slow to steal from, so without this it waits for the whole next
	// batch of quick work, and the window fills meanwhile. Slow work
	// blocks soon anyway, and yielding would only queue its workers
	// behind each other.
	if perItem < batchTarget {
		runtime.Gosched()
	}
	return true
}

// backlog is the queue's part of a snapshot.
func (r *run[In, Out]) backlog() (sleepers, backlog, batch int64) {
	return int64(r.q.sleepers.Load()), r.q.tail.Load() - r.q.head.Load() + r.q.retItems.Load(), r.claimLimit()
}

// returned is how many given-back inputs wait in the queue.
func (r *run[In, Out]) returned() int64 { return r.q.retItems.Load() }

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
	if !r.queued() {
		return false // or every worker is busy: the first to finish claims
	}
	if h == last || r.q.nReturned.Load() > 0 {
		switch {
		case r.q.sleepers.Load() > 0:
			r.q.wakeOne()
		case !moved:
			r.startWorker()
		}
	}
	return true
}

// queued reports whether inputs wait to be claimed while a worker sleeps
// or another may start (see watched).
func (r *run[In, Out]) queued() bool {
	return r.q.pending() && !r.stopped() &&
		(r.q.sleepers.Load() > 0 || r.started.Load() < int64(r.cfg.concurrency))
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
