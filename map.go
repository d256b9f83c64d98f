package fofi

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Map calls work for every element of inputs on up to [WithConcurrency]
// goroutines and returns the results in input order: out[i] is the result
// for inputs[i], and len(out) == len(inputs). Map returns when every call
// has returned, and only after every goroutine it started has exited.
//
// By default the first error stops the run and Map returns (nil, err), err
// being the first [*TaskError] or the context's error (errors.Is(err,
// ctx.Err()) holds). With [WithContinueOnError] Map returns every result,
// the zero value where work failed, and errors.Join of the [*TaskError]s in
// input order. A panic or runtime.Goexit in work is replayed on the caller's
// goroutine (see Panics).
//
// Map has the whole input at hand, so it needs no feeder and no result
// channel: workers claim ranges of indexes and write their results in
// place. [WithBuffer] and [WithOrdered] have no effect on it. Map returns an
// empty, non-nil slice for empty inputs without calling work; a nil ctx or
// work, or an invalid option, makes it return an error wrapping
// [ErrInvalidOption].
func Map[In, Out any](ctx context.Context, inputs []In,
	work func(context.Context, In) (Out, error), opts ...Option) ([]Out, error) {
	switch {
	case ctx == nil:
		return nil, configError("Map: nil context")
	case work == nil:
		return nil, configError("Map: nil work function")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, parentError(ctx, context.Cause(ctx))
	}
	m := &mapRun[In, Out]{cfg: cfg, inputs: inputs, out: make([]Out, len(inputs))}
	if len(inputs) == 0 {
		return m.out, nil
	}
	m.obs = newObserver(&cfg)
	m.call = newCaller(work, &cfg, m.obs)
	if cfg.pool != nil {
		m.slots = newSlots(ctx, cfg.pool)
	}
	m.lifecycle.init(ctx)
	return m.do()
}

// mapRun is the state of one Map call. Its workers, started through an
// errgroup, claim ranges of indexes from next; the caller waits for all of
// them.
type mapRun[In, Out any] struct {
	lifecycle
	cfg    config
	inputs []In
	out    []Out
	call   caller[In, Out]
	slots  *slots       // with WithPool
	obs    *observer    // with WithStats or WithProgress
	next   atomic.Int64 // the first index no worker has claimed
	// abandoned is set by a worker that left a claimed range unfinished
	// because the run stopped; a Map without it is complete.
	abandoned atomic.Bool

	errMu    sync.Mutex
	taskErrs []*TaskError
}

func (m *mapRun[In, Out]) do() ([]Out, error) {
	var g errgroup.Group
	workers := min(m.cfg.concurrency, len(m.inputs))
	// Stop the run and wait for the workers even when this goroutine is
	// unwound by a panic in the errgroup (which cannot happen today) or
	// a Goexit: nothing started here outlives the call.
	defer func() { m.release(); g.Wait() }()
	for range workers {
		g.Go(func() error { m.guard(func() { m.work(workers) }); return nil })
	}
	m.wait(&g)
	m.release()
	if m.obs != nil {
		m.obs.fill(&m.cfg)
	}
	m.replay()
	if m.obs != nil {
		m.obs.tick(true)
	}

	err := error(nil)
	if m.abandoned.Load() {
		err = m.err()
	}
	if len(m.taskErrs) == 0 {
		if err != nil {
			return nil, err
		}
		return m.out, nil
	}
	slices.SortFunc(m.taskErrs, func(a, b *TaskError) int { return a.Index - b.Index })
	errs := make([]error, 0, len(m.taskErrs)+1)
	for _, te := range m.taskErrs {
		errs = append(errs, te)
	}
	return m.out, errors.Join(append(errs, err)...)
}

// wait waits for the workers. With WithProgress it reports progress
// meanwhile, on this goroutine, which the promise of WithProgress requires;
// the goroutine that waits for the group in its place exits with the
// workers, before wait returns.
func (m *mapRun[In, Out]) wait(g *errgroup.Group) {
	if m.obs == nil || m.obs.progress == nil {
		g.Wait()
		return
	}
	done := make(chan struct{})
	go func() { g.Wait(); close(done) }()
	t := time.NewTicker(m.obs.every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			m.obs.tick(false)
		}
	}
}

// work claims ranges of indexes until none is left or the run stops. A
// range takes about batchTarget: it starts at one index, so slow work is
// spread one call per worker, and doubles while calls are quick; near the
// end ranges shrink so that the workers finish together.
func (m *mapRun[In, Out]) work(workers int) {
	ctx, w := m.ctx, (*waiter)(nil)
	if m.slots != nil {
		ctx, w = m.slots.worker(ctx)
	}
	n := int64(len(m.inputs))
	k := int64(1)
	for {
		if m.cancelled() { // once per range: halted may lag a parent's cancellation
			m.abandoned.Store(true)
			return
		}
		end := m.next.Add(k)
		start := end - k
		if start >= n {
			return
		}
		end = min(end, n)
		t0 := time.Now()
		if !m.rangeWithSlot(ctx, w, start, end) {
			m.abandoned.Store(true)
			return
		}
		perItem := max(time.Since(t0)/time.Duration(end-start), 1)
		left := n - m.next.Load()
		k = max(1, min(2*k, int64(batchTarget/perItem), left/int64(2*workers), maxBatch))
	}
}

// rangeWithSlot processes inputs[start:end] holding a slot of the pool, if
// there is one; the deferred release survives a panic or Goexit in work.
func (m *mapRun[In, Out]) rangeWithSlot(ctx context.Context, w *waiter, start, end int64) bool {
	if m.slots == nil {
		return m.processRange(ctx, start, end)
	}
	var t0 time.Time
	if m.obs != nil {
		t0 = time.Now()
	}
	borrowed, err := m.slots.acquire(m.ctx, w)
	if m.obs != nil {
		m.obs.poolWait.Add(int64(time.Since(t0)))
	}
	if err != nil {
		m.stop(err) // ErrClosed; a context error means the run stopped already
		return false
	}
	defer m.slots.release(borrowed)
	return m.processRange(ctx, start, end)
}

// processRange calls work for inputs[start:end] and stores the results. It
// returns false when the run stopped before the range was done.
func (m *mapRun[In, Out]) processRange(ctx context.Context, start, end int64) bool {
	if m.obs == nil {
		_, _, ok := m.calls(ctx, start, end)
		return ok
	}
	m.obs.batchStarted()
	t0 := time.Now()
	calls, failed, ok := m.calls(ctx, start, end)
	m.obs.batchDone(calls, failed, time.Since(t0))
	return ok
}

// calls makes the work calls for inputs[start:end] and reports how many it
// made, how many of those failed, and whether the run goes on.
func (m *mapRun[In, Out]) calls(ctx context.Context, start, end int64) (calls, failed int, ok bool) {
	for i := start; i < end; i++ {
		if m.stopped() {
			return calls, failed, false
		}
		calls++
		v, err := m.call.call(ctx, m.inputs[i])
		if err != nil {
			failed++
			if m.cancelled() {
				return calls, failed, false // caused by the stop, not a reason for it
			}
			te := &TaskError{Index: int(i), Err: err}
			if !m.cfg.continueOnError {
				m.stop(te)
				return calls, failed, false
			}
			m.errMu.Lock()
			m.taskErrs = append(m.taskErrs, te)
			m.errMu.Unlock()
			continue
		}
		m.out[i] = v
	}
	return calls, failed, true
}
