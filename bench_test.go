package fofi_test

import (
	"context"
	"fmt"
	"iter"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fofi-go/fofi"
	"golang.org/x/sync/errgroup"
)

// The benchmarks compare fofi's entry points with the sequential loop and
// with the errgroup version people write by hand, on three workloads:
//
//	trivial: work is x*2; the cost measured is fofi's own, per item.
//	cpu:     about 1µs of arithmetic per item; speed-up over the loop.
//	sleep:   1ms sleeps; wall time over the ideal ceil(n/c) sleeps.
//
// Compare implementations in ten passes of every benchmark, so that a slow
// moment of the machine hits every implementation alike (-count 10 would
// run each benchmark ten times in a row, and the machine's drift over
// minutes would show as differences between them):
//
//	for i in $(seq 10); do go test -run '^$' -bench . -benchmem -count 1; done | tee new.txt
//	benchstat -col /impl new.txt

type impl struct {
	name string
	run  func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error
}

var impls = []impl{
	{"loop", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
		for i := range n {
			v, err := work(ctx, i)
			if err != nil {
				return err
			}
			sink(v)
		}
		return nil
	}},
	{"errgroup", errgroupPerItem},
	{"Run", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
		return fofi.Run(ctx, count(n), work, func(v int) error { sink(v); return nil }, fofi.WithConcurrency(c))
	}},
	{"RunOrdered", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
		return fofi.Run(ctx, count(n), work, func(v int) error { sink(v); return nil }, fofi.WithConcurrency(c), fofi.WithOrdered())
	}},
	{"Stream", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
		for v, err := range fofi.Stream(ctx, count(n), work, fofi.WithConcurrency(c)) {
			if err != nil {
				return err
			}
			sink(v)
		}
		return nil
	}},
	{"Map", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
		in := make([]int, n)
		for i := range in {
			in[i] = i
		}
		out, err := fofi.Map(ctx, in, work, fofi.WithConcurrency(c))
		for _, v := range out {
			sink(v)
		}
		return err
	}},
}

// errgroupPerItem is the hand-written baseline: errgroup with SetLimit, one
// goroutine per item, results fanned in through a channel to one consumer.
func errgroupPerItem(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(c)
	results := make(chan int, c)
	go func() {
		for i := range n {
			g.Go(func() error {
				v, err := work(ctx, i)
				if err != nil {
					return err
				}
				select {
				case results <- v:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		}
		g.Wait()
		close(results)
	}()
	for v := range results {
		sink(v)
	}
	return g.Wait()
}

func count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

var sinkValue int

func double(_ context.Context, x int) (int, error) { return x * 2, nil }

// spin does about 1µs of arithmetic.
func spin(_ context.Context, x int) (int, error) {
	f := float64(x)
	for range 110 {
		f = math.Sqrt(f*f + 1)
	}
	return int(f), nil
}

func runBench(b *testing.B, im impl, n, c int, work func(context.Context, int) (int, error)) {
	b.ReportAllocs()
	ctx := context.Background()
	sum := 0
	for b.Loop() {
		if err := im.run(ctx, n, c, work, func(v int) { sum += v }); err != nil {
			b.Fatal(err)
		}
	}
	sinkValue = sum
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
}

func BenchmarkFanOut(b *testing.B) {
	for _, c := range []int{2, 8, 64} {
		for _, im := range impls {
			b.Run(fmt.Sprintf("work=trivial/c=%d/impl=%s", c, im.name), func(b *testing.B) {
				runBench(b, im, 10_000, c, double)
			})
		}
	}
	for _, im := range append([]impl{floor}, impls...) {
		b.Run(fmt.Sprintf("work=cpu1us/c=2/impl=%s", im.name), func(b *testing.B) {
			runBench(b, im, 10_000, 2, spin)
		})
	}
}

// floor is the ideal fan-out made real, the bound no implementation beats:
// c goroutines, each calling work for every c-th input in a row, with no
// hand-over of inputs or results and nothing consumed. It is how fast c
// processors (cpu1us) or c concurrent waits (sleep1ms) can go on this
// machine.
var floor = impl{"floor", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			for i := w; i < n; i += c {
				work(ctx, i)
			}
		})
	}
	wg.Wait()
	return nil
}}

// BenchmarkSleep reports wall time over the ideal ceil(n/c) sleeps, with the
// length of one sleep measured on this machine (a 1ms timer fires late).
func BenchmarkSleep(b *testing.B) {
	const n, c = 200, 50
	oneSleep := measureSleep(time.Millisecond)
	sleep := func(ctx context.Context, x int) (int, error) { time.Sleep(time.Millisecond); return x, nil }
	for _, im := range append([]impl{floor}, impls...) {
		if im.name == "loop" {
			continue
		}
		b.Run(fmt.Sprintf("work=sleep1ms/c=%d/impl=%s", c, im.name), func(b *testing.B) {
			runBench(b, im, n, c, sleep)
			ideal := float64((n+c-1)/c) * float64(oneSleep)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ideal, "wall/ideal")
		})
	}
}

func measureSleep(d time.Duration) time.Duration {
	var s []time.Duration
	for range 21 {
		t := time.Now()
		time.Sleep(d)
		s = append(s, time.Since(t))
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkPool measures what sharing a Pool costs. work=trivial/pool=...
// compares one run with and without a pool (the per-batch slot is the only
// extra work); runs=16/limit=... compares 16 concurrent runs of
// concurrency 8 sharing a pool of 8 (pool8) with 16 runs of concurrency 1
// each (each-c1), on about 1µs of work per item, and each-c8 is the same
// 16 runs at concurrency 8 without a pool, which tells the pool's cost from
// that of the runs' own concurrency. The differences are a few percent at
// most, less than this machine drifts in the minutes of a -count 10 run, so
// measure them in interleaved passes (see the top of this file) and read
// them with benchstat -col /pool and -col /limit. Within one process the
// sub-benchmark that runs first tends to be the faster, and limit=each-c1
// runs first; for a question of 1%, run each case in its own process, the
// order rotating, as docs/bench/pool-rounds.sh does.
func BenchmarkPool(b *testing.B) {
	const n = 10_000
	pool, err := fofi.NewPool(8)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	consume := func(v int) error { sinkValue += v; return nil }
	for _, withPool := range []bool{false, true} {
		b.Run(fmt.Sprintf("work=trivial/c=8/pool=%v", withPool), func(b *testing.B) {
			opts := []fofi.Option{fofi.WithConcurrency(8)}
			if withPool {
				opts = append(opts, fofi.WithPool(pool))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := fofi.Run(context.Background(), count(n), double, consume, opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
	for _, limit := range []struct {
		name string
		opts []fofi.Option
	}{
		{"each-c1", []fofi.Option{fofi.WithConcurrency(1)}},
		{"each-c8", []fofi.Option{fofi.WithConcurrency(8)}}, // what the pool adds to c=8, apart from c=8 itself
		{"pool8", []fofi.Option{fofi.WithConcurrency(8), fofi.WithPool(pool)}},
	} {
		opts := limit.opts
		b.Run("work=cpu1us/runs=16/limit="+limit.name, func(b *testing.B) {
			const runs, per = 16, 500
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				for range runs {
					wg.Go(func() {
						s := 0
						if err := fofi.Run(context.Background(), count(per), spin, func(v int) error { s += v; return nil }, opts...); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*runs*per), "ns/item")
		})
	}
}

// BenchmarkStats measures what WithStats costs on the trivial workload,
// where it costs most: a few clock reads and atomic adds per batch.
func BenchmarkStats(b *testing.B) {
	const n = 10_000
	consume := func(v int) error { sinkValue += v; return nil }
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("work=trivial/c=8/stats=%v", on), func(b *testing.B) {
			var s fofi.Stats
			opts := []fofi.Option{fofi.WithConcurrency(8)}
			if on {
				opts = append(opts, fofi.WithStats(&s))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := fofi.Run(context.Background(), count(n), double, consume, opts...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
