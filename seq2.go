package fofi

import (
	"context"
	"iter"
)

// The entry points in this file take inputs that can fail: an
// iter.Seq2[In, error], the standard library's idiom for an iterator whose
// every step may return an error (a file read line by line, a paginated
// API, or another run's [Stream]). They are named after the iterator type,
// as the standard library names the variants of a function by the
// iterator they use (strings.SplitSeq, reflect.Value.Seq2). A Try[In]
// struct, as destel/rill's channels carry, would need converting at both
// ends; Stream already yields an iter.Seq2[Out, error], so that a Stream
// passed to StreamSeq2 chains two runs with no glue.
//
// Under the hood a pair (v, err) is an input of its own: its call fails
// with err, before any Limiter is asked, so that an input error takes its
// place among the work errors of the same run (see failure). Input indexes
// count every pair, errors included.

// RunSeq2 is [Run] over inputs that can fail: it calls work with v for
// every pair (v, nil) that inputs yields, and stops at a pair (v, err) with
// a non-nil err as the loop
//
//	for in, err := range inputs {
//		if err != nil {
//			return err
//		}
//		out, err := work(ctx, in)
//		...
//	}
//
// does: err is returned as it is, not wrapped in a [*TaskError], since no
// work call failed, and inputs is not asked for another pair. Apart from
// that, an input error counts as the failure of a work call at its place
// in the sequence:
//
//   - by default it stops the run at once, like the first work error;
//   - with [WithOrdered], it stops the run where the loop would: every
//     input before it is called and its result consumed first (see Errors
//     and cancellation), and if an input before it fails, that failure is
//     the run's error;
//   - with [WithContinueOnError], it does not stop the run: inputs is
//     ranged on, and the error is joined with the [*TaskError]s in input
//     order. An iterator that cannot go on after an error should return
//     after yielding it, as iterators of this kind usually do.
//
// TaskError.Index counts every pair inputs yielded, errors included, and
// TaskError.Input is v. Everything else is as for Run.
func RunSeq2[In, Out any](ctx context.Context, inputs iter.Seq2[In, error],
	work func(context.Context, In) (Out, error), consume func(Out) error, opts ...Option) error {
	if consume == nil {
		return configError("RunSeq2: nil consume function")
	}
	r, err := newSeq2Run("RunSeq2", ctx, inputs, work, opts)
	if err != nil {
		return err
	}
	return r.consumeWith(consume)
}

// StreamSeq2 is [Stream] over inputs that can fail, with the input errors
// of [RunSeq2]: an input error is yielded as it is, as the final pair by
// default, or in its place in the sequence with [WithContinueOnError].
// Since Stream returns an iter.Seq2[Out, error], the results of one run,
// failures included, can be the inputs of the next:
//
//	parsed := fofi.Stream(ctx, lines, parse)
//	for v, err := range fofi.StreamSeq2(ctx, parsed, store) { ... }
//
// The first run's errors then stop the second one as input errors, and are
// yielded unchanged (a [*TaskError] of the first run stays one).
func StreamSeq2[In, Out any](ctx context.Context, inputs iter.Seq2[In, error],
	work func(context.Context, In) (Out, error), opts ...Option) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		r, err := newSeq2Run("StreamSeq2", ctx, inputs, work, opts)
		if err != nil {
			var zero Out
			yield(zero, err)
			return
		}
		r.yieldTo(yield)
	}
}

// ForEachSeq2 is [ForEach] over inputs that can fail, with the input
// errors of [RunSeq2].
func ForEachSeq2[In any](ctx context.Context, inputs iter.Seq2[In, error],
	work func(context.Context, In) error, opts ...Option) error {
	r, err := newSeq2Run("ForEachSeq2", ctx, inputs, effect(work), opts)
	if err != nil {
		return err
	}
	return r.do(r.collect)
}

// pair is one step of a Seq2 iterator, as an input of the run.
type pair[In any] struct {
	v   In
	err error
}

// inputError is the error that fails the call of an input that carried
// err. The run reports err itself (see failure).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// failure returns err as the caller sees it: the error an input carried as
// it is, whether it stopped the run on its own or as the failure of that
// input's call; any other error unchanged.
func failure(err error) error {
	switch e := err.(type) {
	case *inputError:
		return e.err
	case *TaskError:
		if ie, ok := e.Err.(*inputError); ok {
			return ie.err
		}
	}
	return err
}

// newSeq2Run validates the arguments and options of an entry point over an
// iter.Seq2 and returns its run, whose inputs are the pairs. It starts
// nothing.
func newSeq2Run[In, Out any](name string, ctx context.Context, inputs iter.Seq2[In, error],
	work func(context.Context, In) (Out, error), opts []Option) (*run[pair[In], Out], error) {
	var (
		r     *run[pair[In], Out]
		seq   iter.Seq[pair[In]]
		calls func(context.Context, pair[In]) (Out, error)
	)
	if inputs != nil {
		seq = func(yield func(pair[In]) bool) {
			for v, err := range inputs {
				if err != nil && !r.cfg.continueOnError && !r.cfg.ordered {
					// Fail-fast: stop now, as a work error stops the
					// run when it returns.
					r.stop(&inputError{err})
					return
				}
				if !yield(pair[In]{v, err}) {
					return
				}
				if err != nil && !r.cfg.continueOnError {
					return // the loop asks for nothing after an error
				}
			}
		}
	}
	if work != nil {
		calls = func(ctx context.Context, p pair[In]) (Out, error) { return work(ctx, p.v) }
	}
	r, err := newRun(name, ctx, seq, calls, opts)
	if err != nil {
		return nil, err
	}
	r.call.carried = func(p pair[In]) error {
		if p.err != nil {
			return &inputError{p.err}
		}
		return nil
	}
	r.call.value = func(p pair[In]) any { return p.v }
	return r, nil
}
