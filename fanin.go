package fofi

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// consume is the consumer: it receives result batches on the caller's
// goroutine and passes their results to deliver, in completion order or,
// with WithOrdered, in input order. It returns true when every batch has
// been delivered, and false when the run stopped first.
func (r *run[In, Out]) consume(deliver func(Out, *TaskError) bool) bool {
	var (
		received int64
		expected int64 = -1 // inputs; unknown until the feeder's end message
		next     int        // WithOrdered: the index of the input to deliver next
		// WithOrdered: batches that finished before the one starting at
		// next, by start index. They hold at most window - 1 inputs, as
		// the input at next is not consumed yet.
		pending map[int]*batch[In, Out]
	)
	if r.cfg.ordered {
		pending = make(map[int]*batch[In, Out])
	}
	var tick <-chan time.Time
	if r.obs != nil && r.obs.progress != nil {
		t := time.NewTicker(r.obs.every)
		defer t.Stop()
		tick = t.C
	}
	// handle takes in one batch of results; false means the run stopped.
	handle := func(b *batch[In, Out]) bool {
		if b.end {
			expected = b.total
			return true
		}
		received += int64(len(b.out))
		if !r.cfg.ordered {
			return r.deliver(b, deliver)
		}
		if b.start != next {
			pending[b.start] = b
			return true
		}
		for b != nil {
			next += len(b.out)
			if !r.deliver(b, deliver) {
				return false
			}
			if b = pending[next]; b != nil {
				delete(pending, next)
			}
		}
		return true
	}
	// held takes the results held behind a stalled call, when the watcher
	// nudges; false means the run stopped.
	held := func() bool {
		for _, b := range r.takeHeld() {
			if !handle(b) {
				return false
			}
		}
		// Results finished later in the same lanes are the watcher's to
		// notice again; it may have parked meanwhile (see hostage).
		r.watcher.wake()
		return true
	}
	for expected < 0 || received < expected {
		// A nudge first: held results finished before the batches that
		// keep arriving meanwhile, and completion order is theirs.
		select {
		case <-r.nudge:
			if !held() {
				return false
			}
			continue
		default:
		}
		var b *batch[In, Out]
		if r.obs == nil {
			select {
			case b = <-r.out:
			default:
				if !r.quick() {
					// Slow work: the workers woken with this goroutine
					// are queued behind it. Let them hand their results
					// over first, so that one wake-up takes them all
					// instead of each worker waking the consumer anew.
					runtime.Gosched()
				}
				select {
				case b = <-r.out:
				case <-r.nudge:
				case <-r.done:
					return false
				}
			}
		} else if b = r.receiveObserved(tick); b == nil {
			select {
			case <-r.done:
				return false
			default: // nudged
			}
		}
		if b == nil {
			// Nudged by the watcher: results wait behind a stalled call.
			if !held() {
				return false
			}
			continue
		}
		if !handle(b) {
			return false
		}
	}
	return true
}

// takeHeld takes the finished results of every lane that has any, as
// batches of their own, when the watcher says that one is held behind a
// stalled call.
func (r *run[In, Out]) takeHeld() []*batch[In, Out] {
	var got []*batch[In, Out]
	for l := range r.lanes.all {
		l.mu.Lock()
		if b := l.b; b != nil {
			if done := l.finished(); done > l.taken {
				nb := r.newBatch(int64(done - l.taken))
				nb.start = b.start + l.taken
				nb.out = append(nb.out, b.out[l.taken:done]...)
				nb.errs = errsIn(nb.errs, b.errs, nb.start, b.start+done)
				l.taken = done
				got = append(got, nb)
				if r.obs != nil {
					r.obs.handedOver(len(nb.out) - len(nb.errs))
				}
			}
		}
		l.mu.Unlock()
	}
	return got
}

// receiveObserved is the consumer's receive when the run is observed: it
// counts the time the consumer waits with nothing to take as starved, and
// reports progress while it waits. It returns nil when the run stopped or
// the watcher nudged.
func (r *run[In, Out]) receiveObserved(tick <-chan time.Time) *batch[In, Out] {
	select {
	case b := <-r.out:
		return b
	default:
	}
	t0 := time.Now()
	defer func() { r.obs.starved.Add(int64(time.Since(t0))) }()
	for {
		select {
		case b := <-r.out:
			return b
		case <-r.nudge:
			return nil
		case <-tick:
			r.obs.tick(false)
		case <-r.done:
			return nil
		}
	}
}

// deliver passes the results of b to fn, then returns b's inputs to the
// window and b itself to the pool. It returns false when the run
// stopped; no result is delivered after the run stopped.
func (r *run[In, Out]) deliver(b *batch[In, Out], fn func(Out, *TaskError) bool) bool {
	if r.obs != nil {
		t0, n := time.Now(), len(b.out)-len(b.errs) // b is recycled before the defer runs
		defer func() {
			r.obs.consume.Add(int64(time.Since(t0)))
			r.obs.taken(n)
			r.obs.tick(false)
		}()
	}
	if r.cancelled() { // once per batch: halted may lag a parent's cancellation
		return false
	}
	errs := b.errs
	for i, v := range b.out {
		if r.stopped() {
			return false
		}
		var te *TaskError
		if len(errs) > 0 && errs[0].Index == b.start+i {
			te, errs = errs[0], errs[1:]
		}
		if !fn(v, te) {
			return false
		}
	}
	r.consumed.Add(int64(len(b.out)))
	r.wakeFeeder()
	r.recycle(b)
	return true
}

// Merge fans the values of several channels into one: it returns a channel
// that receives every value sent on chans, in the order they arrive, and is
// closed once every channel in chans is closed, or ctx is done. Once ctx is
// done, Merge sends nothing more, even to a reader that is waiting: a value
// received from chans but not yet sent is dropped (only a send already
// under way as ctx becomes done may complete). Nil channels in chans are
// ignored, so Merge with no channel, or only nil ones, returns a closed
// channel.
//
// Merge starts one goroutine per channel; all of them have exited, or are
// about to exit without touching any channel, when the returned channel is
// closed. The returned channel is unbuffered: a slow reader slows the
// senders (backpressure), and a reader that stops reading must cancel ctx
// so that the goroutines exit. Merge panics if ctx is nil.
func Merge[T any](ctx context.Context, chans ...<-chan T) <-chan T {
	if ctx == nil {
		panic("fofi: Merge: nil context")
	}
	out := make(chan T)
	var wg sync.WaitGroup
	for _, c := range chans {
		if c == nil {
			continue
		}
		wg.Go(func() {
			done := ctx.Done()
			for {
				select {
				case v, ok := <-c:
					if !ok {
						return
					}
					// A select with both cases ready picks one at
					// random, so a waiting reader would get v after
					// ctx is done one time in two: ask done first.
					select {
					case <-done:
						return
					default:
					}
					select {
					case out <- v:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		})
	}
	// The closer goroutine is out's only closer; it closes out after the
	// last forwarder, its only senders, has returned.
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}
