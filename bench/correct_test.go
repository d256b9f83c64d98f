package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// gauge counts the work calls in flight and remembers the most at once.
type gauge struct{ now, peak atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// checkedWork is x*2, slowed down so that calls overlap: every 8th call
// sleeps, the others yield. It counts itself on g.
func checkedWork(g *gauge) func(int) int {
	return func(x int) int {
		g.enter()
		defer g.leave()
		if x%8 == 0 {
			time.Sleep(20 * time.Microsecond)
		} else {
			runtime.Gosched()
		}
		return x * 2
	}
}

// outcome is what one run of a contestant did.
type outcome struct {
	results     []int // in the order consume saw them
	maxInFlight int64
	overlapped  bool // two consume calls ran at once
	err         error
}

func runChecked(cs contestant, n, c int) outcome {
	run, stop := cs.start(c)
	defer stop()
	var g gauge
	var o outcome
	var consuming atomic.Bool
	o.err = run(context.Background(), source{n}, checkedWork(&g), func(v int) {
		if !consuming.CompareAndSwap(false, true) {
			o.overlapped = true
		}
		o.results = append(o.results, v)
		consuming.Store(false)
	})
	o.maxInFlight = g.peak.Load()
	return o
}

// TestContestants checks every contestant against the contract: every
// result exactly once, in input order if the contestant says it is
// ordered, at most c work calls in flight, consume never called
// concurrently. Run it with -race: consume appends to a slice without a
// lock, so a contestant that calls consume from two goroutines without
// ordering them is a data race.
func TestContestants(t *testing.T) {
	for _, cs := range sortedContestants() {
		for _, n := range []int{0, 1, 5, 200, 1000} {
			for _, c := range []int{1, 3, 8} {
				t.Run(fmt.Sprintf("impl=%s/n=%d/c=%d", cs.name, n, c), func(t *testing.T) {
					t.Parallel()
					o := runChecked(cs, n, c)
					if o.err != nil {
						t.Fatalf("run: %v", o.err)
					}
					want := make([]int, n)
					for i := range want {
						want[i] = 2 * i
					}
					got := o.results
					if !cs.ordered {
						got = slices.Sorted(slices.Values(got))
					}
					if !slices.Equal(got, want) {
						if len(got) != len(want) {
							t.Fatalf("consumed %d results, want %d", len(got), len(want))
						}
						t.Fatalf("results = %v, want %v (ordered: %v)", head(o.results), head(want), cs.ordered)
					}
					if !cs.unbounded && o.maxInFlight > int64(c) {
						t.Errorf("max in flight = %d, want <= %d", o.maxInFlight, c)
					}
					if o.overlapped {
						t.Errorf("consume was called concurrently")
					}
				})
			}
		}
	}
}

// TestGaugeSeesOvershoot makes sure the concurrency check can fail: lo's
// parallel.Map, which ignores c, must be seen with more than one call in
// flight at c=1.
func TestGaugeSeesOvershoot(t *testing.T) {
	i := slices.IndexFunc(sortedContestants(), func(cs contestant) bool { return cs.unbounded })
	if i < 0 {
		t.Skip("no unbounded contestant")
	}
	cs := sortedContestants()[i]
	if o := runChecked(cs, 1000, 1); o.maxInFlight <= 1 {
		t.Errorf("%s: max in flight = %d at c=1, want > 1: the gauge does not see overlapping calls", cs.name, o.maxInFlight)
	}
}

func head(s []int) []int { return s[:min(len(s), 20)] }
