package fofi_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// TestPoolNestedAcrossPools runs A -> B -> A: a work call on pool A runs a
// run on pool B whose work runs a run on pool A again, every context
// derived from the call's, through every combination of entry points. The
// innermost run borrows the slot of the A call it runs in, through the B
// call between them, instead of waiting for ever for a slot its own
// ancestor holds. At limit 2 both outer calls hold A's slots at once.
func TestPoolNestedAcrossPools(t *testing.T) {
	for _, limit := range []int{1, 2} {
		for _, outer := range entries {
			for _, middle := range entries {
				for _, inner := range entries {
					t.Run(fmt.Sprintf("limit=%d/%s-%s-%s", limit, outer.name, middle.name, inner.name), func(t *testing.T) {
						testNestedAcrossPools(t, limit, outer, middle, inner)
					})
				}
			}
		}
	}
}

func testNestedAcrossPools(t *testing.T, limit int, outer, middle, inner entry) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPool(t, limit), newPool(t, limit)
		var leaves gauge
		sum := func(out []int) int {
			s := 0
			for _, v := range out {
				s += v
			}
			return s
		}
		got, err := outer.run(t.Context(), limit, func(ctx context.Context, x int) (int, error) {
			time.Sleep(time.Millisecond) // every outer call holds its A slot before any nests
			out, err := middle.run(ctx, 2, func(ctx context.Context, y int) (int, error) {
				out, err := inner.run(ctx, 3, func(ctx context.Context, z int) (int, error) {
					leaves.enter()
					defer leaves.leave()
					time.Sleep(time.Millisecond)
					return 100*x + 10*y + z, nil
				}, fofi.WithConcurrency(2), fofi.WithPool(a))
				return sum(out), err
			}, fofi.WithConcurrency(2), fofi.WithPool(b))
			return sum(out), err
		}, fofi.WithConcurrency(limit), fofi.WithPool(a))
		if err != nil {
			t.Fatalf("A -> B -> A = %v, want nil", err)
		}
		want := 0
		for x := range limit {
			want += 6*100*x + 3*10*(0+1) + 2*(0+1+2)
		}
		if s := sum(got); len(got) != limit || s != want {
			t.Errorf("A -> B -> A = %v (sum %d), want %d results summing to %d", got, s, limit, want)
		}
		if m := leaves.max.Load(); m > int64(limit) {
			t.Errorf("%d innermost calls in flight on A, want at most its limit %d", m, limit)
		}
		if in := a.InFlight() + b.InFlight(); in != 0 {
			t.Errorf("InFlight() = %d after the runs, want 0", in)
		}
	})
}

// TestPoolLendsOnlyDuringTheCall checks that a slot is lendable only while
// the call that holds it runs, on a pool of one slot, with a gauge counting
// the outer calls' own work and the nested runs' calls: one at a time.
//
//   - stream: work returns a Stream on the pool, which consume ranges over
//     while the worker makes its next call. The Stream's run cannot borrow
//     the slot of a call that has returned: it waits for a slot of its own.
//   - kept: work runs a nested Map (which borrows its slot), keeps its
//     context, and consume runs another Map with that context after the
//     call returned.
//   - unused: the same, but work keeps its context without using it:
//     consume's run is the first to look the context up, while the worker
//     makes a later call, and must not take it for that call's context.
//   - goroutine: work starts a nested run on another goroutine and returns
//     once that run has borrowed the slot. The run keeps the slot for its
//     batch, and the worker makes its next call only once it is given back.
func TestPoolLendsOnlyDuringTheCall(t *testing.T) {
	const n = 4
	leaf := func(g *gauge, d time.Duration) func(context.Context, int) (int, error) {
		return func(_ context.Context, x int) (int, error) {
			g.enter()
			defer g.leave()
			time.Sleep(d)
			return x, nil
		}
	}
	own := func(g *gauge) {
		g.enter()
		defer g.leave()
		time.Sleep(time.Millisecond)
	}
	for _, c := range []int{1, 2} {
		t.Run(fmt.Sprintf("stream/c=%d", c), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, 1)
				var g gauge
				total := 0
				err := fofi.Run(t.Context(), seq(n), func(ctx context.Context, x int) (iter.Seq2[int, error], error) {
					own(&g)
					return fofi.Stream(ctx, seq(3), leaf(&g, time.Millisecond), fofi.WithPool(p)), nil
				}, func(s iter.Seq2[int, error]) error {
					for v, err := range s {
						if err != nil {
							return err
						}
						total += v
					}
					return nil
				}, fofi.WithConcurrency(c), fofi.WithPool(p))
				if err != nil || total != n*3 {
					t.Fatalf("Run = %v with a total of %d, want nil and %d", err, total, n*3)
				}
				if m := g.max.Load(); m != 1 {
					t.Errorf("%d calls in flight on a pool of 1, want 1", m)
				}
			})
		})
		for _, name := range []string{"kept", "unused"} {
			t.Run(fmt.Sprintf("%s/c=%d", name, c), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					p := newPool(t, 1)
					var g gauge
					err := fofi.Run(t.Context(), seq(n), func(ctx context.Context, x int) (context.Context, error) {
						if name == "kept" { // the call borrows its slot before it keeps ctx
							if _, err := fofi.Map(ctx, []int{1}, leaf(&g, time.Millisecond), fofi.WithPool(p)); err != nil {
								return nil, err
							}
						}
						own(&g)
						return ctx, nil
					}, func(ctx context.Context) error {
						_, err := fofi.Map(ctx, []int{1, 2}, leaf(&g, time.Millisecond), fofi.WithPool(p))
						return err
					}, fofi.WithConcurrency(c), fofi.WithPool(p))
					if err != nil {
						t.Fatalf("Run = %v, want nil", err)
					}
					if m := g.max.Load(); m != 1 {
						t.Errorf("%d calls in flight on a pool of 1, want 1", m)
					}
				})
			})
		}
		t.Run(fmt.Sprintf("goroutine/c=%d", c), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, 1)
				var g gauge
				var nested atomic.Int64
				// The inputs end only once every nested run has: the
				// runs outlive their calls, not the outer run, whose end
				// would cancel them.
				finished := make(chan struct{}, n)
				inputs := func(yield func(int) bool) {
					for i := range n {
						if !yield(i) {
							return
						}
					}
					for range n {
						<-finished
					}
				}
				err := fofi.Run(t.Context(), inputs, func(ctx context.Context, x int) (int, error) {
					own(&g)
					started := make(chan struct{})
					go func() {
						defer func() { finished <- struct{}{} }()
						var once sync.Once
						_, err := fofi.Map(ctx, []int{1, 2, 3}, func(ctx context.Context, y int) (int, error) {
							once.Do(func() { close(started) })
							nested.Add(1)
							return leaf(&g, 5*time.Millisecond)(ctx, y)
						}, fofi.WithPool(p))
						if err != nil {
							t.Errorf("nested Map = %v, want nil", err)
						}
					}()
					<-started // the nested run borrowed the slot; it keeps going
					return x, nil
				}, func(int) error { return nil }, fofi.WithConcurrency(c), fofi.WithPool(p))
				if err != nil || nested.Load() != 3*n {
					t.Fatalf("Run = %v with %d nested calls, want nil and %d", err, nested.Load(), 3*n)
				}
				if m := g.max.Load(); m != 1 {
					t.Errorf("%d calls in flight on a pool of 1, want 1", m)
				}
				if in := p.InFlight(); in != 0 {
					t.Errorf("InFlight() = %d after the runs, want 0", in)
				}
			})
		})
	}
}

// TestWorkContextOutlivesCall checks that, without WithTaskTimeout, the
// context of a pooled work call is not cancelled when the call returns: it
// lives as long as the run.
func TestWorkContextOutlivesCall(t *testing.T) {
	p := newPool(t, 2)
	var kept []context.Context
	err := fofi.Run(t.Context(), seq(4), func(ctx context.Context, _ int) (context.Context, error) {
		return ctx, nil
	}, func(ctx context.Context) error {
		kept = append(kept, ctx)
		for _, k := range kept {
			if k.Err() != nil {
				return fmt.Errorf("a returned call's context is done: %w", k.Err())
			}
		}
		return nil
	}, fofi.WithPool(p), fofi.WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
}

// TestPoolShutdownFromWork shuts the pool down from a work call, with the
// call's context: Shutdown returns once the other calls in flight have
// returned, not waiting for its own call (nor, nested, for the calls it
// runs in), and no call starts after it.
func TestPoolShutdownFromWork(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, 3)
				var started atomic.Int64
				var took time.Duration
				_, err := e.run(t.Context(), 100, func(ctx context.Context, x int) (int, error) {
					started.Add(1)
					if x == 0 {
						time.Sleep(time.Millisecond)
						t0 := time.Now()
						if err := p.Shutdown(ctx); err != nil {
							t.Errorf("Shutdown(call's ctx) = %v, want nil", err)
						}
						took = time.Since(t0)
						return x, nil
					}
					time.Sleep(5 * time.Millisecond)
					return x, nil
				}, fofi.WithConcurrency(3), fofi.WithPool(p))
				if !errors.Is(err, fofi.ErrClosed) {
					t.Errorf("%s = %v, want ErrClosed", e.name, err)
				}
				if took != 4*time.Millisecond {
					t.Errorf("Shutdown took %v, want 4ms: until the other calls in flight returned", took)
				}
				if s := started.Load(); s != 3 {
					t.Errorf("%d calls started, want 3: none after Shutdown", s)
				}
				if _, err := e.run(t.Context(), 1, func(context.Context, int) (int, error) { return 0, nil }, fofi.WithPool(p)); !errors.Is(err, fofi.ErrClosed) {
					t.Errorf("%s after Shutdown = %v, want ErrClosed", e.name, err)
				}
			})
		})
	}
}

// TestPoolShutdownNestedAndConcurrent calls Shutdown from a call nested in
// another call on the pool (the outer call is exempt too, whether its slot
// is the one the nested call borrowed or not), and from two calls at once
// (each waits for the calls in flight but not for the other).
func TestPoolShutdownNestedAndConcurrent(t *testing.T) {
	cases := []struct {
		name        string
		limit       int
		outer, inns int
		shutters    int // the first inner calls that call Shutdown
	}{
		{"nested/limit=1", 1, 1, 2, 1},
		{"nested/limit=3", 3, 1, 3, 1},
		{"two-outer-calls/limit=3", 3, 2, 2, 1},
		{"concurrent/limit=3", 3, 1, 3, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPool(t, tc.limit)
				var slow gauge
				_, err := fofi.Map(t.Context(), make([]int, tc.outer), func(ctx context.Context, x int) (int, error) {
					_, err := fofi.Map(ctx, []int{0, 1, 2}[:tc.inns], func(ctx context.Context, y int) (int, error) {
						if y < tc.shutters {
							time.Sleep(time.Millisecond)
							t0 := time.Now()
							err := p.Shutdown(ctx)
							if want := 4 * time.Millisecond; err != nil || time.Since(t0) > want {
								t.Errorf("Shutdown from call %d.%d = %v after %v, want nil after at most %v", x, y, err, time.Since(t0), want)
							}
							return 0, nil
						}
						slow.enter()
						defer slow.leave()
						time.Sleep(5 * time.Millisecond)
						return 0, nil
					}, fofi.WithConcurrency(tc.inns), fofi.WithPool(p))
					return 0, err
				}, fofi.WithConcurrency(tc.outer), fofi.WithPool(p))
				if err != nil && !errors.Is(err, fofi.ErrClosed) {
					t.Errorf("Map = %v, want nil or ErrClosed", err)
				}
				if in := p.InFlight(); in != 0 {
					t.Errorf("InFlight() = %d after Shutdown and the runs, want 0", in)
				}
			})
		})
	}
}

// TestPoolShutdownExpires calls Shutdown with a context that ends before
// the calls in flight return: it returns the context's error, the pool is
// closed all the same, and the run returns ErrClosed once its calls have.
func TestPoolShutdownExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 2)
		running := make(chan error)
		go func() {
			_, err := fofi.Map(t.Context(), make([]int, 10), sleeper(new(gauge), time.Second), fofi.WithConcurrency(2), fofi.WithPool(p))
			running <- err
		}()
		time.Sleep(time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) != 10*time.Millisecond {
			t.Errorf("Shutdown = %v after %v, want DeadlineExceeded after 10ms", err, time.Since(t0))
		}
		if _, err := fofi.Map(t.Context(), []int{1}, sleeper(new(gauge), 0), fofi.WithPool(p)); !errors.Is(err, fofi.ErrClosed) {
			t.Errorf("Map after Shutdown = %v, want ErrClosed", err)
		}
		if err := <-running; !errors.Is(err, fofi.ErrClosed) {
			t.Errorf("the run in progress = %v, want ErrClosed", err)
		}
		if err := p.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown once the calls returned = %v, want nil", err)
		}
	})
}

// TestPoolPerBubble is the pattern the Pool documentation gives for tests
// in testing/synctest bubbles, which must not share a Pool (nor a
// semaphore.Weighted): each test makes its own Pool and injects it into
// the code under test. The tests run in parallel, under -race.
func TestPoolPerBubble(t *testing.T) {
	type server struct{ db *fofi.Pool } // the handler gets its Pool injected
	handle := func(ctx context.Context, s *server, ids []int) ([]int, error) {
		return fofi.Map(ctx, ids, func(ctx context.Context, id int) (int, error) {
			time.Sleep(10 * time.Millisecond)
			return id * 2, nil
		}, fofi.WithConcurrency(4), fofi.WithPool(s.db))
	}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				s := &server{db: newPool(t, 2)}
				var wg sync.WaitGroup
				for range 3 {
					wg.Go(func() {
						if _, err := handle(t.Context(), s, []int{1, 2, 3, 4}); err != nil {
							t.Error(err)
						}
					})
				}
				synctest.Wait()
				if in, w := s.db.InFlight(), s.db.Waiting(); in != 2 || w == 0 {
					t.Errorf("InFlight, Waiting = %d, %d while 3 requests compete, want 2 and more than 0", in, w)
				}
				t0 := time.Now()
				wg.Wait()
				if d := time.Since(t0); d != 60*time.Millisecond {
					t.Errorf("12 calls of 10ms on a pool of 2 took %v, want 60ms", d)
				}
			})
		})
	}
}

// errGate is a parent context whose Err, once armed, blocks until
// released: a run checks it after a failed call, so it holds the worker in
// the window between the call's return and its next call.
type errGate struct {
	context.Context
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *errGate) Err() error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return g.Context.Err()
}

// TestPoolNoBorrowBetweenCalls: a context kept by a call that has
// returned does not lend its slot while its worker is between that call
// and the next (a window a preemption opens): on a pool of one, a run on
// the kept context there waits for a slot of its own. Had it borrowed, a
// call of it that waited for the outer run's next call would have held the
// slot that call needs.
func TestPoolNoBorrowBetweenCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 1)
		gate := &errGate{Context: t.Context(), entered: make(chan struct{}), release: make(chan struct{})}
		kept := make(chan context.Context, 1)
		outer := make(chan error, 1)
		go func() {
			_, err := fofi.Map(gate, []int{0, 1}, func(ctx context.Context, i int) (int, error) {
				if i == 0 {
					kept <- ctx
					gate.armed.Store(true)
					return 0, errors.New("first call fails")
				}
				return i, nil
			}, fofi.WithPool(p), fofi.WithConcurrency(1), fofi.WithContinueOnError())
			outer <- err
		}()
		ctx := <-kept
		<-gate.entered // call 0 has returned; the worker holds the slot, before call 1
		var started atomic.Bool
		inner := make(chan error, 1)
		go func() {
			inner <- fofi.ForEach(ctx, seq(1), func(context.Context, int) error {
				started.Store(true)
				return nil
			}, fofi.WithPool(p))
		}()
		synctest.Wait()
		if started.Load() {
			t.Fatal("a run on a returned call's context borrowed its slot before the worker's next call")
		}
		close(gate.release)
		// The kept context lives as long as the outer run: the inner run
		// may be cancelled by its end before it gets the slot.
		if err := <-inner; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("inner ForEach = %v, want nil or context.Canceled", err)
		}
		if err := <-outer; err == nil {
			t.Error("outer Map = nil, want the first call's error")
		}
	})
}
