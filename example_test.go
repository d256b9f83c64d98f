package fofi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fofi-go/fofi"
)

// The loop this replaces calls a slow function for every input and handles
// each result in turn. With fofi the calls run concurrently and the results
// still reach one consumer, on the calling goroutine, one at a time.
func Example() {
	ctx := context.Background()
	urls := []string{"a.example", "b.example", "c.example", "d.example"}

	fetch := func(ctx context.Context, url string) (int, error) {
		time.Sleep(10 * time.Millisecond) // a slow network call
		return len(url), nil
	}

	total := 0
	err := fofi.Run(ctx, slices.Values(urls), fetch, func(size int) error {
		total += size // no lock: consume never runs concurrently
		return nil
	}, fofi.WithConcurrency(4))
	fmt.Println(total, err)
	// Output: 36 <nil>
}

// Run passes every result to consume. WithOrdered makes the order of the
// results the order of the inputs.
func ExampleRun() {
	square := func(_ context.Context, x int) (int, error) { return x * x, nil }
	err := fofi.Run(context.Background(), slices.Values([]int{1, 2, 3, 4}), square,
		func(sq int) error {
			fmt.Println(sq)
			return nil
		}, fofi.WithOrdered())
	fmt.Println("err:", err)
	// Output:
	// 1
	// 4
	// 9
	// 16
	// err: <nil>
}

// Stream hands the results to a range loop instead of a callback. Breaking
// out of the loop stops the work that is still running.
func ExampleStream() {
	words := slices.Values([]string{"fan", "out", "fan", "in"})
	upper := func(_ context.Context, s string) (string, error) { return strings.ToUpper(s), nil }
	for w, err := range fofi.Stream(context.Background(), words, upper, fofi.WithOrdered()) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println(w)
	}
	// Output:
	// FAN
	// OUT
	// FAN
	// IN
}

// Map is the shortest form when the inputs are in a slice: it returns the
// results in input order.
func ExampleMap() {
	lengths, err := fofi.Map(context.Background(), []string{"fan", "out", "fan", "in"},
		func(_ context.Context, s string) (int, error) { return len(s), nil })
	fmt.Println(lengths, err)
	// Output: [3 3 3 2] <nil>
}

// Merge fans several channels into one, which is closed when they all are.
func ExampleMerge() {
	gen := func(vals ...int) <-chan int {
		ch := make(chan int)
		go func() {
			defer close(ch)
			for _, v := range vals {
				ch <- v
			}
		}()
		return ch
	}
	var all []int
	for v := range fofi.Merge(context.Background(), gen(1, 2), gen(3), gen(4, 5, 6)) {
		all = append(all, v)
	}
	sort.Ints(all) // the order of arrival varies
	fmt.Println(all)
	// Output: [1 2 3 4 5 6]
}

// WithConcurrency bounds the work calls in flight: here never more than 3,
// whatever the number of inputs.
func ExampleWithConcurrency() {
	var inFlight, most atomic.Int64
	work := func(_ context.Context, x int) (int, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		return x, nil
	}
	out, _ := fofi.Map(context.Background(), make([]int, 30), work, fofi.WithConcurrency(3))
	fmt.Println(len(out), "results, at most", most.Load(), "at once")
	// Output: 30 results, at most 3 at once
}

// WithBuffer bounds how far the producers run ahead of a slow consumer:
// with a buffer of 2 and concurrency 1, the inputs are never more than
// concurrency + buffer + 2 = 5 ahead of consume.
func ExampleWithBuffer() {
	var pulled, consumed, ahead atomic.Int64
	inputs := func(yield func(int) bool) {
		for i := range 100 {
			pulled.Add(1)
			ahead.Store(max(ahead.Load(), pulled.Load()-consumed.Load()))
			if !yield(i) {
				return
			}
		}
	}
	_ = fofi.Run(context.Background(), inputs,
		func(_ context.Context, x int) (int, error) { return x, nil },
		func(int) error {
			time.Sleep(100 * time.Microsecond) // a slow consumer
			consumed.Add(1)
			return nil
		}, fofi.WithConcurrency(1), fofi.WithBuffer(2))
	fmt.Println("consumed", consumed.Load(), "- never more than 5 ahead:", ahead.Load() <= 5)
	// Output: consumed 100 - never more than 5 ahead: true
}

// WithOrdered delivers results in input order even when later inputs
// finish first.
func ExampleWithOrdered() {
	slowFirst := func(_ context.Context, x int) (int, error) {
		time.Sleep(time.Duration(4-x) * 5 * time.Millisecond) // input 0 is the slowest
		return x, nil
	}
	var got []int
	_ = fofi.Run(context.Background(), slices.Values([]int{0, 1, 2, 3}), slowFirst,
		func(x int) error { got = append(got, x); return nil },
		fofi.WithConcurrency(4), fofi.WithOrdered())
	fmt.Println(got)
	// Output: [0 1 2 3]
}

// WithContinueOnError keeps going after a failed input; the error lists
// every failure, in input order, each naming its input.
func ExampleWithContinueOnError() {
	parse := func(_ context.Context, s string) (int, error) {
		var n int
		_, err := fmt.Sscan(s, &n)
		return n, err
	}
	nums, err := fofi.Map(context.Background(), []string{"1", "two", "3", "four"}, parse,
		fofi.WithContinueOnError())
	fmt.Println(nums)
	fmt.Println(err)
	// Output:
	// [1 0 3 0]
	// fofi: input 1: expected integer
	// fofi: input 3: expected integer
}

// WithTaskTimeout gives every call its own deadline; a call that runs out
// of time fails like any other, with context.DeadlineExceeded inside.
func ExampleWithTaskTimeout() {
	work := func(ctx context.Context, d time.Duration) (string, error) {
		select {
		case <-time.After(d):
			return "done in " + d.String(), nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	_, err := fofi.Map(context.Background(), []time.Duration{time.Millisecond, time.Hour}, work,
		fofi.WithTaskTimeout(50*time.Millisecond))
	fmt.Println(err)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output:
	// fofi: input 1: context deadline exceeded
	// true
}

// ticker is a Limiter that lets one call start per tick. A
// *rate.Limiter from golang.org/x/time/rate is a Limiter as it is.
type ticker struct{ c <-chan time.Time }

func (t ticker) Wait(ctx context.Context) error {
	select {
	case <-t.c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WithLimiter paces the start of work calls, for example to respect a
// rate limit of a remote service, independently of the concurrency.
func ExampleWithLimiter() {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	out, err := fofi.Map(context.Background(), []int{1, 2, 3, 4, 5},
		func(_ context.Context, x int) (int, error) { return x * 10, nil },
		fofi.WithLimiter(ticker{tick.C}), fofi.WithConcurrency(5))
	fmt.Println(out, err, time.Since(start) >= 8*time.Millisecond)
	// Output: [10 20 30 40 50] <nil> true
}

// A TaskError names the input whose work call failed; errors.Is and
// errors.As see the work's own error through it.
func ExampleTaskError() {
	errNotFound := errors.New("not found")
	_, err := fofi.Map(context.Background(), []string{"a", "b", "c"},
		func(_ context.Context, key string) (string, error) {
			if key == "b" {
				return "", errNotFound
			}
			return strings.ToUpper(key), nil
		})
	var te *fofi.TaskError
	if errors.As(err, &te) {
		fmt.Println("input", te.Index, "failed:", te.Err)
	}
	fmt.Println(errors.Is(err, errNotFound))
	// Output:
	// input 1 failed: not found
	// true
}

// A panic in work reaches the caller as a *PanicError, on the caller's
// goroutine and only after every other call has returned, so a recover
// there works as it would around a plain loop.
func ExamplePanicError() {
	defer func() {
		pe := recover().(*fofi.PanicError)
		fmt.Println("recovered:", pe.Value)
		fmt.Println("stack shows the worker:", strings.Contains(string(pe.Stack), "ExamplePanicError"))
	}()
	_, _ = fofi.Map(context.Background(), []int{1, 2, 3}, func(_ context.Context, x int) (int, error) {
		if x == 2 {
			panic("bad input 2")
		}
		return x, nil
	})
	// Output:
	// recovered: bad input 2
	// stack shows the worker: true
}

// Every configuration error wraps ErrInvalidOption and names the option
// and the value; nothing runs.
func ExampleWithConcurrency_invalid() {
	err := fofi.Run(context.Background(), slices.Values([]int{1}),
		func(_ context.Context, x int) (int, error) { return x, nil },
		func(int) error { return nil }, fofi.WithConcurrency(0))
	fmt.Println(err)
	fmt.Println(errors.Is(err, fofi.ErrInvalidOption))
	// Output:
	// fofi: WithConcurrency(0): concurrency must be at least 1
	// true
}

// A Pool caps the work calls in flight across every run that shares it:
// here two runs of 20 calls each, at concurrency 8 each, never have more
// than 3 calls in flight between them.
func ExamplePool() {
	pool, err := fofi.NewPool(3)
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	var inFlight, most atomic.Int64
	work := func(_ context.Context, x int) (int, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(time.Millisecond)
		return x, nil
	}
	done := make(chan int)
	for range 2 {
		go func() {
			out, _ := fofi.Map(context.Background(), make([]int, 20), work,
				fofi.WithConcurrency(8), fofi.WithPool(pool))
			done <- len(out)
		}()
	}
	fmt.Println(<-done+<-done, "calls, at most", most.Load(), "at once; limit", pool.Limit())
	// Output: 40 calls, at most 3 at once; limit 3
}

// WithPool shares one limit between the runs of many requests, as a
// server would for a backend it must not overload.
func ExampleWithPool() {
	backend, _ := fofi.NewPool(64) // never more than 64 calls to the backend
	defer backend.Close()

	// handle serves one request: it looks up every key concurrently, at
	// most 16 at a time for this request and 64 for all requests together.
	handle := func(ctx context.Context, keys []string) ([]string, error) {
		return fofi.Map(ctx, keys, func(ctx context.Context, k string) (string, error) {
			return strings.ToUpper(k), nil // a call to the backend
		}, fofi.WithConcurrency(16), fofi.WithPool(backend))
	}
	vals, err := handle(context.Background(), []string{"a", "b", "c"})
	fmt.Println(vals, err)
	// Output: [A B C] <nil>
}

// WithStats tells where the time went. Here the consumer is five times
// slower than the work, and the diagnosis says so.
func ExampleWithStats() {
	var stats fofi.Stats
	work := func(_ context.Context, x int) (int, error) { time.Sleep(time.Millisecond); return x, nil }
	slowConsume := func(int) error { time.Sleep(5 * time.Millisecond); return nil }
	_ = fofi.Run(context.Background(), slices.Values(make([]int, 20)), work, slowConsume,
		fofi.WithConcurrency(4), fofi.WithBuffer(2), fofi.WithStats(&stats))

	fmt.Println(stats.Started, "calls,", stats.Failed, "failed")
	fmt.Println(stats.Verdict)
	// Output:
	// 20 calls, 0 failed
	// consumer-bound
}

// WithProgress reports how far a run has got, on the caller's goroutine,
// at most once per interval and once at the end.
func ExampleWithProgress() {
	var last fofi.Progress
	_, _ = fofi.Map(context.Background(), make([]int, 30),
		func(_ context.Context, x int) (int, error) { time.Sleep(time.Millisecond); return x, nil },
		fofi.WithConcurrency(3),
		fofi.WithProgress(5*time.Millisecond, func(p fofi.Progress) {
			last = p // a real program would print p, or export it as a metric
		}))
	fmt.Printf("done %d, failed %d, in flight %d\n", last.Done, last.Failed, last.InFlight)
	// Output: done 30, failed 0, in flight 0
}

// NewPool makes a pool of slots; a limit below 1 is an error, not a pool
// that never runs anything.
func ExampleNewPool() {
	if _, err := fofi.NewPool(0); err != nil {
		fmt.Println(err)
	}
	p, err := fofi.NewPool(8)
	fmt.Println(p.Limit(), err)
	// Output:
	// fofi: NewPool(0): limit must be at least 1
	// 8 <nil>
}

// Shutdown, called from a work call with the call's context, closes the
// pool and waits for the other calls in flight, but not for the call it is
// called from, which Close would wait for for ever. Here the call for 1
// meets a fatal error of the backend and shuts its pool down: the call for
// 2, in flight beside it, finishes, and no call starts after it.
func ExamplePool_Shutdown() {
	pool, _ := fofi.NewPool(2)
	var calls atomic.Int64
	twoInFlight := make(chan struct{})
	_, err := fofi.Map(context.Background(), []int{1, 2, 3, 4, 5}, func(ctx context.Context, x int) (int, error) {
		calls.Add(1)
		switch x {
		case 1:
			<-twoInFlight
			if err := pool.Shutdown(ctx); err != nil {
				return 0, err
			}
			fmt.Println("pool shut down")
			return 0, nil
		case 2:
			close(twoInFlight)
			time.Sleep(10 * time.Millisecond)
			fmt.Println("call for 2 returned")
		}
		return x, nil
	}, fofi.WithConcurrency(2), fofi.WithPool(pool))
	fmt.Println(err, "after", calls.Load(), "calls")
	// Output:
	// call for 2 returned
	// pool shut down
	// fofi: pool is closed after 2 calls
}

// Close lets the calls in flight finish; runs that start afterwards fail
// at once with ErrClosed.
func ExamplePool_Close() {
	p, _ := fofi.NewPool(2)
	p.Close()
	_, err := fofi.Map(context.Background(), []int{1, 2}, func(_ context.Context, x int) (int, error) { return x, nil },
		fofi.WithPool(p))
	fmt.Println(err, errors.Is(err, fofi.ErrClosed))
	// Output: fofi: pool is closed true
}

// Stats.String reads the figures and names what limited the run; here the
// work is slow and the consumer is starved of results.
func ExampleStats_String() {
	var stats fofi.Stats
	_ = fofi.Run(context.Background(), slices.Values(make([]int, 8)),
		func(_ context.Context, x int) (int, error) { time.Sleep(5 * time.Millisecond); return x, nil },
		func(int) error { return nil },
		fofi.WithConcurrency(2), fofi.WithStats(&stats))
	s := stats.String()
	fmt.Println(s[:strings.Index(s, " in ")]) // the timings vary from run to run
	fmt.Println(stats.Verdict, strings.Contains(s, "Producer-bound: the consumer was starved"))
	// Output:
	// 8 work calls (0 failed)
	// producer-bound true
}

// Stats.Verdict is the diagnosis as a value, for a program to act on: here
// a run whose every call waits for a Limiter, and one that a failure stops
// early, before every input was processed.
func ExampleVerdict() {
	slowStart := limiterFunc(func(ctx context.Context) error {
		time.Sleep(5 * time.Millisecond) // a slow Limiter: every call waits 5ms for it
		return ctx.Err()
	})
	quick := func(_ context.Context, x int) (int, error) { return x, nil }
	var paced, failed fofi.Stats
	_, _ = fofi.Map(context.Background(), make([]int, 10), quick,
		fofi.WithLimiter(slowStart), fofi.WithStats(&paced))
	_, _ = fofi.Map(context.Background(), []int{1, 2, 3}, func(_ context.Context, x int) (int, error) {
		if x == 2 {
			return 0, errors.New("bad input")
		}
		return x, nil
	}, fofi.WithConcurrency(1), fofi.WithStats(&failed))

	for _, s := range []fofi.Stats{paced, failed} {
		switch s.Verdict {
		case fofi.LimiterBound:
			fmt.Println("limiter-bound: more concurrency will not help")
		case fofi.StoppedEarly:
			fmt.Println("stopped early after", s.Started, "calls,", s.Failed, "failed")
		default:
			fmt.Println(s.Verdict)
		}
	}
	// Output:
	// limiter-bound: more concurrency will not help
	// stopped early after 2 calls, 1 failed
}

// Any type with a Wait(ctx) error method is a Limiter: here one that lets
// the first three calls through and refuses the rest.
func ExampleLimiter() {
	var budget atomic.Int64
	budget.Store(3)
	limiter := limiterFunc(func(ctx context.Context) error {
		if budget.Add(-1) < 0 {
			return errors.New("budget exhausted")
		}
		return nil
	})
	_, err := fofi.Map(context.Background(), []int{1, 2, 3, 4}, func(_ context.Context, x int) (int, error) { return x, nil },
		fofi.WithLimiter(limiter), fofi.WithConcurrency(1))
	fmt.Println(err)
	// Output: fofi: input 3: limiter: budget exhausted
}

type limiterFunc func(ctx context.Context) error

func (f limiterFunc) Wait(ctx context.Context) error { return f(ctx) }

// Options are plain values: a set of them can be kept and shared by any
// number of calls. Later options override earlier ones of the same kind.
func ExampleOption() {
	defaults := []fofi.Option{fofi.WithConcurrency(16), fofi.WithOrdered()}
	double := func(_ context.Context, x int) (int, error) { return 2 * x, nil }

	a, _ := fofi.Map(context.Background(), []int{1, 2, 3}, double, defaults...)
	b, _ := fofi.Map(context.Background(), []int{4, 5}, double, append(defaults, fofi.WithConcurrency(1))...)
	fmt.Println(a, b)
	// Output: [2 4 6] [8 10]
}
