package fofi

import (
	"reflect"
	"sync"
	"time"
)

// batch is the unit handed from the feeder to a worker and from the worker
// to the consumer: consecutive inputs, starting at input index start, and
// their results. Handing over batches instead of single items is what makes
// short work cheap: one channel operation carries up to maxBatch items.
type batch[In, Out any] struct {
	start int
	in    []In
	out   []Out        // out[i] is the result of in[i], the zero value where it failed
	errs  []*TaskError // with WithContinueOnError: the failures, by index

	end   bool // the feeder's last message: no batch after this one ...
	total int  // ... and this many batches before it
}

// Batch sizing. A batch should take about batchTarget to pull and to
// work on: long enough that the cost of handing it over (a channel send, a
// goroutine wake-up, and the wait for an idle processor to pick the woken
// goroutine up, which on a busy machine is tens of microseconds) is small
// per item, short enough that it delays no result noticeably. 25µs batches
// left CPU-bound work at 1.3x the loop's speed on two cores, 100µs ones at
// 1.7x (BenchmarkFanOut/work=cpu1us). Sizes start at 1, double at most once
// per batch, and fall at once when work or pulling gets slower, so
// latency-bound work is always handed out one item at a time.
const (
	batchTarget = 100 * time.Microsecond
	maxBatch    = 256
	// queuedBatches is how many batches the feeder may queue for the
	// workers (see dispatch).
	queuedBatches = 8
)

// nextBatchSize chooses the size of the next batch from the last measured
// work time per item and the time it took to pull the last batch.
func (r *run[In, Out]) nextBatchSize(k int, pullPerItem time.Duration) int {
	work := time.Duration(r.workNs.Load())
	if work == 0 {
		return 1 // nothing measured yet: the work may be slow
	}
	perItem := max(work, pullPerItem, 1)
	return int(max(1, min(int64(2*k), int64(batchTarget/perItem), int64(r.batchLimit()))))
}

// batchLimit is the largest batch size that leaves room in the window for
// a full batch at every worker running plus two, one being filled and one
// being consumed, so that batching never keeps a running worker idle.
// Quick work keeps few workers running and gets big batches; slow work
// starts more workers, but it is handed out one input at a time anyway.
func (r *run[In, Out]) batchLimit() int {
	return int(min(max(r.window/int64(r.started+2), 1), maxBatch))
}

// newBatch returns an empty batch for inputs from index start with room
// for k inputs. It reuses a batch a consumer is done with when there is
// one; a reused batch too small for k is dropped, and a new one gets room
// for a few doublings of k, so that the ramp-up to full-size batches costs
// a handful of allocations, not one per batch.
func (r *run[In, Out]) newBatch(start, k int) *batch[In, Out] {
	b, _ := r.pool.Get().(*batch[In, Out])
	if b == nil || cap(b.in) < k {
		size := min(4*k, r.batchLimit())
		b = &batch[In, Out]{in: make([]In, 0, size), out: make([]Out, 0, size)}
	}
	b.start = start
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

// batchPools holds one *sync.Pool of batches per batch type, so that runs
// one after another reuse each other's batches instead of allocating their
// own: a run of short work needs about ten full-size batches.
var batchPools sync.Map // reflect.Type → *sync.Pool

func batchPool[In, Out any]() *sync.Pool {
	t := reflect.TypeFor[batch[In, Out]]()
	if p, ok := batchPools.Load(t); ok {
		return p.(*sync.Pool)
	}
	p, _ := batchPools.LoadOrStore(t, new(sync.Pool))
	return p.(*sync.Pool)
}
