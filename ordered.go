package fofi

// This file makes a failure of an ordered run stop it where the loop would
// have stopped. With WithOrdered and without WithContinueOnError, the loop
//
//	for in := range inputs {
//		out, err := work(ctx, in)
//		if err != nil {
//			return err
//		}
//		consume(out)
//	}
//
// fails at the smallest index i whose call fails, having called and
// consumed every input before i. So a failed call does not stop the run:
// it lowers failAt to its index and is recorded in its batch like a
// failure under WithContinueOnError, and
//
//   - no call starts for an input after failAt: a worker cuts its claim
//     there (cut), and the feeder pulls nothing after it;
//   - the inputs before failAt, pulled already since the failed one was
//     pulled after them, are still claimed and called, however late;
//   - the consumer delivers in input order, and the first failure it
//     reaches is the one at the final failAt, since every input before it
//     succeeded: it stops the run with it there (stopAtFailure). Only then
//     is the run's context cancelled, when every call before failAt has
//     returned, which is the latest the calls after it may be cancelled.
//
// A panic, a consume error and the parent's cancellation still stop the
// run at once, as they do the loop.

// failedAt lowers failAt to index, if it is smaller.
func (e *engine[In, Out]) failedAt(index int) {
	i := int64(index)
	for at := e.failAt.Load(); i < at; at = e.failAt.Load() {
		if e.failAt.CompareAndSwap(at, i) {
			return
		}
	}
}

// stopAtFailure returns deliver, stopping the run with the first failure
// delivered instead of passing it on.
func (r *run[In, Out]) stopAtFailure(deliver func(Out, *TaskError) bool) func(Out, *TaskError) bool {
	return func(v Out, te *TaskError) bool {
		if te != nil {
			r.stop(te)
			return false
		}
		return deliver(v, nil)
	}
}

// cut ends the claim of l before offset off, whose call lane.next has just
// started but which is not made: the results below off are written, and
// finished returns off. A thief that stole the tail meanwhile left the end
// at off+1 at most, which cut lowers. Only the lane's worker calls it.
func (l *lane[In, Out]) cut(off int) {
	for {
		w := l.word.Load()
		n, e := unpack(w)
		if e <= off {
			return
		}
		if l.word.CompareAndSwap(w, uint64(n)<<32|uint64(off)) {
			return
		}
	}
}
