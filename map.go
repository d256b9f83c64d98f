package fofi

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
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
// input order. A run that stops before every input was called returns nil
// outputs in every case: with WithContinueOnError, when ctx is cancelled,
// Map returns nil and errors.Join of the [*TaskError]s so far, in input
// order, and the context's error. Non-nil outputs are therefore always
// complete. A panic or runtime.Goexit in work is replayed on the caller's
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
		observeNoRun(&cfg, false)
		return nil, parentError(ctx, context.Cause(ctx))
	}
	m := &mapRun[In, Out]{inputs: inputs, out: make([]Out, len(inputs))}
	m.cfg = cfg
	if len(inputs) == 0 {
		observeNoRun(&cfg, true)
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
	engine[In, Out]
	inputs []In
	out    []Out
	next   atomic.Int64 // the first index no worker has claimed

	// Ranges given back by the watcher or by a worker whose range turned
	// slow.
	retMu     sync.Mutex
	given     []returnedSpan
	nReturned atomic.Int32 // len(given)
	retItems  atomic.Int64 // inputs in given
	// completed counts the calls whose result (or recorded failure) is
	// in place; the worker whose count reaches len(inputs) closes
	// finished, its only closer.
	completed atomic.Int64
	finished  chan struct{}

	errMu    sync.Mutex
	taskErrs []*TaskError
}

func (m *mapRun[In, Out]) do() ([]Out, error) {
	// Stop the run and wait for the watcher and the workers even when
	// this goroutine is unwound by a Goexit: nothing started here
	// outlives the call. The watcher starts workers, so it is waited for
	// before the group, and the group is waited for only then: no Go
	// races with a Wait that could return.
	defer m.shutdown()
	m.t0 = time.Now()
	m.finished = make(chan struct{})
	m.src = m
	m.startEngine()
	m.startWorker()
	m.wait()
	m.shutdown()
	m.replay()
	if m.obs != nil {
		m.obs.tick(true)
	}

	err := error(nil)
	if m.completed.Load() < int64(len(m.inputs)) {
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
	if err != nil {
		// Stopped before every input was called: the zeros of the inputs
		// that never ran would read as results, so there are none, as
		// for a run without failures.
		return nil, errors.Join(append(errs, err)...)
	}
	return m.out, errors.Join(errs...)
}

// shutdown stops the run, waits for its goroutines and fills in the Stats.
// It may run twice: the deferred call fills them in when the caller's
// goroutine unwinds (a panicking progress function, say).
func (m *mapRun[In, Out]) shutdown() {
	m.close()
	m.stopWatcher()
	m.workers.Wait()
	if m.obs != nil {
		m.obs.complete = m.completed.Load() == int64(len(m.inputs))
		m.obs.fill(&m.cfg)
	}
}

// wait waits until every call is done or the run stops. With
// WithProgress it reports progress meanwhile, on this goroutine, which the
// promise of WithProgress requires.
func (m *mapRun[In, Out]) wait() {
	var tick <-chan time.Time
	if m.obs != nil && m.obs.progress != nil {
		t := time.NewTicker(m.obs.every)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-m.finished:
			return
		case <-m.done:
			return
		case <-tick:
			m.obs.tick(false)
		}
	}
}

// span is a range of input indexes, [start, end).
type span struct{ start, end int64 }

// returnedSpan is a range given back by a stalled worker, claimed one
// input at first, then doubling (see queue.claim).
type returnedSpan struct {
	span
	claim int64
}

// claimSpan takes a range of up to k inputs: a given-back one first, else
// the next k.
func (m *mapRun[In, Out]) claimSpan(k int64) (span, bool) {
	if m.nReturned.Load() > 0 {
		m.retMu.Lock()
		if n := len(m.given); n > 0 {
			r := &m.given[n-1]
			s := span{r.start, min(r.start+min(r.claim, k), r.end)} // see returnedSpan
			r.claim = min(2*r.claim, maxBatch)
			m.retItems.Add(s.start - s.end)
			if r.start = s.end; r.start == r.end {
				m.given = m.given[:n-1]
				m.nReturned.Add(-1)
			}
			m.retMu.Unlock()
			return s, true
		}
		m.retMu.Unlock()
	}
	n := int64(len(m.inputs))
	end := m.next.Add(k)
	if start := end - k; start < n {
		return span{start, min(end, n)}, true
	}
	return span{}, false
}

// batch returns the batch of lane l, emptied: a range's inputs and
// results are the caller's slices, written in place.
func (m *mapRun[In, Out]) batch(_ int64, l *lane[In, Out]) *batch[In, Out] {
	b := &l.own
	b.in, b.out, b.errs = nil, nil, b.errs[:0]
	return b
}

// claim claims a range of up to k inputs into b.
func (m *mapRun[In, Out]) claim(b *batch[In, Out], k int64) bool {
	s, ok := m.claimSpan(k)
	if !ok {
		return false
	}
	b.start, b.in, b.out = int(s.start), m.inputs[s.start:s.end], m.out[s.start:s.end]
	return true
}

// claimed starts the workers the policy asks for: any input left is worth
// a worker of quick work, as Map's workers never sleep.
func (m *mapRun[In, Out]) claimed() { m.startWorkers(m.workersNeeded()) }

// idle: a worker that finds nothing to claim exits; a range given back
// later gets a worker of its own (see stolen).
func (m *mapRun[In, Out]) idle(*batch[In, Out]) bool { return false }

// extend: a range is not grown; the next is claimed instead.
func (m *mapRun[In, Out]) extend(*lane[In, Out], *batch[In, Out], int64) bool { return false }

// end records the range's failures and counts its results in place; the
// worker that completes the count closes finished.
func (m *mapRun[In, Out]) end(l *lane[In, Out], b *batch[In, Out], _ time.Duration) bool {
	done := l.finished()
	l.mu.Lock()
	l.b = nil
	l.mu.Unlock()
	if len(b.errs) > 0 {
		m.errMu.Lock()
		m.taskErrs = append(m.taskErrs, b.errs...)
		m.errMu.Unlock()
	}
	if m.completed.Add(int64(done)) == int64(len(m.inputs)) {
		close(m.finished)
	}
	return true
}

// claimLimit shrinks the ranges near the end, so that the workers finish
// together.
func (m *mapRun[In, Out]) claimLimit() int64 {
	return min((int64(len(m.inputs))-m.next.Load())/(2*max(m.started.Load(), 1)), maxBatch)
}

// backlog is Map's part of a snapshot: its workers never sleep, and any
// input left is worth a worker of quick work.
func (m *mapRun[In, Out]) backlog() (sleepers, backlog, batch int64) {
	return 0, max(int64(len(m.inputs))-m.next.Load(), 0) + m.retItems.Load(), 1
}

// returned is how many given-back inputs wait to be claimed again.
func (m *mapRun[In, Out]) returned() int64 { return m.retItems.Load() }

// stealFrom gives the unstarted rest of the range of the stalled lane l
// back, for other workers to claim (see watched). l.mu is held.
func (m *mapRun[In, Out]) stealFrom(l *lane[In, Out]) bool {
	if l.b == nil {
		return false
	}
	from, to, ok := l.steal()
	if !ok {
		return false
	}
	base := int64(l.b.start)
	m.retMu.Lock()
	m.given = append(m.given, returnedSpan{span{base + int64(from), base + int64(to)}, 1})
	m.nReturned.Add(1)
	m.retItems.Add(int64(to - from))
	m.retMu.Unlock()
	return true
}

// hostage: Map writes its results in place, so none is ever held.
func (m *mapRun[In, Out]) hostage(*lane[In, Out]) bool { return false }

// stalledQueue starts a worker for inputs left to claim when no lane moved
// for a whole watch period (see watched).
func (m *mapRun[In, Out]) stalledQueue(moved bool) bool {
	if !m.queued() {
		return false
	}
	if !moved {
		m.startWorker()
	}
	return true
}

// queued reports whether inputs are left to claim while another worker
// may start (see watched).
func (m *mapRun[In, Out]) queued() bool {
	left := max(int64(len(m.inputs))-m.next.Load(), 0) + m.retItems.Load()
	return left > 0 && !m.stopped() && m.started.Load() < int64(m.cfg.concurrency)
}
