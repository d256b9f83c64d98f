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
	var consumeErr error
	return r.do(func(v Out, te *TaskError) bool {
		if te != nil {
			r.taskErrs = append(r.taskErrs, te)
			return true
		}
		if consumeErr = consume(v); consumeErr != nil {
			r.stop(consumeErr)
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
		broke := false
		err = r.do(func(v Out, te *TaskError) bool {
			var ok bool
			if te != nil {
				ok = yield(zero, te)
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
	r.lifecycle.init(ctx)
	return r, nil
}

// run is the state of one Run or one range over a Stream.
//
// Goroutines: the feeder ranges over inputs and hands batches to workers;
// up to concurrency workers, started through an errgroup as needed, call
// work and hand result batches to the consumer; the consumer is the caller's
// goroutine. The caller cancels the run and waits for the feeder and every
// worker before it returns.
//
// Channels: in (feeder to workers) is unbuffered and closed by the feeder;
// out (workers and feeder to consumer) is buffered and never closed: the
// feeder's end message says how many batches to expect instead, so that no
// goroutine has to wait for the workers in order to close it. room
// (consumer to feeder) wakes a feeder waiting for space in the window.
type run[In, Out any] struct {
	lifecycle
	cfg    config
	inputs iter.Seq[In]
	call   caller[In, Out]
	window int64 // inputs pulled but not yet consumed: at most concurrency + buffer + 1

	in      chan *batch[In, Out]
	started int // workers started; owned by the feeder
	out     chan *batch[In, Out]
	room    chan struct{}

	consumed      atomic.Int64 // inputs whose batch the consumer has finished
	feederWaiting atomic.Bool  // the feeder waits on room for consumed to grow
	workNs        atomic.Int64 // work time per item in the last batch; 0 until measured

	pool  *sync.Pool // of *batch[In, Out], shared by every run of these types
	slots *slots     // with WithPool
	obs   *observer  // with WithStats or WithProgress

	feeder   sync.WaitGroup
	workers  errgroup.Group
	taskErrs []*TaskError // with WithContinueOnError; owned by the consumer
}

// do runs the whole run with deliver as the consumer; deliver returns false
// to stop the run. do returns once nothing of the run is running, with the
// run's error; it replays a panic or Goexit of the run's goroutines.
func (r *run[In, Out]) do(deliver func(Out, *TaskError) bool) error {
	r.in = make(chan *batch[In, Out], min(r.cfg.concurrency, queuedBatches))
	// At most window batches exist, so out blocks a sender only when the
	// window is larger than its capacity and batches are small.
	r.out = make(chan *batch[In, Out], min(r.window, 4096)+1)
	r.room = make(chan struct{}, 1)
	r.workers.SetLimit(r.cfg.concurrency)
	r.feeder.Go(func() { r.lifecycle.guard(r.feed) })

	// The deferred shutdown also runs when deliver panics or calls
	// runtime.Goexit: the panic then leaves Run only after every
	// goroutine of the run has exited.
	defer r.shutdown()
	complete := r.consume(deliver)
	r.shutdown()
	r.replay()
	if r.obs != nil {
		r.obs.tick(true)
	}

	var err error
	if !complete {
		err = r.err()
	}
	if len(r.taskErrs) == 0 {
		return err
	}
	// Only WithContinueOnError collects task errors: report them in input
	// order, then the reason the run stopped early, if any.
	slices.SortFunc(r.taskErrs, func(a, b *TaskError) int { return a.Index - b.Index })
	errs := make([]error, 0, len(r.taskErrs)+1)
	for _, te := range r.taskErrs {
		errs = append(errs, te)
	}
	return errors.Join(append(errs, err)...)
}

// shutdown stops the run and waits for its goroutines. It may run twice.
// The feeder is waited for first: it is the only goroutine that starts
// workers, so the errgroup's Wait never races with its Go.
func (r *run[In, Out]) shutdown() {
	r.release()
	r.feeder.Wait()
	r.workers.Wait()
	if r.obs != nil {
		r.obs.fill(&r.cfg)
	}
}

// feed ranges over the inputs, packs them into batches and hands the
// batches out, keeping pulled - consumed within the window.
func (r *run[In, Out]) feed() {
	var (
		b        *batch[In, Out]
		k        = 1     // size of the batch being filled
		pulled   int64   // inputs pulled so far, which is also the next index
		seen     int64   // consumed, as last read
		batches  int     // batches handed out
		finished = false // inputs returned, or a yield returned false
		last     = time.Now()
	)
	handOut := func() bool {
		// Pull time is measured up to the hand-over and from its end: a
		// feeder waiting for busy workers is not a slow iterator.
		pullPerItem := time.Since(last) / time.Duration(len(b.in))
		if !r.dispatch(b) {
			return false
		}
		batches++
		k = r.nextBatchSize(k, pullPerItem)
		last, b = time.Now(), nil
		return true
	}
	r.inputs(func(v In) bool {
		if finished || r.stopped() {
			finished = true // an iterator that calls yield after false gets false again
			return false
		}
		if b == nil {
			b = r.newBatch(int(pulled), k)
		}
		b.in = append(b.in, v)
		pulled++
		if len(b.in) >= k && !handOut() {
			finished = true
			return false
		}
		if pulled-seen >= r.window {
			seen = r.consumed.Load()
			if pulled-seen >= r.window {
				// The window is full. Hand out what is pending first:
				// the consumer may be waiting for exactly those results.
				if b != nil && !handOut() || !r.waitRoom(pulled) {
					finished = true
					return false
				}
				seen, last = r.consumed.Load(), time.Now()
			}
		}
		return true
	})
	if b != nil && !finished && !r.stopped() {
		if !handOut() {
			return
		}
	}
	close(r.in) // the feeder is the only sender on in
	select {
	case r.out <- &batch[In, Out]{end: true, total: batches}:
	case <-r.done:
	}
}

// dispatch queues b for the workers, and starts one more worker, while
// fewer than concurrency run, when the workers running do not keep up:
// when b is still queued and the work is slow (or not measured yet), or
// when the queue is full. Slow work thus gets a worker for every batch at
// once, and quick work runs on a few goroutines however high the
// concurrency.
//
// The queue is buffered so that the feeder can run ahead of the workers
// by a few batches. Without that, a worker taking a batch from the blocked
// feeder readies it on the worker's own processor (Go's scheduler puts it
// in runnext, which idle processors are slow to steal from), and feeder and
// workers end up taking turns on one processor.
func (r *run[In, Out]) dispatch(b *batch[In, Out]) bool {
	select {
	case r.in <- b:
	case <-r.done:
		return false
	}
	if r.started < r.cfg.concurrency && (r.started == 0 || r.behind()) {
		if r.workers.TryGo(func() error { r.guard(r.work); return nil }) {
			r.started++
		}
	}
	return true
}

// behind reports whether the workers running fall behind the feeder, and
// another worker would help: not when the run's pool has workers waiting
// for slots already, as a new worker would only wait with them.
func (r *run[In, Out]) behind() bool {
	if r.slots != nil && r.slots.pool.Waiting() > 0 {
		return false
	}
	queued := len(r.in)
	if queued == cap(r.in) {
		return true
	}
	work := time.Duration(r.workNs.Load())
	return queued > 0 && (work == 0 || work >= batchTarget)
}

// waitRoom blocks until the consumer has made room in the window for one
// more input, or the run stops.
func (r *run[In, Out]) waitRoom(pulled int64) bool {
	for {
		r.feederWaiting.Store(true)
		// Either this load sees the consumer's increment, or the
		// consumer's load of feederWaiting sees true and sends on room.
		if pulled-r.consumed.Load() < r.window {
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

// work is a worker: it processes batches from in until in is closed or
// the run stops.
func (r *run[In, Out]) work() {
	ctx, w := r.ctx, (*waiter)(nil)
	if r.slots != nil {
		ctx, w = r.slots.worker(ctx)
	}
	for {
		var b *batch[In, Out]
		var ok bool
		if r.obs != nil {
			b, ok = r.workerReceiveObserved()
		} else {
			select {
			case b, ok = <-r.in:
			case <-r.done:
			}
		}
		if !ok {
			return
		}
		// Let the goroutines this worker just woke up, the feeder (by
		// taking from a full queue) or the consumer (by sending), run
		// now. Woken goroutines wait in this processor's runnext slot,
		// which idle processors are slow to steal from, so without
		// this they wait for the whole next batch, and the workers then
		// wait for them.
		runtime.Gosched()
		if !r.processWithSlot(ctx, w, b) {
			return
		}
		if r.obs != nil {
			r.obs.handedOver(len(b.out) - len(b.errs))
		}
		select {
		case r.out <- b:
		case <-r.done:
			return
		}
	}
}

// workerReceiveObserved is a worker's receive when the run is observed: a wait
// that starts while the feeder waits for room in the window is backpressure,
// and counts as Blocked. It returns false when in is closed or the run
// stopped.
func (r *run[In, Out]) workerReceiveObserved() (*batch[In, Out], bool) {
	select {
	case b, ok := <-r.in:
		return b, ok
	default:
	}
	t0, blocked := time.Now(), r.feederWaiting.Load()
	var b *batch[In, Out]
	ok := false
	select {
	case b, ok = <-r.in:
	case <-r.done:
	}
	if blocked {
		r.obs.blocked.Add(int64(time.Since(t0)))
	}
	return b, ok
}

// processWithSlot processes b holding a slot of the run's pool, if it has
// one. The deferred release gives the slot back even when work panics or
// calls runtime.Goexit.
func (r *run[In, Out]) processWithSlot(ctx context.Context, w *waiter, b *batch[In, Out]) bool {
	if r.slots == nil {
		return r.process(ctx, b)
	}
	var t0 time.Time
	if r.obs != nil {
		t0 = time.Now()
	}
	borrowed, err := r.slots.acquire(r.ctx, w)
	if r.obs != nil {
		r.obs.poolWait.Add(int64(time.Since(t0)))
	}
	if err != nil {
		r.stop(err) // ErrClosed; a context error means the run stopped already
		return false
	}
	defer r.slots.release(borrowed)
	return r.process(ctx, b)
}

// process calls work for every input of b. It returns false when the run
// stopped, in which case b is abandoned.
func (r *run[In, Out]) process(ctx context.Context, b *batch[In, Out]) bool {
	if r.obs != nil {
		r.obs.batchStarted()
	}
	start := time.Now()
	calls, failed, ok := r.calls(ctx, b)
	d := time.Since(start)
	if r.obs != nil {
		r.obs.batchDone(calls, failed, d)
	}
	if ok {
		// A measured 0 (a coarse clock, or fake time in tests) still
		// counts as a measurement: the work is quick.
		r.workNs.Store(max(int64(d)/int64(len(b.in)), 1))
	}
	return ok
}

// calls makes the work calls of b and reports how many it made, how many
// of those failed, and whether the run goes on.
func (r *run[In, Out]) calls(ctx context.Context, b *batch[In, Out]) (calls, failed int, ok bool) {
	// halted may lag a parent's cancellation while the processors are
	// busy (see stopped); once per batch, ask the context itself.
	if r.cancelled() {
		return 0, 0, false
	}
	for i, v := range b.in {
		if r.stopped() {
			return i, len(b.errs), false
		}
		out, err := r.call.call(ctx, v)
		if err != nil {
			te, ok := r.failed(b.start+i, err)
			if !ok {
				return i + 1, len(b.errs) + 1, false
			}
			b.errs = append(b.errs, te)
			var zero Out
			out = zero
		}
		b.out = append(b.out, out)
	}
	return len(b.in), len(b.errs), true
}

// failed handles the error of the work call for input index. It returns
// the TaskError to record and true when the run goes on.
func (r *run[In, Out]) failed(index int, err error) (*TaskError, bool) {
	if r.cancelled() {
		return nil, false // caused by the stop, not a reason for it
	}
	te := &TaskError{Index: index, Err: err}
	if !r.cfg.continueOnError {
		r.stop(te)
		return nil, false
	}
	return te, true
}
