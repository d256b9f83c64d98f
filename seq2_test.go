package fofi_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// TestForEach: ForEach calls work once per input, returns Run's errors
// (a *TaskError naming index and input; errors.Join of them in input
// order with WithContinueOnError), and validates like Run.
func TestForEach(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name    string
		n       int
		fail    []int
		opts    []fofi.Option
		want    []int // the indexes of the TaskErrors in the error, in order
		allRuns bool  // work is called for every input
	}{
		{"empty", 0, nil, nil, nil, true},
		{"no failure", 1000, nil, []fofi.Option{fofi.WithConcurrency(8)}, nil, true},
		{"fail fast", 1000, []int{500}, []fofi.Option{fofi.WithConcurrency(8)}, []int{500}, false},
		{"ordered", 1000, []int{700, 300}, []fofi.Option{fofi.WithConcurrency(8), fofi.WithOrdered()}, []int{300}, false},
		{"continue", 1000, []int{900, 3, 400}, []fofi.Option{fofi.WithConcurrency(8), fofi.WithContinueOnError()}, []int{3, 400, 900}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := make([]atomic.Int32, c.n)
			err := fofi.ForEach(t.Context(), seq(c.n), func(_ context.Context, x int) error {
				calls[x].Add(1)
				if slices.Contains(c.fail, x) {
					return boom
				}
				return nil
			}, c.opts...)
			var got []int
			for _, e := range unjoin(err) {
				var te *fofi.TaskError
				if !errors.As(e, &te) || !errors.Is(e, boom) || te.Input != any(te.Index) {
					t.Fatalf("ForEach = %v, want *TaskErrors wrapping boom, naming their input", err)
				}
				got = append(got, te.Index)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("ForEach = %v: failures at %v, want %v", err, got, c.want)
			}
			for x := range c.n {
				if n := calls[x].Load(); n > 1 || (c.allRuns && n != 1) {
					t.Fatalf("input %d called %d times", x, n)
				}
			}
		})
	}
	t.Run("bad configuration", func(t *testing.T) {
		work := func(context.Context, int) error { t.Error("work called"); return nil }
		for _, c := range []struct {
			name string
			err  error
			want string
		}{
			{"nil work", fofi.ForEach[int](t.Context(), seq(1), nil), "fofi: ForEach: nil work function"},
			{"nil inputs", fofi.ForEach(t.Context(), nil, work), "fofi: ForEach: nil inputs iterator"},
			{"nil context", fofi.ForEach(nilContext(), seq(1), work), "fofi: ForEach: nil context"},
			{"concurrency 0", fofi.ForEach(t.Context(), seq(1), work, fofi.WithConcurrency(0)), "fofi: WithConcurrency(0)"},
		} {
			if !errors.Is(c.err, fofi.ErrInvalidOption) || !strings.Contains(c.err.Error(), c.want) {
				t.Errorf("%s: ForEach = %v, want an ErrInvalidOption saying %q", c.name, c.err, c.want)
			}
		}
	})
}

// TestForEachBounds: at most concurrency calls at once, and inputs pulled
// at most concurrency + buffer + 2 ahead of the calls finished.
func TestForEachBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const c, buf = 4, 8
		var g gauge
		var pulled, finished atomic.Int64
		inputs := func(yield func(int) bool) {
			for i := range 200 {
				if p := pulled.Add(1); p-finished.Load() > c+buf+2 {
					t.Errorf("input %d pulled with %d calls finished, more than %d ahead", p, finished.Load(), c+buf+2)
				}
				if !yield(i) {
					return
				}
			}
		}
		err := fofi.ForEach(t.Context(), inputs, func(context.Context, int) error {
			g.enter()
			defer g.leave()
			time.Sleep(time.Millisecond)
			finished.Add(1)
			return nil
		}, fofi.WithConcurrency(c), fofi.WithBuffer(buf))
		if err != nil {
			t.Fatal(err)
		}
		if m := g.max.Load(); m > c {
			t.Errorf("%d calls in flight, want at most %d", m, c)
		}
	})
}

// nilContext returns a nil context, which vet would not let a literal nil
// be passed as.
func nilContext() context.Context { return nil }

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestTaskErrorInput: every entry point names the input of a failed call.
func TestTaskErrorInput(t *testing.T) {
	words := []string{"fan", "out", "bad", "in"}
	work := func(_ context.Context, w string) (int, error) {
		if w == "bad" {
			return 0, errors.New("bad word")
		}
		return len(w), nil
	}
	errs := map[string]error{}
	errs["Run"] = fofi.Run(t.Context(), slices.Values(words), work, func(int) error { return nil })
	for _, err := range fofi.Stream(t.Context(), slices.Values(words), work) {
		if err != nil {
			errs["Stream"] = err
		}
	}
	_, errs["Map"] = fofi.Map(t.Context(), words, work)
	errs["ForEach"] = fofi.ForEach(t.Context(), slices.Values(words), func(ctx context.Context, w string) error {
		_, err := work(ctx, w)
		return err
	})
	errs["RunSeq2"] = fofi.RunSeq2(t.Context(), withNilErrors(words), work, func(int) error { return nil })
	for _, err := range fofi.StreamSeq2(t.Context(), withNilErrors(words), work) {
		if err != nil {
			errs["StreamSeq2"] = err
		}
	}
	errs["ForEachSeq2"] = fofi.ForEachSeq2(t.Context(), withNilErrors(words), func(ctx context.Context, w string) error {
		_, err := work(ctx, w)
		return err
	})
	for name, err := range errs {
		var te *fofi.TaskError
		if !errors.As(err, &te) || te.Index != 2 || te.Input != any("bad") {
			t.Errorf("%s = %v, want *TaskError{Index: 2, Input: \"bad\"}", name, err)
		}
	}
}

// withNilErrors yields (v, nil) for every v of s.
func withNilErrors[T any](s []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, v := range s {
			if !yield(v, nil) {
				return
			}
		}
	}
}

// TestSeq2InputError: an input error is returned as it is, never as a
// *TaskError, stops the run as a work error would (at once by default;
// after the inputs before it with WithOrdered; not at all with
// WithContinueOnError, where it is joined in its place), and the iterator
// is not asked for another pair after it unless the run goes on.
func TestSeq2InputError(t *testing.T) {
	errRead := errors.New("read failed")
	const n, at = 100, 40
	// inputs yields 0..n-1 with (0, errRead) at index at, and goes on
	// after it if asked; it counts the pairs asked for.
	newInputs := func(asked *atomic.Int64) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for x := range n {
				asked.Add(1)
				var err error
				if x == at {
					err = errRead
				}
				if !yield(x, err) {
					return
				}
			}
		}
	}
	cases := []struct {
		name      string
		opts      []fofi.Option
		wantAsked int64 // pairs asked for; 0: at most at+1 + what was in flight
		wantJoin  bool  // the error is joined with a TaskError
	}{
		{"fail fast", nil, at + 1, false},
		{"ordered", []fofi.Option{fofi.WithOrdered()}, at + 1, false},
		{"continue", []fofi.Option{fofi.WithContinueOnError()}, n, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var asked, limiterWaits atomic.Int64
				calls := make([]atomic.Int32, n)
				work := func(_ context.Context, x int) (int, error) {
					calls[x].Add(1)
					time.Sleep(time.Millisecond)
					if x == 70 {
						return 0, errors.New("work failed")
					}
					return x, nil
				}
				limiter := limiterFunc(func(context.Context) error { limiterWaits.Add(1); return nil })
				opts := append([]fofi.Option{fofi.WithConcurrency(4), fofi.WithLimiter(limiter)}, c.opts...)
				var got []int
				err := fofi.RunSeq2(t.Context(), newInputs(&asked), work, func(v int) error { got = append(got, v); return nil }, opts...)
				var te *fofi.TaskError
				switch {
				case c.wantJoin:
					errs := unjoin(err)
					if len(errs) != 2 || errs[0] != errRead || !errors.As(errs[1], &te) || te.Index != 70 {
						t.Fatalf("RunSeq2 = %v, want errors.Join(read failed, *TaskError{Index: 70})", err)
					}
					if len(got) != n-2 {
						t.Errorf("%d results consumed, want %d: every input but the two failures", len(got), n-2)
					}
				case err != errRead || errors.As(err, &te):
					t.Fatalf("RunSeq2 = %v (%T), want the input error as it is", err, err)
				}
				if a := asked.Load(); a != c.wantAsked {
					t.Errorf("the iterator was asked for %d pairs, want %d", a, c.wantAsked)
				}
				if calls[at].Load() != 0 {
					t.Errorf("work was called for the input error's pair")
				}
				made := int64(0)
				for x := range calls {
					made += int64(calls[x].Load())
				}
				if w := limiterWaits.Load(); w != made {
					t.Errorf("the Limiter was asked %d times for %d work calls: the input error asked it too", w, made)
				}
				if c.name == "ordered" {
					if !slices.Equal(got, slices.Collect(seq(at))) {
						t.Errorf("consumed %v, want 0..%d in order", got, at-1)
					}
				}
			})
		})
	}
}

// TestSeq2InputErrorStopsAtOnce: by default an input error stops the run
// when it is pulled, cancelling the calls in flight, as the first work
// error would.
func TestSeq2InputErrorStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errRead := errors.New("read failed")
		release := make(chan struct{})
		inputs := func(yield func(int, error) bool) {
			for x := range 4 {
				if !yield(x, nil) {
					return
				}
			}
			<-release // the calls for 0..3 have started and block
			yield(0, errRead)
		}
		var cancelled, started atomic.Int64
		start := time.Now()
		for _, err := range fofi.StreamSeq2(t.Context(), inputs, func(ctx context.Context, x int) (int, error) {
			// Once all four have started, whatever their order: inputs
			// start in roughly, not strictly, input order.
			if started.Add(1) == 4 {
				close(release)
			}
			select {
			case <-ctx.Done():
				cancelled.Add(1)
				return 0, ctx.Err()
			case <-time.After(time.Hour):
				return x, nil
			}
		}, fofi.WithConcurrency(4)) {
			if err != errRead {
				t.Fatalf("StreamSeq2 yielded %v, want the input error as it is", err)
			}
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("StreamSeq2 ended after %v, want at once: the calls in flight are cancelled", d)
		}
		if c := cancelled.Load(); c != 4 {
			t.Errorf("%d calls cancelled, want 4", c)
		}
	})
}

// TestSeq2Validation: the Seq2 entry points validate their arguments
// under their own names, before anything runs.
func TestSeq2Validation(t *testing.T) {
	work := func(context.Context, int) (int, error) { t.Error("work called"); return 0, nil }
	consume := func(int) error { t.Error("consume called"); return nil }
	var streamErr error
	for _, err := range fofi.StreamSeq2[int, int](t.Context(), nil, work) {
		streamErr = err
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{fofi.RunSeq2(t.Context(), nil, work, consume), "fofi: RunSeq2: nil inputs iterator"},
		{fofi.RunSeq2[int, int](t.Context(), withNilErrors([]int{1}), nil, consume), "fofi: RunSeq2: nil work function"},
		{fofi.RunSeq2(t.Context(), withNilErrors([]int{1}), work, nil), "fofi: RunSeq2: nil consume function"},
		{streamErr, "fofi: StreamSeq2: nil inputs iterator"},
		{fofi.ForEachSeq2[int](t.Context(), withNilErrors([]int{1}), nil), "fofi: ForEachSeq2: nil work function"},
		{fofi.ForEachSeq2(t.Context(), withNilErrors([]int{1}), func(context.Context, int) error { return nil }, fofi.WithBuffer(-1)), "fofi: WithBuffer(-1)"},
	} {
		if !errors.Is(c.err, fofi.ErrInvalidOption) || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("got %v, want an ErrInvalidOption saying %q", c.err, c.want)
		}
	}
}
