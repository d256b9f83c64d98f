package fofi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// entry names one of the three entry points, driven the same way, so that
// a test of a shared guarantee runs against all of them.
type entry struct {
	name string
	// run runs work over 0..n-1 and returns the results in the order the
	// consumer saw them.
	run func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error)
}

var entries = []entry{
	{"Run", func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		err := fofi.Run(ctx, seq(n), work, func(v int) error { got = append(got, v); return nil }, opts...)
		return got, err
	}},
	{"Stream", func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		for v, err := range fofi.Stream(ctx, seq(n), work, opts...) {
			if err != nil {
				return got, err
			}
			got = append(got, v)
		}
		return got, nil
	}},
	{"Map", func(ctx context.Context, n int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		return fofi.Map(ctx, slices.Collect(seq(n)), work, opts...)
	}},
}

// seq yields 0..n-1.
func seq(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// gauge tracks how many calls are in flight and the most seen at once.
type gauge struct{ cur, max atomic.Int64 }

func (g *gauge) enter() {
	n := g.cur.Add(1)
	for m := g.max.Load(); n > m && !g.max.CompareAndSwap(m, n); m = g.max.Load() {
	}
}
func (g *gauge) leave() { g.cur.Add(-1) }

func goid() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	return string(bytes.Fields(b)[1])
}

func TestDeliveryTable(t *testing.T) {
	for _, e := range entries {
		for _, c := range []int{1, 2, 3, 8} {
			for _, buf := range []int{0, 1, 16} {
				for _, ordered := range []bool{false, true} {
					name := fmt.Sprintf("%s/c=%d/buf=%d/ordered=%v", e.name, c, buf, ordered)
					t.Run(name, func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							const n = 100
							var g gauge
							work := func(ctx context.Context, x int) (int, error) {
								g.enter()
								defer g.leave()
								// Varying fake delays reorder completions.
								time.Sleep(time.Duration((x*7)%5) * time.Millisecond)
								return x * 10, nil
							}
							opts := []fofi.Option{fofi.WithConcurrency(c), fofi.WithBuffer(buf)}
							if ordered {
								opts = append(opts, fofi.WithOrdered())
							}
							got, err := e.run(t.Context(), n, work, opts...)
							if err != nil {
								t.Fatalf("%s = %v, want nil", e.name, err)
							}
							want := make([]int, n)
							for i := range want {
								want[i] = i * 10
							}
							if ordered || e.name == "Map" {
								if !slices.Equal(got, want) {
									t.Fatalf("%s results = %v, want %v", e.name, got, want)
								}
							} else {
								slices.Sort(got)
								if !slices.Equal(got, want) {
									t.Fatalf("%s results (sorted) = %v, want each of 0..%d ×10 once", e.name, got, n-1)
								}
							}
							// Ordered runs with a small buffer may hold the
							// window full of results waiting for the head,
							// so only unordered ones must reach the bound.
							if m := g.max.Load(); m > int64(c) || !ordered && m != int64(c) {
								t.Errorf("most work calls in flight = %d, want %d", m, c)
							}
						})
					})
				}
			}
		}
	}
}

func TestConcurrencyBoundLatencyBound(t *testing.T) {
	// Slow work at high concurrency: every slot is used, none more, and
	// the run takes ceil(n/c) rounds of fake time.
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n, c = 200, 50
				var g gauge
				start := time.Now()
				_, err := e.run(t.Context(), n, func(ctx context.Context, x int) (int, error) {
					g.enter()
					defer g.leave()
					time.Sleep(time.Second)
					return x, nil
				}, fofi.WithConcurrency(c))
				if err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != 4*time.Second {
					t.Errorf("%s took %v of fake time, want 4s (ceil(%d/%d) rounds)", e.name, got, n, c)
				}
				if m := g.max.Load(); m != c {
					t.Errorf("most calls in flight = %d, want %d", m, c)
				}
			})
		})
	}
}

func TestConsumeOnCallerGoroutineNeverConcurrent(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered=%v", ordered), func(t *testing.T) {
			caller := goid()
			var inConsume atomic.Int32
			opts := []fofi.Option{fofi.WithConcurrency(8)}
			if ordered {
				opts = append(opts, fofi.WithOrdered())
			}
			n := 0
			err := fofi.Run(t.Context(), seq(5000), func(_ context.Context, x int) (int, error) { return x, nil },
				func(int) error {
					if inConsume.Add(1) != 1 {
						t.Error("consume called concurrently")
					}
					if g := goid(); g != caller {
						t.Errorf("consume on goroutine %s, want the caller's %s", g, caller)
					}
					n++
					inConsume.Add(-1)
					return nil
				}, opts...)
			if err != nil || n != 5000 {
				t.Fatalf("Run = %v after %d results, want nil after 5000", err, n)
			}
		})
	}
}

// TestBackpressureBound blocks the consumer and checks, once everything
// else is blocked too, how far inputs and results got ahead of it; then it
// releases one result at a time and checks again each time.
func TestBackpressureBound(t *testing.T) {
	for _, c := range []int{1, 2, 3, 8} {
		for _, buf := range []int{0, 1, 16, 1000} {
			for _, ordered := range []bool{false, true} {
				t.Run(fmt.Sprintf("c=%d/buf=%d/ordered=%v", c, buf, ordered), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						testBackpressure(t, c, buf, ordered)
					})
				})
			}
		}
	}
}

func testBackpressure(t *testing.T, c, buf int, ordered bool) {
	const n = 3000
	var pulled, done, consumed atomic.Int64
	inputs := func(yield func(int) bool) {
		for i := range n {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	release := make(chan struct{})
	opts := []fofi.Option{fofi.WithConcurrency(c), fofi.WithBuffer(buf)}
	if ordered {
		opts = append(opts, fofi.WithOrdered())
	}
	errc := make(chan error, 1)
	go func() {
		errc <- fofi.Run(t.Context(), inputs, func(_ context.Context, x int) (int, error) {
			// Input 0 is slow, so that ordered runs wait for the head.
			if x == 0 {
				time.Sleep(time.Second)
			}
			done.Add(1)
			return x, nil
		}, func(int) error {
			<-release
			consumed.Add(1)
			return nil
		}, opts...)
	}()
	var once sync.Once
	finish := func() error {
		once.Do(func() { close(release) })
		return <-errc
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		finish()
		t.FailNow()
	}
	check := func() {
		t.Helper()
		synctest.Wait()
		p, d, k := pulled.Load(), done.Load(), consumed.Load()
		if lim := int64(c + buf + 2); p-k > lim {
			fail("pulled %d inputs with %d consumed: %d ahead, want at most concurrency+buffer+2 = %d", p, k, p-k, lim)
		}
		if lim := int64(c + buf + 1); d-k > lim {
			fail("%d results outstanding, want at most concurrency+buffer+1 = %d", d-k, lim)
		}
		if p == k && k < n {
			fail("nothing pulled ahead of the consumer (%d pulled, %d consumed): no progress", p, k)
		}
	}
	// While input 0 sleeps, ordered runs hold finished results back.
	check()
	if ordered {
		if held := done.Load(); held > int64(c+buf) {
			fail("WithOrdered holds %d results while waiting for the head, want at most %d", held, c+buf)
		}
	}
	time.Sleep(2 * time.Second)
	for range 50 {
		check()
		release <- struct{}{}
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if k := consumed.Load(); k != n {
		t.Fatalf("consumed %d results, want %d", k, n)
	}
}

func TestStreamsInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 10 million items")
	}
	const n = 10_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	count, peak := 0, uint64(0)
	err := fofi.Run(t.Context(), seq(n), func(_ context.Context, x int) (int, error) { return x, nil },
		func(int) error {
			count++
			if count%1_000_000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapInuse)
			}
			return nil
		})
	runtime.ReadMemStats(&after)
	if err != nil || count != n {
		t.Fatalf("Run = %v after %d results, want nil after %d", err, count, n)
	}
	// 10 million ints held at once would take 80 MB; the run's window is
	// a few thousand items.
	if grow := int64(peak) - int64(before.HeapInuse); grow > 8<<20 {
		t.Errorf("heap in use grew by %d bytes while streaming %d items, want well under 8 MiB", grow, n)
	}
}

func TestFailFast(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				boom := errors.New("boom")
				var started atomic.Int64
				var g gauge
				start := time.Now()
				_, err := e.run(t.Context(), 100, func(ctx context.Context, x int) (int, error) {
					started.Add(1)
					g.enter()
					defer g.leave()
					if x == 2 {
						time.Sleep(time.Second)
						return 0, boom
					}
					// The others wait for the cancellation and report it:
					// those errors must not hide the root cause.
					select {
					case <-ctx.Done():
						return 0, ctx.Err()
					case <-time.After(time.Hour):
						return x, nil
					}
				}, fofi.WithConcurrency(3))
				var te *fofi.TaskError
				if !errors.As(err, &te) || te.Index != 2 || !errors.Is(err, boom) {
					t.Fatalf("%s = %v, want *TaskError{Index: 2, Err: boom}", e.name, err)
				}
				if errors.Is(err, context.Canceled) {
					t.Errorf("%s = %v: reports the cancellation it caused", e.name, err)
				}
				if got := time.Since(start); got != time.Second {
					t.Errorf("%s returned after %v, want 1s: at the error, not after the other calls' hour", e.name, got)
				}
				if s := started.Load(); s != 3 {
					t.Errorf("%d work calls started, want 3: no new call after the error", s)
				}
				if c := g.cur.Load(); c != 0 {
					t.Errorf("%d work calls still running when %s returned", c, e.name)
				}
			})
		})
	}
}

func TestNoWorkStartsAfterStop(t *testing.T) {
	// Input 0 fails after a second. Meanwhile the other worker runs
	// through quick inputs, in big batches by then, up to input 1000,
	// which ignores the cancellation and returns a result: the rest of
	// its batch must not start.
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var late atomic.Int64
				_, err := e.run(t.Context(), 5000, func(ctx context.Context, x int) (int, error) {
					if ctx.Err() != nil {
						late.Add(1)
					}
					switch x {
					case 0:
						time.Sleep(time.Second)
						return 0, errors.New("fail")
					case 1000:
						<-ctx.Done()
					}
					return x, nil
				}, fofi.WithConcurrency(2))
				if err == nil {
					t.Fatalf("%s = nil, want the error of input 0", e.name)
				}
				if n := late.Load(); n != 0 {
					t.Errorf("%d work calls started after the run was cancelled, want 0", n)
				}
			})
		})
	}
}

func TestConsumeErrorReturnedAsIs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := errors.New("stop")
		var g gauge
		var calls int
		err := fofi.Run(t.Context(), seq(1000), func(ctx context.Context, x int) (int, error) {
			g.enter()
			defer g.leave()
			time.Sleep(time.Millisecond)
			return x, nil
		}, func(int) error {
			calls++
			if calls == 5 {
				return stop
			}
			return nil
		}, fofi.WithConcurrency(4))
		if err != stop {
			t.Fatalf("Run = %v, want the consume error itself", err)
		}
		if calls != 5 {
			t.Errorf("consume called %d times, want 5: none after its error", calls)
		}
		if c := g.cur.Load(); c != 0 {
			t.Errorf("%d work calls still running when Run returned", c)
		}
	})
}

func TestParentCancellation(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(5*time.Second, cancel)
				var g gauge
				start := time.Now()
				_, err := e.run(ctx, 1000, func(ctx context.Context, x int) (int, error) {
					g.enter()
					defer g.leave()
					select {
					case <-ctx.Done():
						return 0, ctx.Err()
					case <-time.After(time.Second):
						return x, nil
					}
				}, fofi.WithConcurrency(4))
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s = %v, want an error matching context.Canceled", e.name, err)
				}
				var te *fofi.TaskError
				if errors.As(err, &te) {
					t.Errorf("%s = %v: a cancellation reported as a task error", e.name, err)
				}
				if got := time.Since(start); got != 5*time.Second {
					t.Errorf("%s returned %v after the start, want 5s: at the cancellation", e.name, got)
				}
				if c := g.cur.Load(); c != 0 {
					t.Errorf("%d work calls still running when %s returned", c, e.name)
				}
			})
		})
	}
}

// cancelling is a parent context caught in the middle of its cancel: its
// Err reports the cancellation, but its Done channel, and with it the
// cancellation of the contexts derived from it, comes later. A
// context.CancelFunc goes through that moment every time: it sets Err,
// then cancels the children one by one.
type cancelling struct {
	context.Context
	err  atomic.Pointer[error]
	done chan struct{}
}

func (c *cancelling) Done() <-chan struct{} { return c.done }

func (c *cancelling) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// TestParentCancelledWhileCancelling: a run that sees its parent's Err
// before its own context is cancelled (found by FuzzRun) stops and returns
// the parent's error, not nil, though its own stop may then reach its
// context before the parent's cancellation does.
func TestParentCancelledWhileCancelling(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			parent := &cancelling{Context: context.Background(), done: make(chan struct{})}
			defer close(parent.done)
			_, err := e.run(parent, 100, func(_ context.Context, x int) (int, error) {
				if x == 10 {
					canceled := context.Canceled
					parent.err.Store(&canceled)
				}
				return x, nil
			}, fofi.WithConcurrency(2))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s = %v, want an error matching context.Canceled", e.name, err)
			}
		})
	}
}

func TestParentDeadlineAndCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		err := fofi.Run(ctx, seq(100), func(ctx context.Context, x int) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, func(int) error { return nil })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run = %v, want context.DeadlineExceeded", err)
		}

		shutdown := errors.New("shutting down")
		ctx2, cancel2 := context.WithCancelCause(t.Context())
		cancel2(shutdown)
		err = fofi.Run(ctx2, seq(100), func(ctx context.Context, x int) (int, error) { return x, nil }, func(int) error { return nil })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, shutdown) {
			t.Fatalf("Run = %v, want context.Canceled with the cause %v", err, shutdown)
		}
	})
}

func TestOrderingUnderReversedDelays(t *testing.T) {
	for _, e := range entries[:2] { // Map is always ordered; see TestDeliveryTable
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ordered=%v", e.name, ordered), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const n = 16
					opts := []fofi.Option{fofi.WithConcurrency(n)}
					if ordered {
						opts = append(opts, fofi.WithOrdered())
					}
					got, err := e.run(t.Context(), n, func(_ context.Context, x int) (int, error) {
						time.Sleep(time.Duration(n-x) * time.Second) // the last input finishes first
						return x, nil
					}, opts...)
					if err != nil {
						t.Fatal(err)
					}
					want := slices.Collect(seq(n))
					if !ordered {
						slices.Reverse(want) // completion order
					}
					if !slices.Equal(got, want) {
						t.Fatalf("%s delivered %v, want %v", e.name, got, want)
					}
				})
			})
		}
	}
}

func TestContinueOnError(t *testing.T) {
	for _, e := range entries {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ordered=%v", e.name, ordered), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const n = 50
					opts := []fofi.Option{fofi.WithConcurrency(4), fofi.WithContinueOnError()}
					if ordered {
						opts = append(opts, fofi.WithOrdered())
					}
					work := func(_ context.Context, x int) (int, error) {
						time.Sleep(time.Duration(n-x) * time.Millisecond)
						if x%10 == 3 {
							return -1, fmt.Errorf("bad %d", x)
						}
						return x, nil
					}
					var got []int
					var err error
					switch e.name {
					case "Stream":
						// Every failure is yielded in its place, and the run goes on.
						var failed []int
						for v, err := range fofi.Stream(t.Context(), seq(n), work, opts...) {
							var te *fofi.TaskError
							if errors.As(err, &te) {
								if v != 0 {
									t.Errorf("failure yielded with value %d, want the zero value", v)
								}
								failed = append(failed, te.Index)
								continue
							}
							if err != nil {
								t.Fatalf("Stream yielded %v, want only task errors", err)
							}
							got = append(got, v)
						}
						slices.Sort(failed)
						if want := []int{3, 13, 23, 33, 43}; !slices.Equal(failed, want) {
							t.Errorf("Stream yielded failures for %v, want %v", failed, want)
						}
					case "Map":
						got, err = e.run(t.Context(), n, work, opts...)
						for i, v := range got {
							if want := i; i%10 == 3 {
								if v != 0 {
									t.Errorf("Map out[%d] = %d, want the zero value where work failed", i, v)
								}
							} else if v != want {
								t.Errorf("Map out[%d] = %d, want %d", i, v, want)
							}
						}
						got = slices.DeleteFunc(got, func(v int) bool { return v == 0 })
						got = append([]int{0}, got...)
					default:
						got, err = e.run(t.Context(), n, work, opts...)
					}
					if e.name != "Stream" {
						var idx []int
						for _, err := range err.(interface{ Unwrap() []error }).Unwrap() {
							var te *fofi.TaskError
							if !errors.As(err, &te) {
								t.Fatalf("joined error holds %v, want only *TaskError", err)
							}
							idx = append(idx, te.Index)
						}
						if want := []int{3, 13, 23, 33, 43}; !slices.Equal(idx, want) {
							t.Errorf("%s error holds task errors for %v, want %v in input order", e.name, idx, want)
						}
					}
					slices.Sort(got)
					var want []int
					for i := range n {
						if i%10 != 3 {
							want = append(want, i)
						}
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s delivered %v, want every successful result %v", e.name, got, want)
					}
				})
			})
		}
	}
}

func TestContinueOnErrorCancellationIsNotATaskError(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(1500*time.Millisecond, cancel)
				_, err := e.run(ctx, 100, func(ctx context.Context, x int) (int, error) {
					select {
					case <-ctx.Done():
						return 0, ctx.Err()
					case <-time.After(time.Second):
						return x, nil
					}
				}, fofi.WithConcurrency(4), fofi.WithContinueOnError())
				var te *fofi.TaskError
				if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
					t.Fatalf("%s = %v, want context.Canceled and no task error for the calls it cancelled", e.name, err)
				}
			})
		})
	}
}

func TestNoConsumeAfterCancel(t *testing.T) {
	// Quick work fills big batches; a slow consumer is cancelled in the
	// middle of one and must not be called again.
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(5500*time.Millisecond, cancel)
		calls := 0
		err := fofi.Run(ctx, seq(100_000), func(_ context.Context, x int) (int, error) { return x, nil },
			func(int) error { calls++; time.Sleep(time.Second); return nil })
		if !errors.Is(err, context.Canceled) || calls != 6 {
			t.Fatalf("Run = %v after %d consume calls, want context.Canceled after 6", err, calls)
		}
	})
}

func TestContinueOnErrorConsumeErrorStillStops(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := fofi.Run(t.Context(), seq(100), func(_ context.Context, x int) (int, error) {
		if x == 1 {
			return 0, errors.New("bad")
		}
		return x, nil
	}, func(int) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	}, fofi.WithContinueOnError(), fofi.WithOrdered(), fofi.WithConcurrency(1))
	if !errors.Is(err, stop) || calls != 10 {
		t.Fatalf("Run = %v after %d consume calls, want the consume error after 10", err, calls)
	}
}

func TestEmptyInput(t *testing.T) {
	work := func(context.Context, int) (int, error) { t.Error("work called"); return 0, nil }
	if err := fofi.Run(t.Context(), seq(0), work, func(int) error { t.Error("consume called"); return nil }); err != nil {
		t.Errorf("Run(empty) = %v, want nil", err)
	}
	for v, err := range fofi.Stream(t.Context(), seq(0), work) {
		t.Errorf("Stream(empty) yielded (%v, %v), want nothing", v, err)
	}
	out, err := fofi.Map(t.Context(), []int(nil), work)
	if err != nil || out == nil || len(out) != 0 {
		t.Errorf("Map(nil) = %v, %v, want an empty slice and nil", out, err)
	}
}

func TestStreamRangedTwiceRunsTwice(t *testing.T) {
	var pulls atomic.Int64
	inputs := func(yield func(int) bool) {
		pulls.Add(1)
		for i := range 10 {
			if !yield(i) {
				return
			}
		}
	}
	s := fofi.Stream(t.Context(), inputs, func(_ context.Context, x int) (int, error) { return x, nil }, fofi.WithOrdered())
	for range 2 {
		if got := slices.Collect(func(yield func(int) bool) {
			for v, err := range s {
				if err != nil || !yield(v) {
					return
				}
			}
		}); !slices.Equal(got, slices.Collect(seq(10))) {
			t.Fatalf("Stream range = %v, want 0..9", got)
		}
	}
	if p := pulls.Load(); p != 2 {
		t.Fatalf("inputs ranged %d times, want 2 (one fresh run per range)", p)
	}
}

func TestStreamEarlyExit(t *testing.T) {
	exits := map[string]func(t *testing.T, s iter.Seq2[int, error]){
		"break": func(t *testing.T, s iter.Seq2[int, error]) {
			for v := range s {
				if v >= 0 {
					break
				}
			}
		},
		"return": func(t *testing.T, s iter.Seq2[int, error]) {
			func() {
				for range s {
					return
				}
			}()
		},
		"panic": func(t *testing.T, s iter.Seq2[int, error]) {
			defer func() {
				if r := recover(); r != "loop body" {
					t.Errorf("recovered %v, want the loop body's own panic value", r)
				}
			}()
			for range s {
				panic("loop body")
			}
		},
		"goexit": func(t *testing.T, s iter.Seq2[int, error]) {
			done := make(chan bool)
			go func() {
				returned := false
				defer func() { done <- returned }()
				for range s {
					runtime.Goexit()
				}
				returned = true
			}()
			if <-done {
				t.Error("the ranging goroutine went on after runtime.Goexit in the loop body")
			}
		},
	}
	for name, exit := range exits {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g gauge
				var calls atomic.Int64
				returned := false
				s := fofi.Stream(t.Context(), seq(1000), func(ctx context.Context, x int) (int, error) {
					if returned {
						t.Error("work called after the loop was left")
					}
					calls.Add(1)
					g.enter()
					defer g.leave()
					select {
					case <-ctx.Done():
						return 0, ctx.Err()
					case <-time.After(time.Duration(x%3) * time.Second):
						return x, nil
					}
				}, fofi.WithConcurrency(4))
				exit(t, s)
				returned = true
				if c := g.cur.Load(); c != 0 {
					t.Errorf("%d work calls still running after the loop was left by %s", c, name)
				}
				if c := calls.Load(); c >= 1000 {
					t.Errorf("all %d inputs were processed: leaving the loop did not stop the run", c)
				}
			})
		})
	}
}

func TestWorkPanic(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g gauge
				defer func() {
					r := recover()
					pe, ok := r.(*fofi.PanicError)
					if !ok {
						t.Fatalf("%s panicked with %#v, want *fofi.PanicError", e.name, r)
					}
					if pe.Value != "kaboom" {
						t.Errorf("PanicError.Value = %v, want kaboom", pe.Value)
					}
					if !bytes.Contains(pe.Stack, []byte("panickingWork")) {
						t.Errorf("PanicError.Stack does not show the worker's frames:\n%s", pe.Stack)
					}
					if msg := pe.Error(); !bytes.Contains([]byte(msg), []byte("kaboom")) || !bytes.Contains([]byte(msg), []byte("panickingWork")) {
						t.Errorf("PanicError.Error() = %q, want the value and the stack", msg)
					}
					if c := g.cur.Load(); c != 0 {
						t.Errorf("%d work calls still running when the panic reached the caller", c)
					}
				}()
				e.run(t.Context(), 100, func(ctx context.Context, x int) (int, error) {
					g.enter()
					defer g.leave()
					return panickingWork(ctx, x)
				}, fofi.WithConcurrency(4))
				t.Errorf("%s returned, want a panic", e.name)
			})
		})
	}
}

func panickingWork(ctx context.Context, x int) (int, error) {
	if x == 7 {
		time.Sleep(time.Second)
		panic("kaboom")
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Hour):
		return x, nil
	}
}

func TestPanicErrorUnwrap(t *testing.T) {
	base := errors.New("base")
	pe := &fofi.PanicError{Value: fmt.Errorf("wrapped: %w", base)}
	if !errors.Is(pe, base) {
		t.Errorf("errors.Is(PanicError{error value}, base) = false, want true")
	}
	if (&fofi.PanicError{Value: 42}).Unwrap() != nil {
		t.Errorf("PanicError{42}.Unwrap() != nil")
	}
	te := &fofi.TaskError{Index: 3, Err: base}
	if te.Error() != "fofi: input 3: base" || !errors.Is(te, base) {
		t.Errorf("TaskError = %q, want \"fofi: input 3: base\" wrapping base", te.Error())
	}
}

func TestWorkGoexit(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var g gauge
				done := make(chan bool)
				go func() {
					returned := false
					defer func() { done <- returned }()
					e.run(t.Context(), 100, func(ctx context.Context, x int) (int, error) {
						g.enter()
						defer g.leave()
						if x == 5 {
							runtime.Goexit() // what t.FailNow does in a helper
						}
						select {
						case <-ctx.Done():
							return 0, ctx.Err()
						case <-time.After(time.Second):
							return x, nil
						}
					}, fofi.WithConcurrency(3))
					returned = true
				}()
				if <-done {
					t.Errorf("%s returned normally after runtime.Goexit in work, want Goexit on the caller", e.name)
				}
				if c := g.cur.Load(); c != 0 {
					t.Errorf("%d work calls still running after the caller exited", c)
				}
			})
		})
	}
}

func TestConsumePanicWaitsForWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		defer func() {
			if r := recover(); r != "consume" {
				t.Fatalf("recovered %v, want consume's own panic value", r)
			}
			if c := g.cur.Load(); c != 0 {
				t.Errorf("%d work calls still running when consume's panic left Run", c)
			}
		}()
		fofi.Run(t.Context(), seq(100), func(ctx context.Context, x int) (int, error) {
			g.enter()
			defer g.leave()
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(x%4) * time.Second):
			}
			return x, nil
		}, func(int) error { panic("consume") }, fofi.WithConcurrency(4))
	})
}

func TestIteratorPanicAndGoexit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g gauge
		work := func(ctx context.Context, x int) (int, error) {
			g.enter()
			defer g.leave()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return x, nil
		}
		panicky := func(yield func(int) bool) {
			for i := range 10 {
				if !yield(i) {
					return
				}
			}
			panic("iterator")
		}
		func() {
			defer func() {
				pe, ok := recover().(*fofi.PanicError)
				if !ok || pe.Value != "iterator" {
					t.Fatalf("recovered %v, want *PanicError with the iterator's value", pe)
				}
				if c := g.cur.Load(); c != 0 {
					t.Errorf("%d work calls still running when the iterator's panic reached the caller", c)
				}
			}()
			fofi.Run(t.Context(), panicky, work, func(int) error { return nil }, fofi.WithConcurrency(3))
		}()

		done := make(chan bool)
		go func() {
			returned := false
			defer func() { done <- returned }()
			fofi.Run(t.Context(), func(yield func(int) bool) {
				yield(1)
				runtime.Goexit()
			}, work, func(int) error { return nil })
			returned = true
		}()
		if <-done {
			t.Error("Run returned normally after runtime.Goexit in the iterator")
		}
	})
}

func TestIteratorIgnoringFalse(t *testing.T) {
	// An iterator that keeps calling yield after it returned false gets
	// false again, and nothing is processed after the stop.
	var afterStop atomic.Int64
	stop := errors.New("stop")
	err := fofi.Run(t.Context(), func(yield func(int) bool) {
		stopped := false
		for i := range 100 {
			if stopped {
				afterStop.Add(1)
			}
			if !yield(i) {
				stopped = true
			}
		}
	}, func(_ context.Context, x int) (int, error) { return x, nil }, func(int) error { return stop }, fofi.WithConcurrency(1), fofi.WithBuffer(0))
	if err != stop {
		t.Fatalf("Run = %v, want %v", err, stop)
	}
}

func TestBadConfiguration(t *testing.T) {
	type badLimiter struct{ fofi.Limiter }
	var nilLimiter *struct{ badLimiter }
	cases := []struct {
		name string
		opts []fofi.Option
		ctx  context.Context
		want string
	}{
		{"concurrency 0", []fofi.Option{fofi.WithConcurrency(0)}, t.Context(), "fofi: WithConcurrency(0): concurrency must be at least 1"},
		{"concurrency -1", []fofi.Option{fofi.WithConcurrency(-1)}, t.Context(), "fofi: WithConcurrency(-1): concurrency must be at least 1"},
		{"concurrency 1<<30", []fofi.Option{fofi.WithConcurrency(1 << 30)}, t.Context(), "fofi: WithConcurrency(1073741824): concurrency must be at most"},
		{"buffer -1", []fofi.Option{fofi.WithBuffer(-1)}, t.Context(), "fofi: WithBuffer(-1): buffer must be at least 0"},
		{"buffer 1<<30", []fofi.Option{fofi.WithBuffer(1 << 30)}, t.Context(), "fofi: WithBuffer(1073741824): buffer must be at most"},
		{"timeout 0", []fofi.Option{fofi.WithTaskTimeout(0)}, t.Context(), "fofi: WithTaskTimeout(0s): timeout must be positive"},
		{"timeout -1s", []fofi.Option{fofi.WithTaskTimeout(-time.Second)}, t.Context(), "fofi: WithTaskTimeout(-1s): timeout must be positive"},
		{"nil limiter", []fofi.Option{fofi.WithLimiter(nil)}, t.Context(), "fofi: WithLimiter(nil): limiter must not be nil"},
		{"typed nil limiter", []fofi.Option{fofi.WithLimiter(nilLimiter)}, t.Context(), "limiter must not be nil"},
		{"nil context", nil, nil, "nil context"},
	}
	work := func(context.Context, int) (int, error) { t.Error("work called"); return 0, nil }
	consume := func(int) error { t.Error("consume called"); return nil }
	check := func(t *testing.T, fn string, err error, want string) {
		t.Helper()
		if !errors.Is(err, fofi.ErrInvalidOption) || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("%s = %v, want an ErrInvalidOption saying %q", fn, err, want)
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check(t, "Run", fofi.Run(c.ctx, seq(10), work, consume, c.opts...), c.want)
			n := 0
			for v, err := range fofi.Stream(c.ctx, seq(10), work, c.opts...) {
				n++
				if v != 0 {
					t.Errorf("Stream yielded value %d with the error, want zero", v)
				}
				check(t, "Stream", err, c.want)
			}
			if n != 1 {
				t.Errorf("Stream yielded %d pairs, want the error once", n)
			}
			out, err := fofi.Map(c.ctx, []int{1, 2, 3}, work, c.opts...)
			check(t, "Map", err, c.want)
			if out != nil {
				t.Errorf("Map returned %v with a configuration error, want nil", out)
			}
		})
	}
	t.Run("nil arguments", func(t *testing.T) {
		check(t, "Run(nil work)", fofi.Run[int, int](t.Context(), seq(1), nil, consume), "Run: nil work function")
		check(t, "Run(nil consume)", fofi.Run(t.Context(), seq(1), work, nil), "Run: nil consume function")
		check(t, "Run(nil inputs)", fofi.Run(t.Context(), nil, work, consume), "Run: nil inputs iterator")
		for _, err := range fofi.Stream[int, int](t.Context(), seq(1), nil) {
			check(t, "Stream(nil work)", err, "Stream: nil work function")
		}
		_, err := fofi.Map[int, int](t.Context(), []int{1}, nil)
		check(t, "Map(nil work)", err, "Map: nil work function")
	})
	t.Run("later option overrides", func(t *testing.T) {
		err := fofi.Run(t.Context(), seq(3), func(_ context.Context, x int) (int, error) { return x, nil },
			func(int) error { return nil }, fofi.WithConcurrency(0), fofi.WithConcurrency(2), fofi.Option{})
		if err != nil {
			t.Errorf("Run(WithConcurrency(0), WithConcurrency(2), Option{}) = %v, want nil", err)
		}
	})
}

func TestTaskTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		_, err := fofi.Map(t.Context(), []int{0, 1, 2}, func(ctx context.Context, x int) (int, error) {
			if x != 1 {
				return x, nil
			}
			<-ctx.Done()
			return 0, ctx.Err()
		}, fofi.WithTaskTimeout(250*time.Millisecond))
		var te *fofi.TaskError
		if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Map = %v, want *TaskError{Index: 1} wrapping context.DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 250*time.Millisecond {
			t.Errorf("the call timed out after %v, want 250ms", got)
		}
	})
}

// countingLimiter lets every call through after a fake 100ms, and fails
// for the call after the limit.
type countingLimiter struct {
	waits atomic.Int64
	limit int64
}

func (l *countingLimiter) Wait(ctx context.Context) error {
	if l.waits.Add(1) > l.limit {
		return errors.New("rate exceeded")
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

func TestLimiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &countingLimiter{limit: 1 << 30}
		start := time.Now()
		got, err := fofi.Map(t.Context(), slices.Collect(seq(10)), func(_ context.Context, x int) (int, error) { return x, nil },
			fofi.WithLimiter(l), fofi.WithConcurrency(1))
		if err != nil || len(got) != 10 {
			t.Fatalf("Map = %v, %v", got, err)
		}
		if w := l.waits.Load(); w != 10 {
			t.Errorf("Limiter.Wait called %d times, want once per call: 10", w)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("10 calls paced 100ms apart took %v, want 1s", d)
		}

		l = &countingLimiter{limit: 3}
		err = fofi.Run(t.Context(), seq(10), func(_ context.Context, x int) (int, error) { return x, nil },
			func(int) error { return nil }, fofi.WithLimiter(l), fofi.WithConcurrency(1))
		var te *fofi.TaskError
		if !errors.As(err, &te) || te.Index != 3 || !bytes.Contains([]byte(err.Error()), []byte("rate exceeded")) {
			t.Fatalf("Run = %v, want the limiter's error as *TaskError{Index: 3}", err)
		}
	})
}

func TestNestedRun(t *testing.T) {
	got, err := fofi.Map(t.Context(), []int{1, 2, 3}, func(ctx context.Context, x int) (int, error) {
		sum := 0
		err := fofi.Run(ctx, seq(x*100), func(_ context.Context, y int) (int, error) { return y, nil },
			func(v int) error { sum += v; return nil }, fofi.WithConcurrency(2))
		return sum, err
	}, fofi.WithConcurrency(3))
	if err != nil || !slices.Equal(got, []int{4950, 19900, 44850}) {
		t.Fatalf("nested Map(Run) = %v, %v, want [4950 19900 44850], nil", got, err)
	}
}

func TestLongInputIndexes(t *testing.T) {
	// Task errors carry the input's index even deep into a long, batched
	// run, and under WithContinueOnError every index is reported once.
	const n = 100_000
	var failed []int
	for _, err := range fofi.Stream(t.Context(), seq(n), func(_ context.Context, x int) (string, error) {
		if x%9973 == 0 {
			return "", errors.New(strconv.Itoa(x))
		}
		return "", nil
	}, fofi.WithContinueOnError()) {
		var te *fofi.TaskError
		if errors.As(err, &te) {
			if te.Err.Error() != strconv.Itoa(te.Index) {
				t.Fatalf("TaskError{Index: %d} carries the error of input %s", te.Index, te.Err)
			}
			failed = append(failed, te.Index)
		}
	}
	if len(failed) != 11 {
		t.Fatalf("%d failures reported, want 11", len(failed))
	}
}

func TestMerge(t *testing.T) {
	t.Run("all values, then closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var chans []<-chan int
			for c := range 3 {
				ch := make(chan int)
				go func() {
					defer close(ch)
					for i := range 5 {
						time.Sleep(time.Duration(c+1) * time.Millisecond)
						ch <- c*10 + i
					}
				}()
				chans = append(chans, ch)
			}
			chans = append(chans, nil) // ignored
			var got []int
			for v := range fofi.Merge(t.Context(), chans...) {
				got = append(got, v)
			}
			slices.Sort(got)
			want := []int{0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24}
			if !slices.Equal(got, want) {
				t.Fatalf("Merge delivered %v, want %v", got, want)
			}
		})
	})
	t.Run("no channels", func(t *testing.T) {
		if _, ok := <-fofi.Merge[int](t.Context()); ok {
			t.Fatal("Merge() delivered a value, want a closed channel")
		}
	})
	t.Run("cancel closes and stops", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			never := make(chan int) // never sends, never closes
			busy := make(chan int, 10)
			for i := range 10 {
				busy <- i
			}
			out := fofi.Merge(ctx, never, busy)
			<-out
			cancel()
			synctest.Wait()
			// Nobody reads out, yet every forwarder has given up its
			// send and out is closed: the rest of busy is dropped.
			if v, ok := <-out; ok {
				t.Fatalf("Merge delivered %d after the cancellation, want a closed channel", v)
			}
		})
	})
	t.Run("nothing after ctx is done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Every channel has a value ready and the reader waits, but
			// ctx is done already: Merge must send nothing. Without a
			// check of ctx first, each forwarder's select picks a ready
			// case at random, and one of 64 sends almost surely.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var chans []<-chan int
			for i := range 64 {
				ch := make(chan int, 1)
				ch <- i
				chans = append(chans, ch)
			}
			for v := range fofi.Merge(ctx, chans...) {
				t.Fatalf("Merge delivered %d after ctx was done, want nothing", v)
			}
		})
	})
	t.Run("nil context", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("Merge(nil) did not panic")
			}
		}()
		//lint:ignore SA1012 a nil context is the point of the test
		fofi.Merge[int](nil)
	})
}

func TestRaceManySmallRuns(t *testing.T) {
	// Many short runs at once, each with its own error: a stress test for
	// the end-of-run handshake under -race.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			for j := range 20 {
				n := (i*j)%40 + 1
				fail := j%3 == 0
				got, err := fofi.Map(context.Background(), slices.Collect(seq(n)), func(_ context.Context, x int) (int, error) {
					if fail && x == n-1 {
						return 0, errors.New("last")
					}
					return x, nil
				}, fofi.WithConcurrency(1+j%4))
				if fail != (err != nil) || !fail && len(got) != n {
					t.Errorf("Map(n=%d, fail=%v) = %d results, %v", n, fail, len(got), err)
				}
				sum := 0
				err = fofi.Run(context.Background(), seq(n), func(_ context.Context, x int) (int, error) { return x, nil },
					func(v int) error { sum += v; return nil }, fofi.WithConcurrency(1+j%4), fofi.WithBuffer(j%3))
				if err != nil || sum != n*(n-1)/2 {
					t.Errorf("Run(n=%d) sum = %d, %v, want %d", n, sum, err, n*(n-1)/2)
				}
			}
		})
	}
	wg.Wait()
}

// TestFirstErrorNeverLost repeats a fail-fast run many times: the input's
// error must come back every time, however the stop races with the
// consumer's own stop (a lost error once returned nil here, about one run
// in a thousand).
func TestFirstErrorNeverLost(t *testing.T) {
	failure := errors.New("failure")
	for i := range 3000 {
		failAt := i % 200
		work := func(_ context.Context, x int) (int, error) {
			if x == failAt {
				return 0, failure
			}
			return x, nil
		}
		var err error
		if i%2 == 0 {
			err = fofi.Run(t.Context(), seq(200), work, func(int) error { return nil }, fofi.WithConcurrency(8), fofi.WithBuffer(16))
		} else {
			for _, e := range fofi.Stream(t.Context(), seq(200), work, fofi.WithConcurrency(8), fofi.WithBuffer(16)) {
				if e != nil {
					err = e
				}
			}
		}
		var te *fofi.TaskError
		if !errors.As(err, &te) || te.Index != failAt {
			t.Fatalf("run %d = %v, want *TaskError{Index: %d}", i, err, failAt)
		}
	}
}

// TestNestedRunStoppedByOuter: a run nested in a work call whose outer run
// stops (a break, or another input's error) reports a cancellation, never
// the outer run's reason and never success.
func TestNestedRunStoppedByOuter(t *testing.T) {
	for _, inner := range entries {
		t.Run(inner.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				innerErr := make(chan error, 1)
				work := func(ctx context.Context, x int) (int, error) {
					if x == 1 {
						time.Sleep(time.Second)
						return 0, errors.New("outer failure")
					}
					_, err := inner.run(ctx, 5, func(ctx context.Context, y int) (int, error) {
						<-ctx.Done()
						return 0, ctx.Err()
					})
					innerErr <- err
					return 0, err
				}
				fofi.Map(t.Context(), []int{0, 1}, work, fofi.WithConcurrency(2))
				err := <-innerErr
				if !errors.Is(err, context.Canceled) || strings.Contains(fmt.Sprint(err), "outer failure") {
					t.Errorf("inner %s = %v, want context.Canceled, not the outer run's error", inner.name, err)
				}
			})
		})
	}
}

func TestAlreadyCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	work := func(context.Context, int) (int, error) { t.Error("work called"); return 0, nil }
	for _, e := range entries {
		for _, n := range []int{0, 1, 100} {
			if _, err := e.run(ctx, n, work); !errors.Is(err, context.Canceled) {
				t.Errorf("%s(cancelled ctx, %d inputs) = %v, want context.Canceled", e.name, n, err)
			}
		}
	}
}

// TestInputsNotHeldByBlockedIterator: every input pulled reaches a worker
// while the iterator blocks waiting for the next one. Here the iterator
// waits for the consumer to have seen the first 1000 results, as a crawler
// whose consume feeds its own inputs does; an input held back until the
// next pull would deadlock it.
func TestInputsNotHeldByBlockedIterator(t *testing.T) {
	for _, e := range entries[:2] {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				seen := make(chan struct{})
				var consumed int
				inputs := func(yield func(int) bool) {
					for i := range 1000 {
						if !yield(i) {
							return
						}
					}
					<-seen // blocks until the consumer has all 1000
					yield(1000)
				}
				work := func(_ context.Context, x int) (int, error) { return x, nil }
				count := func() {
					if consumed++; consumed == 1000 {
						close(seen)
					}
				}
				if e.name == "Run" {
					if err := fofi.Run(t.Context(), inputs, work, func(int) error { count(); return nil }); err != nil {
						t.Fatal(err)
					}
				} else {
					for _, err := range fofi.Stream(t.Context(), inputs, work) {
						if err != nil {
							t.Fatal(err)
						}
						count()
					}
				}
				if consumed != 1001 {
					t.Fatalf("consumed %d results, want 1001", consumed)
				}
			})
		})
	}
}

// TestSlowTailSpreads: quick inputs grow batches to hundreds of inputs;
// when the inputs turn slow, a batch gives the rest back and the slow
// calls spread over the workers instead of running one after another.
func TestSlowTailSpreads(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const fast, slow = 5000, 64
				start := time.Now()
				_, err := e.run(t.Context(), fast+slow, func(_ context.Context, x int) (int, error) {
					if x >= fast {
						time.Sleep(10 * time.Millisecond)
					}
					return x, nil
				}, fofi.WithConcurrency(64))
				if err != nil {
					t.Fatal(err)
				}
				// One after another they would take 640ms; spread, a few rounds.
				if d := time.Since(start); d > 100*time.Millisecond {
					t.Errorf("%s took %v of fake time for %d slow calls at concurrency 64, want at most 100ms", e.name, d, slow)
				}
			})
		})
	}
}

// TestStoppedRunKeepsNoInput stops runs early, with inputs pulled and not
// yet claimed, and checks that no input stays reachable afterwards: runs
// reuse each other's input rings, and a ring released with inputs in it
// would keep them alive for as long as it waits for the next run.
func TestStoppedRunKeepsNoInput(t *testing.T) {
	type input struct{ _ [64]byte }
	var created, collected atomic.Int64
	all := make(chan struct{})
	inputs := func(yield func(*input) bool) {
		for range 1000 {
			in := new(input)
			created.Add(1)
			runtime.AddCleanup(in, func(struct{}) {
				if collected.Add(1) == created.Load() {
					close(all)
				}
			}, struct{}{})
			if !yield(in) {
				return
			}
		}
	}
	stop := errors.New("stop")
	// Four runs, as under -race sync.Pool drops a quarter of what it is given.
	for range 4 {
		err := fofi.Run(t.Context(), inputs, func(context.Context, *input) (int, error) { return 0, nil },
			func(int) error { return stop }, fofi.WithConcurrency(1))
		if !errors.Is(err, stop) {
			t.Fatalf("Run = %v, want %v", err, stop)
		}
	}
	// One collection only: a second would also drop the pools' contents.
	runtime.GC()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d of %d inputs still reachable after the runs returned", created.Load()-collected.Load(), created.Load())
	}
}
