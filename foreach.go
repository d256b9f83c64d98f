package fofi

import (
	"context"
	"iter"
)

// ForEach calls work for every input on up to [WithConcurrency]
// goroutines, for work done only for its effect: it is [Run] without
// results and without a consumer, the concurrent form of
//
//	for in := range inputs {
//		if err := work(ctx, in); err != nil {
//			return err
//		}
//	}
//
// ForEach returns when every input has been processed or the run stopped,
// and in both cases only after every work call has returned and every
// goroutine it started has exited. It shares Run's engine, bounds and
// options: inputs is ranged over once, lazily, on one goroutine of
// ForEach's, at most concurrency + buffer + 2 inputs ahead of the calls
// that have finished (see Backpressure).
//
// By default the first work error stops the run and is returned as a
// [*TaskError]; with [WithOrdered], that is the error of the smallest
// failing input, and every input before it is called first, as the loop
// would (see Errors and cancellation). With [WithContinueOnError], ForEach
// calls work for every input and returns errors.Join of the [*TaskError]s
// in input order. Cancelling ctx stops the run, and ForEach returns an
// error for which errors.Is(err, ctx.Err()) holds. A panic or
// runtime.Goexit in work or in inputs is replayed on the caller's goroutine
// (see Panics).
//
// ForEach returns nil for an empty input without calling work. A nil ctx,
// inputs or work, or an invalid option, makes it return an error wrapping
// [ErrInvalidOption] before it calls anything.
func ForEach[In any](ctx context.Context, inputs iter.Seq[In],
	work func(context.Context, In) error, opts ...Option) error {
	r, err := newRun("ForEach", ctx, inputs, effect(work), opts)
	if err != nil {
		return err
	}
	return r.do(r.collect)
}

// effect returns work as a work function with an empty result, or nil for
// a nil work, so that newRun reports it in its place among the arguments.
// An empty result costs nothing to hand over: a batch's results take no
// memory.
func effect[In any](work func(context.Context, In) error) func(context.Context, In) (struct{}, error) {
	if work == nil {
		return nil
	}
	return func(ctx context.Context, in In) (struct{}, error) {
		return struct{}{}, work(ctx, in)
	}
}

// collect is the consumer of ForEach: it keeps the failures, which only
// WithContinueOnError delivers, and has nothing else to do.
func (r *run[In, Out]) collect(_ Out, te *TaskError) bool {
	if te != nil {
		r.taskErrs = append(r.taskErrs, te)
	}
	return true
}
