package fofi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// TestErrorTextReadsOnce checks that an error chain names fofi once, at its
// start, whatever fofi error sits inside a TaskError (a Limiter's, a nested
// run's, a closed pool's), and that errors.Is and errors.As still see every
// link of it.
func TestErrorTextReadsOnce(t *testing.T) {
	errBudget := errors.New("budget exhausted")
	errBoom := errors.New("boom")
	closed, _ := fofi.NewPool(1)
	closed.Close()
	cases := []struct {
		name   string
		work   func(context.Context, int) (int, error)
		opts   func() []fofi.Option
		want   string
		target error
	}{
		{"limiter",
			func(_ context.Context, x int) (int, error) { return x, nil },
			func() []fofi.Option {
				var budget atomic.Int64
				budget.Store(3)
				return []fofi.Option{fofi.WithConcurrency(1), fofi.WithLimiter(limiterFunc(func(context.Context) error {
					if budget.Add(-1) < 0 {
						return errBudget
					}
					return nil
				}))}
			},
			"fofi: input 3: limiter: budget exhausted", errBudget},
		{"nested run",
			func(ctx context.Context, x int) (int, error) {
				if x != 3 {
					return x, nil
				}
				_, err := fofi.Map(ctx, []int{0, 1, 2}, func(_ context.Context, y int) (int, error) {
					if y == 2 {
						return 0, errBoom
					}
					return y, nil
				}, fofi.WithConcurrency(1))
				return 0, err
			},
			func() []fofi.Option { return []fofi.Option{fofi.WithConcurrency(1)} },
			"fofi: input 3: input 2: boom", errBoom},
		{"closed pool in work",
			func(ctx context.Context, x int) (int, error) {
				if x != 3 {
					return x, nil
				}
				_, err := fofi.Map(ctx, []int{0}, func(_ context.Context, y int) (int, error) { return y, nil },
					fofi.WithPool(closed))
				return 0, err
			},
			func() []fofi.Option { return []fofi.Option{fofi.WithConcurrency(1)} },
			"fofi: input 3: pool is closed", fofi.ErrClosed},
	}
	for _, e := range entries {
		for _, c := range cases {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				_, err := e.run(t.Context(), 10, c.work, c.opts()...)
				if err == nil || err.Error() != c.want {
					t.Fatalf("%s(...) = %v, want %q", e.name, err, c.want)
				}
				if n := strings.Count(err.Error(), "fofi: "); n != 1 {
					t.Errorf("%s(...) = %q names fofi %d times, want once", e.name, err, n)
				}
				var te *fofi.TaskError
				if !errors.Is(err, c.target) || !errors.As(err, &te) || te.Index != 3 {
					t.Errorf("%s(...) = %v: errors.Is(%v) = %v, errors.As TaskError = %+v, want true and input 3",
						e.name, err, c.target, errors.Is(err, c.target), te)
				}
			})
		}
	}
}

// TestTaskErrorText checks TaskError.Error on values built by hand: the
// prefix of an inner fofi error is not repeated, any other text is kept.
func TestTaskErrorText(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("base"), "fofi: input 3: base"},
		{&fofi.TaskError{Index: 1, Err: errors.New("base")}, "fofi: input 3: input 1: base"},
		{fofi.ErrClosed, "fofi: input 3: pool is closed"},
		{errors.New("fofinats: failfast"), "fofi: input 3: fofinats: failfast"},
		{errors.New(""), "fofi: input 3: "},
	} {
		te := &fofi.TaskError{Index: 3, Err: c.err}
		if got := te.Error(); got != c.want || !errors.Is(te, c.err) {
			t.Errorf("TaskError{3, %q}.Error() = %q, want %q wrapping it", c.err, got, c.want)
		}
	}
}

// TestMapContinueOnErrorStopped checks that Map with WithContinueOnError
// returns no outputs when the run stops before every input was called,
// as it does without a failure: the zeros of the inputs that never ran
// would read as results. The error keeps the failures seen before the
// stop, in input order, then the reason for the stop.
func TestMapContinueOnErrorStopped(t *testing.T) {
	errBad := errors.New("bad")
	for _, failAt := range []int{-1, 10} {
		t.Run(fmt.Sprintf("failure at %d", failAt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				time.AfterFunc(50*time.Millisecond+time.Microsecond, cancel) // during the call of input 50
				work := func(ctx context.Context, x int) (int, error) {
					select {
					case <-time.After(time.Millisecond):
					case <-ctx.Done():
						return 0, ctx.Err()
					}
					if x == failAt {
						return 0, errBad
					}
					return x + 1, nil
				}
				out, err := fofi.Map(ctx, slices.Collect(seq(100)), work, fofi.WithContinueOnError(), fofi.WithConcurrency(1))
				if out != nil || !errors.Is(err, context.Canceled) {
					t.Fatalf("Map(...) = %d outputs, %v; want nil and context.Canceled", len(out), err)
				}
				var te *fofi.TaskError
				if got := errors.As(err, &te); got != (failAt >= 0) || got && (te.Index != failAt || !errors.Is(err, errBad)) {
					t.Errorf("Map(...) error %q, want the failure at input %d in it, if any", err, failAt)
				}
			})
		})
	}
}
