package bench

import (
	"context"
	"flag"
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPeers runs every contestant on every workload. Names read
// work=<workload>/c=<concurrency>/impl=<contestant>, so that
//
//	benchstat -filter /work:trivial -row /impl -col /c new.txt
//
// puts contestants in rows and concurrencies in columns. Every
// sub-benchmark reports ns/item: wall time per input, fan-out and fan-in
// included. The workloads:
//
//	trivial          work is x*2: what is measured is the contestant's own
//	                 cost per item. 10,000 items, c = 2, 8, 64.
//	trivial-ordered  the same, contestants that deliver in input order only,
//	                 c = 8.
//	cpu1us           about 1µs of arithmetic per item, 10,000 items, c = 2,
//	                 8: how close to the machine's cores each gets
//	                 (speed-up = the loop's ns/item over the contestant's).
//	sleep1ms         a 1ms sleep per item, 200 items, c = 8, 50; reports
//	                 wall/ideal, the wall time over ceil(n/c) measured
//	                 sleeps.
//	stream           x*2 over 1,000,000 items (-stream.n) read from an
//	                 iterator at c = 8; reports the peak heap and goroutines
//	                 above what was there before the run: who holds O(n),
//	                 who streams.
func BenchmarkPeers(b *testing.B) {
	cs := sortedContestants()
	for _, c := range []int{2, 8, 64} {
		for _, cs := range cs {
			bench(b, "trivial", c, cs, func(b *testing.B, run runFunc) {
				runItems(b, run, trivialN, double)
			})
		}
	}
	for _, cs := range cs {
		if !cs.ordered {
			continue
		}
		bench(b, "trivial-ordered", 8, cs, func(b *testing.B, run runFunc) {
			runItems(b, run, trivialN, double)
		})
	}
	for _, c := range []int{2, 8} {
		for _, cs := range cs {
			bench(b, "cpu1us", c, cs, func(b *testing.B, run runFunc) {
				runItems(b, run, trivialN, spin)
			})
		}
	}
	for _, c := range []int{8, 50} {
		for _, cs := range cs {
			if cs.name == "loop" {
				continue // 200 sequential sleeps tell nothing new
			}
			bench(b, "sleep1ms", c, cs, func(b *testing.B, run runFunc) {
				runItems(b, run, sleepN, sleep1ms)
				ideal := float64((sleepN+c-1)/c) * float64(oneSleep())
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/ideal, "wall/ideal")
			})
		}
	}
	for _, cs := range cs {
		bench(b, "stream", 8, cs, func(b *testing.B, run runFunc) {
			runStream(b, run, streamN())
		})
	}
}

const (
	trivialN = 10_000
	sleepN   = 200
)

var streamNFlag = flag.Int("stream.n", 1_000_000, "inputs of the stream workload (10,000 with -short)")

func streamN() int {
	if testing.Short() {
		return min(*streamNFlag, 10_000)
	}
	return *streamNFlag
}

// bench runs f as the sub-benchmark work=<work>/c=<c>/impl=<cs.name>, with
// the contestant started (its pool made) outside the timed loop.
func bench(b *testing.B, work string, c int, cs contestant, f func(*testing.B, runFunc)) {
	b.Run(fmt.Sprintf("work=%s/c=%d/impl=%s", work, c, cs.name), func(b *testing.B) {
		run, stop := cs.start(c)
		defer stop()
		b.ReportAllocs()
		f(b, run)
	})
}

// sum is where the consumers put the results, so that nothing is optimized
// away.
var sum atomic.Int64

func runItems(b *testing.B, run runFunc, n int, work func(int) int) {
	ctx := context.Background()
	total := 0
	for b.Loop() {
		if err := run(ctx, source{n}, work, func(v int) { total += v }); err != nil {
			b.Fatal(err)
		}
	}
	sum.Add(int64(total))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
}

func double(x int) int { return x * 2 }

// spinRounds makes spin take about 1µs: a round took 7.1 to 7.8ns on the
// 2-core machine the committed results come from (110 rounds, 0.78µs, were
// too few). The loop's ns/item in work=cpu1us shows what it takes wherever
// the benchmarks run.
const spinRounds = 130

// spin is about 1µs of arithmetic: a chain of dependent square roots.
func spin(x int) int {
	f := float64(x)
	for range spinRounds {
		f = math.Sqrt(f*f + 1)
	}
	return int(f)
}

func sleep1ms(x int) int {
	time.Sleep(time.Millisecond)
	return x
}

// oneSleep is how long time.Sleep(time.Millisecond) takes here: the median
// of 21 sleeps, measured once. Timers fire late by tens of microseconds or
// more, and the ideal wall time is made of these real sleeps, not of
// nominal milliseconds.
var oneSleep = sync.OnceValue(func() time.Duration { return medianSleep(time.Millisecond) })

// medianSleep is the median time.Sleep(d) of 21.
func medianSleep(d time.Duration) time.Duration {
	s := make([]time.Duration, 21)
	for i := range s {
		t := time.Now()
		time.Sleep(d)
		s[i] = time.Since(t)
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// runStream runs the stream workload and reports, besides ns/item, the
// peak heap (live and not yet collected objects) and the peak goroutine
// count during a run, above their values just before it.
func runStream(b *testing.B, run runFunc, n int) {
	ctx := context.Background()
	var peakHeap, peakG float64
	total := 0
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		runtime.GC()
		p := newPeaks()
		p.start() // before the baseline, which so counts the sampler
		baseHeap, baseG := p.read()
		i := 0
		b.StartTimer()
		t := time.Now()
		err := run(ctx, source{n}, func(x int) int {
			// Sampling in work too catches the peak of a contestant
			// that only calls consume once its workers are gone
			// (fofi.Map, conc.iter.Map, lo) while the sampler
			// goroutine waits for a processor. The input itself picks
			// the calls, so that no counter is shared by the workers.
			if x&4095 == 0 {
				p.sample()
			}
			return x * 2
		}, func(v int) {
			total += v
			if i++; i%4096 == 0 {
				p.sample()
			}
		})
		elapsed += time.Since(t)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		p.stop()
		peakHeap = max(peakHeap, float64(p.heap.Load()-baseHeap))
		peakG = max(peakG, float64(p.goroutines.Load()-baseG))
		b.StartTimer()
	}
	sum.Add(int64(total))
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*n), "ns/item")
	b.ReportMetric(peakHeap, "peak-heap-B")
	b.ReportMetric(peakG, "peak-goroutines")
}

// peaks samples the heap and the goroutine count from a goroutine of its
// own, every 200µs or so, and whenever sample is called (by the consumer
// and by work, every 4,096 items, so that a sampler starved of processors
// does not miss the peak).
type peaks struct {
	heap, goroutines atomic.Int64
	mu               sync.Mutex // guards buf
	buf              []metrics.Sample
	quit             chan struct{}
	done             sync.WaitGroup
}

func newPeaks() *peaks {
	return &peaks{
		buf: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/sched/goroutines:goroutines"},
		},
		quit: make(chan struct{}),
	}
}

// read returns the current heap and goroutine count.
func (p *peaks) read() (heap, goroutines int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	metrics.Read(p.buf)
	return int64(p.buf[0].Value.Uint64()), int64(p.buf[1].Value.Uint64())
}

func (p *peaks) sample() {
	h, g := p.read()
	raise(&p.heap, h)
	raise(&p.goroutines, g)
}

func (p *peaks) start() {
	p.done.Go(func() {
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-tick.C:
				p.sample()
			}
		}
	})
}

// stop takes a last sample (a contestant may hold everything until its
// last result) and stops the sampler.
func (p *peaks) stop() {
	p.sample()
	close(p.quit)
	p.done.Wait()
}

func raise(peak *atomic.Int64, v int64) {
	for {
		old := peak.Load()
		if v <= old || peak.CompareAndSwap(old, v) {
			return
		}
	}
}
