package fofi_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

func newPool(t *testing.T, limit int) *fofi.Pool {
	t.Helper()
	p, err := fofi.NewPool(limit)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sleeper is work that takes d of fake time, or less if ctx is cancelled,
// and counts itself in g.
func sleeper(g *gauge, d time.Duration) func(context.Context, int) (int, error) {
	return func(ctx context.Context, x int) (int, error) {
		g.enter()
		defer g.leave()
		select {
		case <-time.After(d):
			return x, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func TestNewPoolInvalid(t *testing.T) {
	for _, n := range []int{0, -1} {
		p, err := fofi.NewPool(n)
		if p != nil || !errors.Is(err, fofi.ErrInvalidOption) || err.Error() != fmt.Sprintf("fofi: NewPool(%d): limit must be at least 1", n) {
			t.Errorf("NewPool(%d) = %v, %v, want nil and an ErrInvalidOption naming the limit", n, p, err)
		}
	}
	for name, opt := range map[string]fofi.Option{"nil": fofi.WithPool(nil), "zero": fofi.WithPool(&fofi.Pool{})} {
		err := fofi.Run(t.Context(), seq(3), func(_ context.Context, x int) (int, error) { return x, nil }, func(int) error { return nil }, opt)
		if !errors.Is(err, fofi.ErrInvalidOption) {
			t.Errorf("Run(WithPool(%s)) = %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestPoolLimitAcrossRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 4)
		var g gauge
		var wg sync.WaitGroup
		for i := range 5 {
			e := entries[i%len(entries)]
			wg.Go(func() {
				if _, err := e.run(t.Context(), 40, sleeper(&g, 10*time.Millisecond), fofi.WithConcurrency(8), fofi.WithPool(p)); err != nil {
					t.Errorf("%s = %v", e.name, err)
				}
			})
		}
		synctest.Wait()
		if in, w := p.InFlight(), p.Waiting(); in != 4 || w == 0 {
			t.Errorf("InFlight() = %d, Waiting() = %d while five runs compete, want 4 and more than 0", in, w)
		}
		wg.Wait()
		if m := g.max.Load(); m != 4 {
			t.Errorf("most calls in flight across 5 runs = %d, want the pool's limit 4", m)
		}
		if in, w, l := p.InFlight(), p.Waiting(), p.Limit(); in != 0 || w != 0 || l != 4 {
			t.Errorf("after the runs InFlight, Waiting, Limit = %d, %d, %d, want 0, 0, 4", in, w, l)
		}
	})
}

func TestPoolRunKeepsItsOwnLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 16)
		var g gauge
		if _, err := fofi.Map(t.Context(), make([]int, 50), sleeper(&g, time.Millisecond), fofi.WithConcurrency(3), fofi.WithPool(p)); err != nil {
			t.Fatal(err)
		}
		if m := g.max.Load(); m != 3 {
			t.Errorf("most calls in flight = %d, want the run's own limit 3", m)
		}
	})
}

// TestPoolFairness starts a 10-item run while a 10,000-item run holds the
// pool. First come, first served gives the small run its share of the
// slots at once: it finishes in time proportional to its own size.
func TestPoolFairness(t *testing.T) {
	for _, big := range entries {
		for _, small := range entries {
			for _, bigConcurrency := range []int{4, 16} {
				t.Run(fmt.Sprintf("big=%s/c=%d/small=%s", big.name, bigConcurrency, small.name), func(t *testing.T) {
					testPoolFairness(t, big, small, bigConcurrency)
				})
			}
		}
	}
}

func testPoolFairness(t *testing.T, big, small entry, bigConcurrency int) {
	synctest.Test(t, func(t *testing.T) {
		const work = 10 * time.Millisecond
		p := newPool(t, 4)
		ctx, cancel := context.WithCancel(t.Context())
		var g gauge
		bigDone := make(chan error)
		go func() {
			_, err := big.run(ctx, 10_000, sleeper(&g, work), fofi.WithConcurrency(bigConcurrency), fofi.WithPool(p))
			bigDone <- err
		}()
		time.Sleep(5 * time.Millisecond) // the big run holds every slot
		start := time.Now()
		if _, err := small.run(t.Context(), 10, sleeper(&g, work), fofi.WithConcurrency(4), fofi.WithPool(p)); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		// The small run's 4 workers queue among the big run's: its
		// share of the 4 slots is 4/(4+bigConcurrency).
		share := 4.0 * 4 / float64(4+bigConcurrency)
		ideal := time.Duration(float64(10*work) / share)
		if took > 2*ideal {
			t.Errorf("the 10-item %s took %v behind a 10,000-item %s, want at most 2 × %v (its fair share)", small.name, took, big.name, ideal)
		}
		cancel()
		if err := <-bigDone; !errors.Is(err, context.Canceled) {
			t.Errorf("big %s = %v, want context.Canceled", big.name, err)
		}
	})
}

func TestPoolIsolationAndCapacityAfterPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 4)
		var g gauge
		other := make(chan error)
		go func() {
			_, err := fofi.Map(t.Context(), make([]int, 100), sleeper(&g, 10*time.Millisecond), fofi.WithConcurrency(4), fofi.WithPool(p))
			other <- err
		}()
		// A run that fails, one that panics, one that exits, one cancelled.
		boom := errors.New("boom")
		_, err := fofi.Map(t.Context(), make([]int, 10), func(context.Context, int) (int, error) {
			time.Sleep(time.Millisecond)
			return 0, boom
		}, fofi.WithPool(p))
		if !errors.Is(err, boom) {
			t.Errorf("failing run = %v, want boom", err)
		}
		func() {
			defer func() { recover() }()
			fofi.Run(t.Context(), seq(10), func(context.Context, int) (int, error) {
				time.Sleep(time.Millisecond)
				panic("work")
			}, func(int) error { return nil }, fofi.WithPool(p), fofi.WithConcurrency(4))
		}()
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			fofi.Map(t.Context(), make([]int, 10), func(context.Context, int) (int, error) {
				time.Sleep(time.Millisecond)
				runtime.Goexit()
				return 0, nil
			}, fofi.WithPool(p))
		}()
		<-exited
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Millisecond)
		_, err = fofi.Map(ctx, make([]int, 10), sleeper(&g, time.Second), fofi.WithPool(p))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cancelled run = %v, want DeadlineExceeded", err)
		}
		if err := <-other; err != nil {
			t.Errorf("the run sharing the pool = %v, want nil: runs are isolated", err)
		}
		if in := p.InFlight(); in != 0 {
			t.Errorf("InFlight() = %d after every run ended, want 0: a slot leaked", in)
		}
		// The whole capacity is there for the next run.
		var g2 gauge
		if _, err := fofi.Map(t.Context(), make([]int, 20), sleeper(&g2, time.Millisecond), fofi.WithConcurrency(8), fofi.WithPool(p)); err != nil {
			t.Fatal(err)
		}
		if m := g2.max.Load(); m != 4 {
			t.Errorf("most calls in flight after the failures = %d, want the full 4", m)
		}
	})
}

func TestPoolWaitRespectsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 1)
		hold, release := make(chan struct{}), make(chan struct{})
		go fofi.Map(t.Context(), []int{1}, func(context.Context, int) (int, error) {
			close(hold)
			<-release
			return 0, nil
		}, fofi.WithPool(p))
		<-hold
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		var calls atomic.Int64
		_, err := fofi.Map(ctx, make([]int, 5), func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }, fofi.WithPool(p))
		if !errors.Is(err, context.Canceled) || time.Since(start) != time.Second || calls.Load() != 0 {
			t.Errorf("waiting run = %v after %v with %d calls, want context.Canceled after 1s with none", err, time.Since(start), calls.Load())
		}
		if w := p.Waiting(); w != 0 {
			t.Errorf("Waiting() = %d after the waiter was cancelled, want 0", w)
		}
		close(release)
	})
}

// TestWorkContext checks that the context work receives is the run's
// context, with or without a Pool (which wraps it, to offer the worker's
// slot to nested runs): the caller's values and deadline show through, and
// the parent's cancellation reaches a call in flight, for every entry point.
func TestWorkContext(t *testing.T) {
	type key struct{}
	entries := map[string]func(context.Context, func(context.Context, int) (int, error), ...fofi.Option) error{
		"Run": func(ctx context.Context, work func(context.Context, int) (int, error), opts ...fofi.Option) error {
			return fofi.Run(ctx, seq(1), work, func(int) error { return nil }, opts...)
		},
		"Stream": func(ctx context.Context, work func(context.Context, int) (int, error), opts ...fofi.Option) error {
			for _, err := range fofi.Stream(ctx, seq(1), work, opts...) {
				if err != nil {
					return err
				}
			}
			return nil
		},
		"Map": func(ctx context.Context, work func(context.Context, int) (int, error), opts ...fofi.Option) error {
			_, err := fofi.Map(ctx, []int{0}, work, opts...)
			return err
		},
	}
	for name, entry := range entries {
		for _, pooled := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/pool=%v", name, pooled), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var opts []fofi.Option
					if pooled {
						opts = append(opts, fofi.WithPool(newPool(t, 1)))
					}
					deadline := time.Now().Add(time.Hour)
					ctx, cancel := context.WithDeadline(context.WithValue(t.Context(), key{}, "v"), deadline)
					time.AfterFunc(time.Second, cancel)
					err := entry(ctx, func(ctx context.Context, _ int) (int, error) {
						if v := ctx.Value(key{}); v != "v" {
							t.Errorf("ctx.Value(key) = %v in work, want v", v)
						}
						if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
							t.Errorf("ctx.Deadline() = %v, %v in work, want %v, true", d, ok, deadline)
						}
						<-ctx.Done()
						return 0, ctx.Err()
					}, opts...)
					if !errors.Is(err, context.Canceled) || time.Since(deadline.Add(-time.Hour)) != time.Second {
						t.Errorf("%s = %v after %v, want context.Canceled after 1s", name, err, time.Since(deadline.Add(-time.Hour)))
					}
				})
			})
		}
	}
}

// TestPoolNested runs a two-level tree of runs on a pool of one slot: the
// nested runs borrow their caller's slot instead of waiting forever.
func TestPoolNested(t *testing.T) {
	for _, inner := range entries {
		t.Run("inner="+inner.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, 1)
				var g gauge
				got, err := fofi.Map(t.Context(), []int{1, 2, 3}, func(ctx context.Context, x int) (int, error) {
					out, err := inner.run(ctx, 4, func(ctx context.Context, y int) (int, error) {
						g.enter()
						defer g.leave()
						time.Sleep(time.Millisecond)
						return x*10 + y, nil
					}, fofi.WithConcurrency(2), fofi.WithPool(p))
					sum := 0
					for _, v := range out {
						sum += v
					}
					return sum, err
				}, fofi.WithConcurrency(2), fofi.WithPool(p))
				if err != nil || !slices.Equal(got, []int{46, 86, 126}) {
					t.Fatalf("nested runs = %v, %v, want [46 86 126], nil", got, err)
				}
				if m := g.max.Load(); m != 1 {
					t.Errorf("most leaf calls in flight = %d, want 1: the pool's limit holds for nested runs too", m)
				}
			})
		})
	}
}

func TestPoolClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 2)
		var g gauge
		var started atomic.Int64
		running := make(chan error)
		go func() {
			_, err := fofi.Map(t.Context(), make([]int, 100), func(ctx context.Context, x int) (int, error) {
				started.Add(1)
				g.enter()
				defer g.leave()
				time.Sleep(time.Second) // in flight when Close is called; not cancelled
				return x, nil
			}, fofi.WithConcurrency(4), fofi.WithPool(p))
			running <- err
		}()
		time.Sleep(500 * time.Millisecond)
		closeStart := time.Now()
		if err := p.Close(); err != nil {
			t.Fatalf("Close() = %v, want nil", err)
		}
		if d := time.Since(closeStart); d != 500*time.Millisecond {
			t.Errorf("Close returned after %v, want 500ms: when the calls in flight returned", d)
		}
		if c := g.cur.Load(); c != 0 {
			t.Errorf("%d calls in flight when Close returned, want 0", c)
		}
		if err := <-running; !errors.Is(err, fofi.ErrClosed) {
			t.Errorf("run in progress = %v, want ErrClosed", err)
		}
		if s := started.Load(); s != 2 {
			t.Errorf("%d calls started, want 2: none after Close", s)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil", err)
		}
		err := fofi.Run(t.Context(), seq(3), func(_ context.Context, x int) (int, error) { return x, nil }, func(int) error { return nil }, fofi.WithPool(p))
		if !errors.Is(err, fofi.ErrClosed) {
			t.Errorf("Run on a closed pool = %v, want ErrClosed", err)
		}
		for _, err := range fofi.Stream(t.Context(), seq(3), func(_ context.Context, x int) (int, error) { return x, nil }, fofi.WithPool(p)) {
			if !errors.Is(err, fofi.ErrClosed) {
				t.Errorf("Stream on a closed pool yielded %v, want ErrClosed", err)
			}
		}
	})
}

func TestPoolCloseRacingRuns(t *testing.T) {
	// Close concurrently with many runs and with itself, under -race:
	// every run ends with nil or ErrClosed, and nothing is left held.
	for range 20 {
		p, _ := fofi.NewPool(3)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				sum := 0
				err := fofi.Run(context.Background(), seq(200), func(_ context.Context, x int) (int, error) { return x, nil },
					func(v int) error { sum += v; return nil }, fofi.WithPool(p), fofi.WithConcurrency(1+i%3))
				if err != nil && !errors.Is(err, fofi.ErrClosed) {
					t.Errorf("Run = %v, want nil or ErrClosed", err)
				}
			})
		}
		wg.Go(func() { p.Close() })
		wg.Go(func() { p.Close() })
		wg.Wait()
		if in, w := p.InFlight(), p.Waiting(); in != 0 || w != 0 {
			t.Fatalf("after Close: InFlight %d, Waiting %d, want 0, 0", in, w)
		}
	}
}
