package bench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// The bimodal workload: 4,000 inputs, of which 42, picked by a hash of the
// input, sleep 5ms and the rest are x*2. The slow inputs come in clusters
// (0, 5 and 10 are all slow): a contestant that hands one worker a run of
// inputs, or keeps results waiting behind a slow call, pays for it here.
// The ideal is the slow calls alone, c at a time. The same workload as the
// root module's BenchmarkBimodal.
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

// BenchmarkBimodal runs every contestant but the loop on the bimodal
// workload at c = 8 and 64, one op being a whole run of the 4,000 inputs.
// Names read work=bimodal/c=<c>/impl=<contestant>, as in BenchmarkPeers,
// so that the same benchstat projections and cmd/chart read both. It
// reports
//
//	wall/ideal       wall time over ceil(42/c) 5ms sleeps, a sleep as long
//	                 as it takes on this machine (a 5ms timer fires late);
//	                 1 is perfect. lo.parallel.Map ignores c and ends
//	                 below 1.
//	p99-handover-ms  the 99th percentile, over every input of every run, of
//	                 the time from work's return to consume receiving the
//	                 result. Ordered contestants hold a result until the
//	                 earlier ones are consumed, by design; those that
//	                 return every result at once (conc.iter.Map,
//	                 conc.pool.ResultPool, pond.ResultGroup, lo, fofi.Map)
//	                 hold it until the run's end.
func BenchmarkBimodal(b *testing.B) {
	for _, c := range []int{8, 64} {
		ideal := time.Duration((bimodalSlow+c-1)/c) * oneSlowCall()
		for _, cs := range sortedContestants() {
			if cs.name == "loop" {
				continue // 42 sleeps in a row: nothing to learn
			}
			bench(b, "bimodal", c, cs, func(b *testing.B, run runFunc) {
				runBimodal(b, run, ideal)
			})
		}
	}
}

func runBimodal(b *testing.B, run runFunc, ideal time.Duration) {
	ctx := context.Background()
	var start time.Time
	// returned[x] is when work(x) returned, since start. Each slot has one
	// writer, the worker that ran x, and is read by consume after the
	// contestant handed it the result, which orders the read after the
	// write.
	returned := make([]time.Duration, bimodalN)
	work := func(x int) int {
		if bimodalSlowInput(x) {
			time.Sleep(bimodalSleep)
		}
		returned[x] = time.Since(start)
		return x * 2
	}
	total := 0
	handover := make([]time.Duration, 0, bimodalN) // this run's, in consume order
	consume := func(v int) {
		total += v
		handover = append(handover, time.Since(start)-returned[v/2])
	}
	var all []time.Duration
	for b.Loop() {
		start = time.Now()
		handover = handover[:0]
		if err := run(ctx, source{bimodalN}, work, consume); err != nil {
			b.Fatal(err)
		}
		b.StopTimer() // keeping the hand-overs is not part of the run
		all = append(all, handover...)
		b.StartTimer()
	}
	sum.Add(int64(total))
	if len(all) != b.N*bimodalN {
		b.Fatalf("consumed %d results in %d runs, want %d", len(all), b.N, b.N*bimodalN)
	}
	slices.Sort(all)
	p99 := all[(len(all)*99+99)/100-1] // the ceil(0.99 len)-th smallest
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(ideal), "wall/ideal")
	b.ReportMetric(float64(p99)/float64(time.Millisecond), "p99-handover-ms")
}

// oneSlowCall is how long time.Sleep(bimodalSleep) takes here, measured
// once, as oneSleep is for the 1ms sleeps.
var oneSlowCall = sync.OnceValue(func() time.Duration { return medianSleep(bimodalSleep) })
