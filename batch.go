package fofi

import (
	"reflect"
	"runtime"
	"sync"
)

// batch carries the results of a run of consecutive inputs, starting at
// input index start, from a worker to the consumer. Handing results over in
// batches instead of one by one is what makes short work cheap: one channel
// operation carries up to maxBatch results.
type batch[In, Out any] struct {
	start int
	in    []In         // the inputs claimed, start, start+1, ...
	out   []Out        // out[i] is the result of in[i], the zero value where it failed
	errs  []*TaskError // with WithContinueOnError: the failures, by index

	end   bool  // the feeder's last message: no input after ...
	total int64 // ... this many
}

// claimLimit is the largest claim that leaves room in the window for a full
// batch at every worker running plus two, one being consumed and one being
// pulled, so that batching never keeps a running worker idle. Quick work
// keeps few workers running and gets big batches; slow work starts more
// workers, but it is claimed one input at a time anyway.
func (r *run[In, Out]) claimLimit() int64 {
	return min(max(r.window/(r.started.Load()+2), 1), maxBatch)
}

// newBatch returns an empty batch with room for k inputs. It reuses a batch a consumer is done with when there is one;
// a reused batch too small for k is dropped, and a new one gets room for a
// few doublings of k, so that the ramp-up to full-size batches costs a
// handful of allocations, not one per batch.
func (r *run[In, Out]) newBatch(k int64) *batch[In, Out] {
	b, _ := r.pool.Get().(*batch[In, Out])
	if b == nil || int64(cap(b.out)) < k {
		size := min(4*k, maxBatch)
		b = &batch[In, Out]{in: make([]In, 0, size), out: make([]Out, 0, size)}
	}
	return b
}

// recycle clears b, so that it keeps no input or result reachable, and
// returns it to the pool.
func (r *run[In, Out]) recycle(b *batch[In, Out]) {
	clear(b.in)
	clear(b.out)
	b.in, b.out, b.errs = b.in[:0], b.out[:0], nil
	r.pool.Put(b)
}

// pools holds a *sync.Pool for each kind of buffer that runs one after
// another, or side by side, reuse instead of allocating their own: batches,
// by type (a run of short work needs about ten full-size batches), and a
// Run's or Stream's input ring, by type and size (16KB for ints and the
// default WithBuffer, which a run of ten inputs paid in allocation and
// garbage collection before it made a call). Nothing pooled holds a
// channel: a channel made in one testing/synctest bubble is fatal to use
// outside it.
var pools sync.Map // reflect.Type of a batch → *sync.Pool; of a ring slot → *[ringSizes]sync.Pool (see ringPool)

// poolsFor returns the *P that pools holds for key, making it on first use.
// The key is a reflect.Type, which converts to an interface without
// allocating; a key of type and size together would allocate on every
// lookup.
func poolsFor[P any](key reflect.Type) *P {
	if p, ok := pools.Load(key); ok {
		return p.(*P)
	}
	p, _ := pools.LoadOrStore(key, new(P))
	return p.(*P)
}

func batchPool[In, Out any]() *sync.Pool {
	return poolsFor[sync.Pool](reflect.TypeFor[batch[In, Out]]())
}

// growStack makes the calling goroutine's stack grow now, while it is
// shallow. A worker's calls to work run about ten frames deep (guard,
// work, fill, process, calls, the caller, the user's function and what it
// calls), which overflows the 2KB a goroutine starts with; the stack then
// grows in the middle of the first call, and growing it means walking and
// adjusting every frame on it. Measured with the CPU profile of
// BenchmarkSleep, that copy was a quarter of a slow run's CPU time, a few
// microseconds per worker, paid one worker after another while the run
// ramps up. Growing it here costs one copy of two frames.
//
//go:noinline
func growStack() {
	var pad [2048]byte
	pad[0] = 1
	runtime.KeepAlive(&pad)
}
