package fofi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// stopCause is the cause a run cancels its own context with. Wrapping every
// cause of ours in it tells them apart from a cancellation of the parent
// context, whose cause reaches the run's context unwrapped. err is nil for a
// run that stops because it is finished or its consumer broke out of a loop.
type stopCause struct{ err error }

func (c *stopCause) Error() string {
	if c.err == nil {
		return "fofi: run stopped"
	}
	return c.err.Error()
}

// Unwrap lets errors.Is see context.Canceled in the cause of a work
// call's context (context.Cause) when the run stopped for its own reasons.
func (c *stopCause) Unwrap() []error {
	if c.err == nil {
		return []error{context.Canceled}
	}
	return []error{c.err, context.Canceled}
}

// lifecycle is what every run shares between its goroutines: its context, the
// first reason it stopped, and the panic or Goexit to replay on the caller's
// goroutine.
type lifecycle struct {
	parent context.Context
	ctx    context.Context // given to work; cancelled when the run stops
	cancel context.CancelCauseFunc
	done   <-chan struct{} // ctx.Done()

	// halted is set when ctx is done: by stop itself, and by an
	// AfterFunc when the parent is cancelled. The per-item path asks it
	// instead of polling done, which costs a function call into the
	// channel code per item.
	halted      atomic.Bool
	reason      atomic.Pointer[stopCause] // the first reason of the run's own, set before halted
	stopAfter   func() bool               // unregisters the AfterFunc
	afterFuncOK chan struct{}             // closed when the AfterFunc has run
	closed      bool                      // close has run; owned by the caller

	mu       sync.Mutex
	panicked *PanicError // the first panic of a goroutine of the run
	goexited bool        // a goroutine of the run called runtime.Goexit
}

func (l *lifecycle) init(parent context.Context) {
	l.parent = parent
	l.ctx, l.cancel = context.WithCancelCause(parent)
	l.done = l.ctx.Done()
	l.afterFuncOK = make(chan struct{})
	l.stopAfter = context.AfterFunc(l.ctx, func() {
		l.halted.Store(true)
		close(l.afterFuncOK)
	})
	if parent.Err() != nil {
		l.halted.Store(true) // no need to wait for the AfterFunc
	}
}

// stopped reports whether the run's context is done. It is one atomic
// load, cheap enough to ask before every work call and every consume; it
// may lag a parent's cancellation by the moment the AfterFunc takes.
func (l *lifecycle) stopped() bool { return l.halted.Load() }

// cancelled reports whether the run's context is done, without the lag
// of halted after a parent's cancellation. Error paths ask it to tell an
// error caused by the cancellation from a reason to stop.
//
// A parent's cancel closes the parent's Done before it cancels this run's
// context (for a parent of a type of its own, a goroutine of the context
// package carries it over later): work watching the parent sees it first.
// When the parent's Err is set first, cancelled stops the run itself, with
// no reason of its own, which makes the parent's error the run's (see err).
// A worker that sees it abandons its batch, and if it were the last to
// have results coming, the consumer would wait for the cancellation to
// arrive, however late.
func (l *lifecycle) cancelled() bool {
	select {
	case <-l.done:
		return true
	default:
	}
	if l.parent.Err() == nil {
		return false
	}
	l.stop(nil)
	return true
}

// stop cancels the run with err as its reason, unless it stopped already:
// the first reason wins, and the cancellations it causes are not reasons.
//
// The reason is recorded before halted is set: whoever sees the run halted
// and stops it in turn (the consumer, then the final cleanup) cancels with
// the first reason, not its own, so the first error cannot be lost between
// the two stores.
func (l *lifecycle) stop(err error) {
	l.reason.CompareAndSwap(nil, &stopCause{err})
	l.halted.Store(true)
	l.cancel(l.reason.Load())
}

// close stops the run, if it is still going, and waits for the
// AfterFunc's goroutine if it was started, so that nothing of the
// lifecycle runs afterwards. Only the caller's goroutine calls it; calls
// after the first do nothing.
func (l *lifecycle) close() {
	if l.closed {
		return
	}
	l.closed = true
	// Unregister first, so that the stop below starts no goroutine.
	if !l.stopAfter() {
		<-l.afterFuncOK
	}
	l.stop(nil)
}

// guard runs f, the body of a goroutine the run started, and turns a panic or
// a runtime.Goexit in it into a stop of the run.
//
// Why recover at all, when errgroup deliberately does not (golang/go#53757)?
// Its reasons are a delayed panic, a stack reduced to a value, and a Wait
// that a broken program never reaches. Here the panic is delayed only until
// the in-flight calls of this run return, which they do promptly because the
// run's context is cancelled at once; the worker's stack travels in the
// PanicError and is printed by its Error method; and the caller's goroutine
// is always waiting for this goroutine, so the replay is always reached. In
// exchange the caller gets what a for loop would give: the panic on its own
// goroutine, where its defers run and its recover works, and nothing of the
// run still running when it unwinds.
func (l *lifecycle) guard(f func()) {
	normal := false
	defer func() {
		if normal {
			return
		}
		v := recover()
		l.mu.Lock()
		if v != nil {
			if l.panicked == nil {
				// A PanicError from a nested run already carries the
				// stack of the goroutine that panicked first.
				pe, ok := v.(*PanicError)
				if !ok {
					pe = &PanicError{Value: v, Stack: debug.Stack()}
				}
				l.panicked = pe
			}
		} else {
			// recover returns nil only when there is no panic (since Go
			// 1.21 panic(nil) panics with *runtime.PanicNilError), so f
			// left through runtime.Goexit.
			l.goexited = true
		}
		l.mu.Unlock()
		l.stop(errors.New("fofi: goroutine panicked or exited"))
	}()
	f()
	normal = true
}

// replay re-raises on the caller's goroutine a panic or Goexit of one of the
// run's goroutines. Call it only after every goroutine of the run has exited.
// A panic wins over a Goexit, as it carries more information.
func (l *lifecycle) replay() {
	l.mu.Lock()
	p, g := l.panicked, l.goexited
	l.mu.Unlock()
	if p != nil {
		panic(p)
	}
	if g {
		runtime.Goexit()
	}
}

// err is the error of a run that did not finish: the first error of the run
// itself, or the parent context's error when the parent was cancelled first.
func (l *lifecycle) err() error {
	cause := context.Cause(l.ctx)
	if cause == nil {
		return nil
	}
	// Only this run's own reason counts as its own: a *stopCause that
	// arrives from the parent belongs to an outer run this one is nested
	// in, and is a cancellation like any other.
	if own := l.reason.Load(); own != nil && cause == error(own) {
		if own.err == nil && l.parent.Err() != nil {
			// Stopped without a reason of its own, because the parent's
			// Err was seen (cancelled) before the parent's cancellation
			// reached ctx: the run's own stop got there first, and the
			// parent's error is the run's error.
			return parentError(l.parent, context.Cause(l.parent))
		}
		return own.err
	}
	return parentError(l.parent, cause)
}

// parentError is the error of a run stopped by the cancellation of its
// parent context: the parent's Err, so that errors.Is(err, ctx.Err())
// holds, with a custom cause kept visible.
//
// A *stopCause is the reason an outer run stopped, this one being nested
// in one of its work calls: it is not repeated, lest errors.As find the
// outer run's TaskError in the inner run's error.
func parentError(parent context.Context, cause error) error {
	err := parent.Err()
	if _, outer := cause.(*stopCause); outer {
		return err
	}
	if err == nil || errors.Is(cause, err) {
		return cause
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// caller makes one work call the way the options say.
type caller[In, Out any] struct {
	work    func(context.Context, In) (Out, error)
	timeout time.Duration
	limiter Limiter
	obs     *observer

	// The entry points over an iter.Seq2[In, error] set these (see
	// seq2.go): carried returns the error an input carries, which fails
	// its call at once, before the Limiter is asked; value returns what a
	// TaskError names as the input. Both are nil for the other entry
	// points.
	carried func(In) error
	value   func(In) any
}

// input returns what the TaskError of a call for in names as its input.
func (c *caller[In, Out]) input(in In) any {
	if c.value != nil {
		return c.value(in)
	}
	return in
}

func newCaller[In, Out any](work func(context.Context, In) (Out, error), cfg *config, obs *observer) caller[In, Out] {
	return caller[In, Out]{work: work, timeout: cfg.taskTimeout, limiter: cfg.limiter, obs: obs}
}

func (c *caller[In, Out]) call(ctx context.Context, v In) (Out, error) {
	if w, ok := ctx.(*slotWorker); ok {
		// A pooled run's worker: work gets the context of the call,
		// which nested runs borrow the worker's slot through while the
		// call runs.
		cctx, ok := w.call()
		if !ok {
			var zero Out
			return zero, ErrClosed // the run is stopped: not reported
		}
		out, err := c.callIn(cctx, v)
		w.returned()
		return out, err
	}
	return c.callIn(ctx, v)
}

// callIn makes the call for v with ctx, the context work gets.
func (c *caller[In, Out]) callIn(ctx context.Context, v In) (Out, error) {
	if c.carried != nil {
		if err := c.carried(v); err != nil {
			var zero Out
			return zero, err
		}
	}
	if c.limiter != nil {
		var t0 time.Time
		if c.obs != nil {
			t0 = time.Now()
		}
		err := c.limiter.Wait(ctx)
		if c.obs != nil {
			c.obs.limited.Add(int64(time.Since(t0)))
		}
		if err != nil {
			var zero Out
			return zero, fmt.Errorf("limiter: %w", err) // TaskError.Error names fofi
		}
	}
	if c.timeout > 0 {
		tctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		return c.work(tctx, v)
	}
	return c.work(ctx, v)
}
