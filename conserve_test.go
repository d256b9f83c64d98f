package fofi_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
	"golang.org/x/sync/semaphore"
)

// The tests in this file hold fofi to work conservation (see Concurrency in
// the package documentation): while fewer than c calls are in flight, an
// input that waits gets a call within the documented bound, and a finished
// result becomes deliverable within it, however long the calls around them
// block. Each runs in a testing/synctest bubble, where a stuck run is a
// deadlock that fails the test, and in real time, under a deadline.

// conserveBound is the documented bound in a synctest bubble (two watch
// periods): an input that waits, or a finished result, waits at most this
// long behind a call that blocks.
const conserveBound = 500 * time.Microsecond

// inBubbleAndRealTime runs f in a synctest bubble and in real time, with a
// context that the real-time run gives a deadline, so that a hang fails
// the test instead of hanging it.
func inBubbleAndRealTime(t *testing.T, f func(t *testing.T, ctx context.Context)) {
	t.Run("synctest", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { f(t, t.Context()) })
	})
	t.Run("realtime", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		f(t, ctx)
	})
}

// orderedEntries adds Run and Stream with WithOrdered to entries.
var orderedEntries = append(entries[:len(entries):len(entries)],
	entry{"RunOrdered", func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		return entries[0].run(ctx, n, work, append(opts, fofi.WithOrdered())...)
	}},
	entry{"StreamOrdered", func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		return entries[1].run(ctx, n, work, append(opts, fofi.WithOrdered())...)
	}},
)

// barrier lets n calls through once all n have arrived.
type barrier struct {
	n       int
	arrived atomic.Int64
	open    chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait(ctx context.Context) error {
	if b.arrived.Add(1) == int64(b.n) {
		close(b.open)
	}
	select {
	case <-b.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBarrierAfterWarmup: c calls that wait for each other all run, even
// after thousands of quick calls have taught the run to batch its inputs.
func TestBarrierAfterWarmup(t *testing.T) {
	for _, e := range orderedEntries {
		for _, c := range []int{2, 4, 8, 32} {
			t.Run(fmt.Sprintf("%s/c=%d", e.name, c), func(t *testing.T) {
				inBubbleAndRealTime(t, func(t *testing.T, ctx context.Context) {
					const warm = 3000
					for round := range 2 { // the barrier in the middle, then at the end
						bar := newBarrier(c)
						n := warm + c + round*warm
						work := func(ctx context.Context, x int) (int, error) {
							if x >= warm && x < warm+c {
								if err := bar.wait(ctx); err != nil {
									return 0, err
								}
							}
							return x, nil
						}
						got, err := e.run(ctx, n, work, fofi.WithConcurrency(c))
						if err != nil || len(got) != n {
							t.Fatalf("%s(warm-up then a barrier of %d) = %d results, %v; want %d, nil", e.name, c, len(got), err, n)
						}
					}
				})
			})
		}
	}
}

// TestResultAwaitedByLaterCalls: the call for input i waits until consume
// has received the result of input i-1. A result held back until the calls
// after it on the same worker return would never arrive. At concurrency 1,
// as in the loop: with more, inputs may start out of input order (a claim's
// tail can start after inputs pulled later), so c calls can all wait for
// an input not yet started, which work conservation does not cover.
func TestResultAwaitedByLaterCalls(t *testing.T) {
	for _, e := range orderedEntries[:2] {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ordered=%v", e.name, ordered), func(t *testing.T) {
				inBubbleAndRealTime(t, func(t *testing.T, ctx context.Context) {
					const n = 300
					seen := make([]chan struct{}, n)
					for i := range seen {
						seen[i] = make(chan struct{})
					}
					work := func(ctx context.Context, x int) (int, error) {
						if x > 0 { // a chain through every input, as a loop allows
							select {
							case <-seen[x-1]:
							case <-ctx.Done():
								return 0, ctx.Err()
							}
						}
						return x, nil
					}
					opts := []fofi.Option{fofi.WithConcurrency(1)}
					if ordered {
						opts = append(opts, fofi.WithOrdered())
					}
					var err error
					if e.name == "Run" {
						err = fofi.Run(ctx, seq(n), work, func(v int) error { close(seen[v]); return nil }, opts...)
					} else {
						for v, ierr := range fofi.Stream(ctx, seq(n), work, opts...) {
							if ierr != nil {
								err = ierr
								break
							}
							close(seen[v])
						}
					}
					if err != nil {
						t.Fatalf("%s(calls awaiting earlier results) = %v, want nil", e.name, err)
					}
				})
			})
		}
	}
}

// TestSemaphoreAcrossWorkAndConsume: work acquires a permit that consume
// gives back, as a loop may; a plain loop never blocks here, and neither
// may fofi, whose unsent results would otherwise hold every permit.
func TestSemaphoreAcrossWorkAndConsume(t *testing.T) {
	for _, c := range []int{1, 2, 4} {
		for _, permits := range []int64{4, 16, 64} {
			t.Run(fmt.Sprintf("c=%d/permits=%d", c, permits), func(t *testing.T) {
				inBubbleAndRealTime(t, func(t *testing.T, ctx context.Context) {
					sem := semaphore.NewWeighted(permits)
					const n = 2000
					got := 0
					err := fofi.Run(ctx, seq(n), func(ctx context.Context, x int) (int, error) {
						if err := sem.Acquire(ctx, 1); err != nil {
							return 0, err
						}
						return x, nil
					}, func(int) error {
						got++
						sem.Release(1)
						return nil
					}, fofi.WithConcurrency(c))
					if err != nil || got != n {
						t.Fatalf("Run(permit in work, given back in consume) = %d results, %v; want %d, nil", got, err, n)
					}
				})
			})
		}
	}
}

// TestTricklingSourceBesideBlockedCall: after a quick phase, one call blocks
// for a second while inputs trickle in from a live source, one every 10ms.
// Each must start within the bound, since three of four workers are free.
func TestTricklingSourceBesideBlockedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const quick, trickle = 2000, 20
		blocker := quick
		pulled := make([]time.Time, quick+1+trickle)
		var mu sync.Mutex
		var late []string
		inputs := func(yield func(int) bool) {
			for i := range quick + 1 + trickle {
				if i > blocker {
					time.Sleep(10 * time.Millisecond)
				}
				mu.Lock()
				pulled[i] = time.Now()
				mu.Unlock()
				if !yield(i) {
					return
				}
			}
		}
		err := fofi.Run(t.Context(), inputs, func(ctx context.Context, x int) (int, error) {
			mu.Lock()
			if wait := time.Since(pulled[x]); wait > conserveBound {
				late = append(late, fmt.Sprintf("input %d waited %v", x, wait))
			}
			mu.Unlock()
			if x == blocker {
				time.Sleep(time.Second)
			}
			return x, nil
		}, func(int) error { return nil }, fofi.WithConcurrency(4))
		if err != nil {
			t.Fatal(err)
		}
		if len(late) > 0 {
			t.Errorf("inputs waited longer than %v to start while workers were free: %v", conserveBound, late)
		}
	})
}

// TestGoexitInConsumeBehindBlockedCall: consume calls runtime.Goexit on the
// result of input 1 while the calls after input 3 wait for the run to stop.
// Result 1 must reach consume, and the Goexit must leave Run.
func TestGoexitInConsumeBehindBlockedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exited := make(chan bool)
		go func() {
			normal := false
			defer func() { exited <- !normal }()
			_ = fofi.Run(t.Context(), seq(100), func(ctx context.Context, x int) (int, error) {
				if x > 3 {
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return x, nil
			}, func(v int) error {
				if v == 1 {
					runtime.Goexit()
				}
				return nil
			}, fofi.WithConcurrency(8), fofi.WithBuffer(16))
			normal = true
		}()
		if !<-exited {
			t.Fatal("Run returned normally; want the Goexit of consume replayed")
		}
	})
}

// TestPoolWorkConserving: three runs at concurrency 2 share a pool of 5,
// and after a warm-up of quick calls, their calls block until released one
// at a time. While inputs wait, every slot is in use within the bound after
// each release.
func TestPoolWorkConserving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pool, err := fofi.NewPool(5)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		const warm, perRun = 50, 12
		var g gauge
		var finished atomic.Int64
		release := make(chan struct{})
		work := func(ctx context.Context, x int) (int, error) {
			if x < warm {
				return x, nil
			}
			g.enter()
			defer g.leave()
			select {
			case <-release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			finished.Add(1)
			return x, nil
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for _, e := range entries {
			wg.Go(func() {
				_, err := e.run(t.Context(), warm+perRun, work, fofi.WithConcurrency(2), fofi.WithPool(pool))
				errs <- err
			})
		}
		for left := 3 * perRun; left > 0; left-- {
			time.Sleep(conserveBound)
			synctest.Wait()
			if want := int64(min(5, left)); g.cur.Load() != want {
				t.Fatalf("with %d calls left, %d in flight, want %d (pool of 5, 3 runs at c=2)", left, g.cur.Load(), want)
			}
			release <- struct{}{}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if finished.Load() != 3*perRun {
			t.Errorf("%d calls finished, want %d", finished.Load(), 3*perRun)
		}
	})
}

// TestQuickAndBlockingMix: quick calls mixed with calls that block until
// released, in real time: every result arrives, and the blocked calls never
// keep a free worker from the quick ones (the run ends once the blocked
// calls are released, which happens only after every quick result). Not
// with WithOrdered, whose window fills behind the first blocked call by
// design.
func TestQuickAndBlockingMix(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			const n, c = 5000, 8
			slow := func(x int) bool { return x%997 == 5 } // 6 of them, fewer than c
			var quickDone atomic.Int64
			quickTotal := int64(0)
			for x := range n {
				if !slow(x) {
					quickTotal++
				}
			}
			allQuick := make(chan struct{})
			got, err := e.run(ctx, n, func(ctx context.Context, x int) (int, error) {
				if slow(x) {
					select {
					case <-allQuick:
					case <-ctx.Done():
						return 0, ctx.Err()
					}
					return x, nil
				}
				if quickDone.Add(1) == quickTotal {
					close(allQuick)
				}
				return x, nil
			}, fofi.WithConcurrency(c))
			if err != nil || len(got) != n {
				t.Fatalf("%s(quick calls beside %d blocked ones) = %d results, %v; want %d, nil", e.name, 6, len(got), err, n)
			}
		})
	}
}

// TestResultsNotHeldBehindBlockedCall: results finished before a call that
// blocks reach consume within the bound, in the bubble's time, while that
// call still blocks: for Run and Stream, in completion and in input order.
func TestResultsNotHeldBehindBlockedCall(t *testing.T) {
	for _, e := range orderedEntries {
		if e.name == "Map" {
			continue // Map has no consumer
		}
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const quick, n = 3000, 3001
				release := make(chan struct{})
				var mu sync.Mutex
				returned := make([]time.Time, n)
				var late []string
				got := 0
				work := func(ctx context.Context, x int) (int, error) {
					if x == quick { // blocks until every result before it has arrived
						select {
						case <-release:
						case <-ctx.Done():
							return 0, ctx.Err()
						}
					}
					mu.Lock()
					returned[x] = time.Now()
					mu.Unlock()
					return x, nil
				}
				consume := func(v int) {
					mu.Lock()
					if wait := time.Since(returned[v]); wait > conserveBound {
						late = append(late, fmt.Sprintf("result %d after %v", v, wait))
					}
					mu.Unlock()
					if got++; got == quick {
						close(release)
					}
				}
				// WithConcurrency(1): the calls after the blocked one, in
				// its claim, are not taken by another worker, so only the
				// hand-over of results can let the run finish.
				var err error
				if e.name == "Run" || e.name == "RunOrdered" {
					opts := []fofi.Option{fofi.WithConcurrency(1)}
					if e.name == "RunOrdered" {
						opts = append(opts, fofi.WithOrdered())
					}
					err = fofi.Run(t.Context(), seq(quick+1), work, func(v int) error { consume(v); return nil }, opts...)
				} else {
					opts := []fofi.Option{fofi.WithConcurrency(1)}
					if e.name == "StreamOrdered" {
						opts = append(opts, fofi.WithOrdered())
					}
					for v, ierr := range fofi.Stream(t.Context(), seq(quick+1), work, opts...) {
						if ierr != nil {
							err = ierr
							break
						}
						consume(v)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(late) > 0 {
					t.Errorf("results reached consume later than %v after their call returned: %v", conserveBound, late[:min(len(late), 5)])
				}
			})
		})
	}
}
