package fofi

import (
	"context"
	"errors"
	"runtime"
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

	g        errgroup.Group
	started  atomic.Int64 // workers running
	starting atomic.Int64 // workers started that have not claimed yet
	workNs   atomic.Int64 // work time per call in the last range; 0 until measured

	t0         time.Time    // when the run started
	firstClaim atomic.Int64 // when the first range was claimed, since t0; 0 before

	// Ranges given back by a worker whose range turned slow.
	retMu     sync.Mutex
	returned  []returnedSpan
	nReturned atomic.Int32 // len(returned)
	retItems  atomic.Int64 // inputs in returned
	// completed counts the calls whose result (or recorded failure) is
	// in place; the worker whose count reaches len(inputs) closes
	// finished, its only closer.
	completed atomic.Int64
	finished  chan struct{}

	lanes    lanes[In, Out]
	watcher  watcher
	watching sync.WaitGroup

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
	m.g.SetLimit(m.cfg.concurrency) // TryGo enforces the bound; workersNeeded only estimates
	m.t0 = time.Now()
	m.finished = make(chan struct{})
	m.watcher.unpark = make(chan struct{}, 1)
	m.watching.Go(func() { m.guard(func() { watch(&m.watcher, &m.lanes, m, m.done) }) })
	m.startWorker()
	m.wait()
	m.shutdown()
	if m.obs != nil {
		m.obs.fill(&m.cfg)
	}
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
	return m.out, errors.Join(append(errs, err)...)
}

// shutdown stops the run and waits for its goroutines. It may run twice.
func (m *mapRun[In, Out]) shutdown() {
	m.close()
	m.watching.Wait()
	m.g.Wait()
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

// startWorker starts a worker unless concurrency of them run already.
func (m *mapRun[In, Out]) startWorker() bool {
	m.started.Add(1)
	m.starting.Add(1)
	if !m.g.TryGo(func() error {
		defer m.started.Add(-1)
		m.guard(m.work)
		return nil
	}) {
		m.started.Add(-1)
		m.starting.Add(-1)
		return false
	}
	return true
}

// workersNeeded reports how many more workers would help (see the
// function workersNeeded in policy.go). Map's workers never sleep, and any
// input left is worth a worker of quick work.
func (m *mapRun[In, Out]) workersNeeded() int64 {
	s := snapshot{
		concurrency: int64(m.cfg.concurrency),
		procs:       int64(runtime.GOMAXPROCS(0)),
		started:     m.started.Load(),
		starting:    m.starting.Load(),
		backlog:     max(int64(len(m.inputs))-m.next.Load(), 0) + m.retItems.Load(),
		work:        time.Duration(m.workNs.Load()),
		batch:       1,
	}
	if s.work == 0 {
		s.slowSoFar = m.slowSoFar()
	}
	if m.slots != nil && s.work > 0 && s.work < batchTarget {
		s.poolFull = m.slots.pool.full()
	}
	return workersNeeded(s)
}

// slowSoFar reports whether the first call, not finished yet, has been
// running for longer than batchTarget/4.
func (m *mapRun[In, Out]) slowSoFar() bool {
	first := m.firstClaim.Load()
	return first != 0 && int64(time.Since(m.t0))-first > int64(batchTarget/4)
}

// startWorkers starts up to n workers, fewer if concurrency of them run.
func (m *mapRun[In, Out]) startWorkers(n int64) {
	for ; n > 0; n-- {
		if !m.startWorker() {
			return
		}
	}
}

// claim takes a range of up to k inputs: a given-back one first, else the
// next k.
func (m *mapRun[In, Out]) claim(k int64) (span, bool) {
	if m.nReturned.Load() > 0 {
		m.retMu.Lock()
		if n := len(m.returned); n > 0 {
			r := &m.returned[n-1]
			s := span{r.start, min(r.start+min(r.claim, k), r.end)} // see returnedSpan
			r.claim = min(2*r.claim, maxBatch)
			m.retItems.Add(s.start - s.end)
			if r.start = s.end; r.start == r.end {
				m.returned = m.returned[:n-1]
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

// work claims ranges of inputs until none is left or the run stops. A range
// takes about batchTarget: it starts at one input, so slow work is spread
// one call per worker, and grows as calls prove quick (see nextClaim);
// near the end ranges shrink so that the workers finish together. Its lane
// shows the range to the watcher, which takes the rest of a range that
// stalls (see watch.go).
func (m *mapRun[In, Out]) work() {
	growStack()
	ctx, w := m.slots.worker(m.ctx)
	l := m.lanes.get()
	defer m.lanes.put(l)
	n := int64(len(m.inputs))
	k := int64(1)
	if work := m.workNs.Load(); work > 0 && time.Duration(work) < batchTarget {
		// Quick work measured already: start at half the measured batch
		// size instead of ramping up from one input (see
		// run.firstBatchSize).
		k = max(1, min(int64(batchTarget)/(2*work), (n-m.next.Load())/(2*m.started.Load()), maxBatch))
	}
	first := true
	for {
		if m.cancelled() { // once per range: halted may lag a parent's cancellation
			return
		}
		s, ok := m.claim(k)
		if first {
			m.starting.Add(-1)
			first = false
		}
		if !ok {
			return
		}
		if m.firstClaim.Load() == 0 {
			m.firstClaim.CompareAndSwap(0, max(int64(time.Since(m.t0)), 1))
		}
		m.startWorkers(m.workersNeeded())
		l.begin(nil, s.start, int(s.end-s.start))
		if s.end-s.start > 1 {
			m.watcher.wake()
		}
		t0 := time.Now()
		calls, ok := m.rangeWithSlot(ctx, w, l)
		if !ok {
			return
		}
		if calls > 0 {
			perItem := max(time.Since(t0)/time.Duration(calls), 1)
			m.workNs.Store(int64(perItem))
			left := n - m.next.Load()
			k = nextClaim(k, perItem, min(left/(2*m.started.Load()), maxBatch))
		}
		if m.completed.Add(int64(calls)) == n {
			close(m.finished)
		}
	}
}

// rangeWithSlot processes the range of l holding a slot of the pool, if
// there is one; the deferred release survives a panic or Goexit in work.
func (m *mapRun[In, Out]) rangeWithSlot(ctx context.Context, w *waiter, l *lane[In, Out]) (int, bool) {
	if m.slots == nil {
		return m.processRange(ctx, l)
	}
	borrowed, ok := m.slots.take(&m.lifecycle, w, m.obs)
	if !ok {
		return 0, false
	}
	defer m.slots.release(borrowed)
	if _, end := unpack(l.word.Load()); end > 1 {
		m.watcher.wake() // it may have parked while this worker waited (see sample)
	}
	return m.processRange(ctx, l)
}

// processRange makes the calls of the range of l and stores the results.
// It returns how many calls completed, and false when the run stopped.
func (m *mapRun[In, Out]) processRange(ctx context.Context, l *lane[In, Out]) (int, bool) {
	if m.obs == nil {
		done, _, _, ok := m.calls(ctx, l)
		return done, ok
	}
	m.obs.batchStarted()
	t0 := time.Now()
	done, calls, failed, ok := m.calls(ctx, l)
	m.obs.batchDone(calls, failed, time.Since(t0))
	return done, ok
}

// calls makes the work calls of the range of l, each started with
// lane.next, and reports how many completed (their result or failure is
// recorded), how many were made, how many of those failed, and whether the
// run goes on. A range that has run for twice batchTarget (checked after
// its first call and every clockEvery calls) gives the rest back for other
// workers, as run.calls does.
func (m *mapRun[In, Out]) calls(ctx context.Context, l *lane[In, Out]) (done, calls, failed int, ok bool) {
	t0 := time.Now()
	for {
		off, more := l.next()
		if !more {
			return done, calls, failed, true
		}
		if m.stopped() {
			return done, calls, failed, false
		}
		i := l.base + int64(off)
		calls++
		v, err := m.call.call(ctx, m.inputs[i])
		if err != nil {
			failed++
			if m.cancelled() {
				return done, calls, failed, false // caused by the stop, not a reason for it
			}
			te := &TaskError{Index: int(i), Input: m.inputs[i], Err: err}
			if !m.cfg.continueOnError {
				m.stop(te)
				return done, calls, failed, false
			}
			m.errMu.Lock()
			m.taskErrs = append(m.taskErrs, te)
			m.errMu.Unlock()
		} else {
			m.out[i] = v
		}
		done++
		if (calls == 1 || calls%clockEvery == 0) && time.Since(t0) > 2*batchTarget {
			// The range is slow: say so now, before the next claims.
			m.workNs.Store(int64(max(time.Since(t0)/time.Duration(calls), batchTarget)))
			l.mu.Lock()
			stole := m.stealFrom(l)
			l.mu.Unlock()
			if stole {
				m.startWorkers(m.workersNeeded())
			}
		}
	}
}

// stealFrom gives the unstarted rest of the range of the stalled lane l
// back, for other workers to claim (see watched). l.mu is held.
func (m *mapRun[In, Out]) stealFrom(l *lane[In, Out]) bool {
	from, to, ok := l.steal()
	if !ok {
		return false
	}
	m.retMu.Lock()
	m.returned = append(m.returned, returnedSpan{span{l.base + int64(from), l.base + int64(to)}, 1})
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
	left := max(int64(len(m.inputs))-m.next.Load(), 0) + m.retItems.Load()
	if left <= 0 || m.stopped() || m.started.Load() >= int64(m.cfg.concurrency) {
		return false
	}
	if !moved {
		m.startWorker()
	}
	return true
}

// stolen starts workers for the inputs stolen, one each (see
// run.stolen).
func (m *mapRun[In, Out]) stolen() {
	if m.stopped() {
		return
	}
	m.startWorkers(m.retItems.Load() - m.starting.Load())
}
