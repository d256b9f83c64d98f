package fofi_test

import (
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
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

// The bimodal workload: 4,000 inputs, of which 42, picked by a hash of the
// input, sleep 5ms and the rest return at once. The slow inputs come in
// clusters (0, 5 and 10 are all slow): a scheduler that hands one worker a
// run of inputs, or keeps results waiting behind a slow call, pays for it
// here. The ideal is the slow calls alone, c at a time.
const (
	bimodalN     = 4000
	bimodalSlow  = 42 // how many of the bimodalN inputs are slow; TestBimodalInputs checks it
	bimodalSleep = 5 * time.Millisecond
)

// bimodalSlowInput reports whether input x is one of the slow ones: about 1
// in 100, by Knuth's multiplicative hash. Go gives >> and % the same
// precedence, left to right; the parentheses say so.
func bimodalSlowInput(x int) bool {
	return ((uint32(x)*2654435761)>>8)%100 == 0
}

// TestBimodalInputs pins the workload of BenchmarkBimodal: its numbers
// mean nothing if the set of slow inputs drifts.
func TestBimodalInputs(t *testing.T) {
	var slow []int
	for x := range bimodalN {
		if bimodalSlowInput(x) {
			slow = append(slow, x)
		}
	}
	if len(slow) != bimodalSlow {
		t.Errorf("slow inputs among %d = %d, want %d", bimodalN, len(slow), bimodalSlow)
	}
	closest := bimodalN
	for i := 1; i < len(slow); i++ {
		closest = min(closest, slow[i]-slow[i-1])
	}
	if closest != 5 {
		t.Errorf("closest slow inputs are %d apart, want 5", closest)
	}
}

// BenchmarkBimodal runs the bimodal workload at c = 8 and 64, one op being
// a whole run of the 4,000 inputs. It reports
//
//	wall/ideal       wall time over ceil(42/c) 5ms sleeps, a sleep as long
//	                 as it takes on this machine (a 5ms timer fires late);
//	                 1 is perfect.
//	p99-handover-ms  the 99th percentile, over every input of every run, of
//	                 the time from work's return to the consumer receiving
//	                 the result. RunOrdered holds a result until those of
//	                 the inputs before it are consumed, as WithOrdered
//	                 promises, so its hand-over includes that wait. Map has
//	                 no consumer, only the slice it returns, so it reports
//	                 none: the same measure would be the time until Map
//	                 returns, which wall/ideal already shows.
//
// Read them with benchstat -col /impl, or -filter /c:8 -row /impl.
func BenchmarkBimodal(b *testing.B) {
	slow := measureSleep(bimodalSleep)
	ims := append(slices.DeleteFunc(slices.Clone(impls), func(im impl) bool {
		return im.name == "loop" // 42 sleeps in a row: nothing to learn
	}), workerPool)
	for _, c := range []int{8, 64} {
		ideal := time.Duration((bimodalSlow+c-1)/c) * slow
		for _, im := range ims {
			b.Run(fmt.Sprintf("c=%d/impl=%s", c, im.name), func(b *testing.B) {
				runBimodal(b, im, c, ideal)
			})
		}
	}
}

func runBimodal(b *testing.B, im impl, c int, ideal time.Duration) {
	b.ReportAllocs()
	ctx := context.Background()
	var start time.Time
	// returned[x] is when work(x) returned, since start. Each slot has one
	// writer, the worker that ran x, and is read by the consumer after the
	// implementation handed it the result, which orders the read after the
	// write.
	returned := make([]time.Duration, bimodalN)
	work := func(_ context.Context, x int) (int, error) {
		if bimodalSlowInput(x) {
			time.Sleep(bimodalSleep)
		}
		returned[x] = time.Since(start)
		return x * 2, nil
	}
	sum := 0
	handover := make([]time.Duration, 0, bimodalN) // this run's, in consume order
	sink := func(v int) {
		sum += v
		handover = append(handover, time.Since(start)-returned[v/2])
	}
	var all []time.Duration
	for b.Loop() {
		start = time.Now()
		handover = handover[:0]
		if err := im.run(ctx, bimodalN, c, work, sink); err != nil {
			b.Fatal(err)
		}
		b.StopTimer() // keeping the hand-overs is not part of the run
		all = append(all, handover...)
		b.StartTimer()
	}
	sinkValue = sum
	if len(all) != b.N*bimodalN {
		b.Fatalf("consumed %d results in %d runs, want %d", len(all), b.N, b.N*bimodalN)
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(ideal), "wall/ideal")
	if im.name != "Map" {
		slices.Sort(all)
		p99 := all[(len(all)*99+99)/100-1] // the ceil(0.99 len)-th smallest
		b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-handover-ms")
	}
}

// workerPool is the other hand-written baseline: c goroutines receive the
// inputs from an unbuffered channel and send each result on a results
// channel, which the caller drains. The work never fails in the
// benchmarks that use it, so it has no error path.
var workerPool = impl{"workerpool", func(ctx context.Context, n, c int, work func(context.Context, int) (int, error), sink func(int)) error {
	inputs := make(chan int)
	results := make(chan int, c)
	var workers sync.WaitGroup
	for range c {
		workers.Go(func() {
			for x := range inputs {
				v, _ := work(ctx, x)
				results <- v
			}
		})
	}
	go func() {
		for i := range n {
			inputs <- i
		}
		close(inputs) // the feeder is the only sender on inputs
	}()
	go func() {
		workers.Wait()
		close(results) // once the last worker, the last sender, is gone
	}()
	for v := range results {
		sink(v)
	}
	return nil
}}

// BenchmarkStall measures, in real time, the bound of work conservation:
// how long an input waits behind a call that blocks. A run of 2,010
// trivial inputs at c=2, so that claims are batches; the call for input
// 1,000 blocks until the call for input 1,001, claimed with it, has
// started, which only a steal of the stalled claim's tail can start. One op
// is one run. It reports the 50th and 99th percentiles, over the runs, of
// the time from the block to the start of input 1,001's call:
//
//	go test -run '^$' -bench BenchmarkStall -count 5
func BenchmarkStall(b *testing.B) {
	var waits []time.Duration
	for b.Loop() {
		var blocked time.Time
		started := make(chan time.Time, 1)
		release := make(chan struct{})
		err := fofi.Run(context.Background(), count(2010), func(_ context.Context, x int) (int, error) {
			switch x {
			case 1000:
				blocked = time.Now()
				<-release
			case 1001:
				started <- time.Now()
				close(release)
			}
			return x, nil
		}, func(int) error { return nil }, fofi.WithConcurrency(2))
		if err != nil {
			b.Fatal(err)
		}
		waits = append(waits, (<-started).Sub(blocked)) // blocked is written before release is closed
	}
	slices.Sort(waits)
	at := func(p int) float64 {
		return float64(waits[(len(waits)*p+99)/100-1]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(50), "p50-stall-ms")
	b.ReportMetric(at(99), "p99-stall-ms")
}

// BenchmarkForEach compares ForEach with Run and a consume that does
// nothing, the way side-effect-only work was written before ForEach, on
// trivial work, where fofi's own cost per item is all there is to
// measure. ForEach must be no slower.
//
//	for i in $(seq 10); do go test -run '^$' -bench BenchmarkForEach -benchmem -count 1; done | tee foreach.txt
//	benchstat -col /impl foreach.txt
func BenchmarkForEach(b *testing.B) {
	const n, c = 10_000, 8
	noop := func(int) error { return nil }
	effect := func(ctx context.Context, x int) error {
		_, err := double(ctx, x)
		return err
	}
	for _, im := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"Run", func(ctx context.Context) error {
			return fofi.Run(ctx, count(n), double, noop, fofi.WithConcurrency(c))
		}},
		{"ForEach", func(ctx context.Context) error {
			return fofi.ForEach(ctx, count(n), effect, fofi.WithConcurrency(c))
		}},
	} {
		b.Run(fmt.Sprintf("work=trivial/c=%d/impl=%s", c, im.name), func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if err := im.run(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		})
	}
}
