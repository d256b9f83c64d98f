package bench

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The contract every contestant implements: call work for every input with
// at most c calls in flight, and pass every result to consume, called on
// one goroutine at a time (the fan-in), in input order if the contestant is
// ordered. The work never fails in these benchmarks; contestants still
// return the errors their library reports.
//
// Contestants whose library takes a slice (conc's iter.Map, lo, fofi.Map,
// the batched worker pool) build one from the inputs inside the run, as
// their users must when the input comes from an iterator, a channel or a
// file; the others range over the iterator as they go.

// source is the input: the integers 0, 1, ..., n-1, produced lazily.
type source struct{ n int }

func (s source) seq(yield func(int) bool) {
	for i := range s.n {
		if !yield(i) {
			return
		}
	}
}

// slice materializes the input, as a contestant that needs a slice must.
func (s source) slice() []int {
	return slices.AppendSeq(make([]int, 0, s.n), iter.Seq[int](s.seq))
}

// runFunc is one run: fan work out over in, fan the results in to consume.
type runFunc func(ctx context.Context, in source, work func(int) int, consume func(int)) error

type contestant struct {
	name      string
	ordered   bool // results reach consume in input order
	unbounded bool // ignores c: one goroutine per input, all at once
	slice     bool // takes the input as a slice, so holds all of it at once
	// start prepares the runs at concurrency c and returns the run and a
	// function that releases what start made. Contestants built around a
	// long-lived pool (ants, pond, fofi.Pool) create it here, once per
	// sub-benchmark and outside the timed loop, as their users would.
	start func(c int) (run runFunc, stop func())
}

// plain makes the start function of a contestant that keeps nothing
// between runs.
func plain(run func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error) func(int) (runFunc, func()) {
	return func(c int) (runFunc, func()) {
		return func(ctx context.Context, in source, work func(int) int, consume func(int)) error {
			return run(ctx, in, c, work, consume)
		}, func() {}
	}
}

// contestants is filled by the init functions of the per-peer files and
// put in display order by sortContestants.
var contestants []contestant

func register(cs ...contestant) { contestants = append(contestants, cs...) }

// displayOrder orders the contestants by family: baselines first, fofi last.
var displayOrder = []string{"loop", "workerpool", "errgroup", "conc", "pond", "ants", "rill", "lo", "fofi"}

func family(name string) int {
	prefix, _, _ := strings.Cut(name, ".")
	if i := slices.Index(displayOrder, prefix); i >= 0 {
		return i
	}
	return len(displayOrder)
}

func init() {
	register(
		contestant{name: "loop", ordered: true, start: plain(runLoop)},
		contestant{name: "workerpool", start: plain(runWorkerPool)},
		contestant{name: "workerpool.batched", slice: true, start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return runBatched(in, c, false, work, consume)
		})},
		contestant{name: "workerpool.batched.ordered", ordered: true, slice: true, start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return runBatched(in, c, true, work, consume)
		})},
	)
}

// sortedContestants returns the contestants in display order. Called after
// every init has run.
func sortedContestants() []contestant {
	cs := slices.Clone(contestants)
	slices.SortStableFunc(cs, func(a, b contestant) int { return family(a.name) - family(b.name) })
	return cs
}

// runLoop is the sequential loop: the baseline and the speed-up's
// denominator.
func runLoop(_ context.Context, in source, _ int, work func(int) int, consume func(int)) error {
	for v := range in.seq {
		consume(work(v))
	}
	return nil
}

// runWorkerPool is the classic hand-written worker pool: a feeder goroutine
// sends the inputs on an unbuffered channel, c workers receive them and send
// each result on a results channel, which the caller drains.
func runWorkerPool(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
	inputs := make(chan int)
	results := make(chan int, c)
	var workers sync.WaitGroup
	for range c {
		workers.Go(func() {
			for v := range inputs {
				results <- work(v)
			}
		})
	}
	go func() {
		for v := range in.seq {
			inputs <- v
		}
		close(inputs) // the feeder is the only sender on inputs
	}()
	go func() {
		workers.Wait()
		close(results) // closed once the last worker, the last sender, is gone
	}()
	for v := range results {
		consume(v)
	}
	return nil
}

// runBatched is the practical floor for quick work: the input as a slice,
// workers claiming index ranges with one atomic add, writing results in
// place, and one message per range to the consumer. The range size is
// fixed by hand, n/(8c) clamped to [1, 1024]: big enough to amortize a
// channel operation over many items, small enough that every worker gets
// several ranges. Ordered, the consumer holds finished ranges back until
// the ones before them are done.
func runBatched(in source, c int, ordered bool, work func(int) int, consume func(int)) error {
	xs := in.slice()
	n := len(xs)
	if n == 0 {
		return nil
	}
	chunk := min(max(n/(8*c), 1), 1024)
	chunks := (n + chunk - 1) / chunk
	out := make([]int, n)
	done := make(chan int, c) // the index of a finished range
	var next atomic.Int64
	var workers sync.WaitGroup
	for range min(c, chunks) {
		workers.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= chunks {
					return
				}
				for i := k * chunk; i < min((k+1)*chunk, n); i++ {
					out[i] = work(xs[i])
				}
				done <- k
			}
		})
	}
	emit := func(k int) {
		for _, v := range out[k*chunk : min((k+1)*chunk, n)] {
			consume(v)
		}
	}
	var ready []bool // ordered: ready[k] when range k is done but not consumed
	if ordered {
		ready = make([]bool, chunks)
	}
	nextOut := 0
	for range chunks {
		k := <-done
		if !ordered {
			emit(k)
			continue
		}
		ready[k] = true
		for nextOut < chunks && ready[nextOut] {
			emit(nextOut)
			nextOut++
		}
	}
	workers.Wait()
	return nil
}
