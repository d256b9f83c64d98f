// Package fofi runs a slow function over many inputs concurrently and hands
// the results to one consumer, with bounded concurrency, backpressure and
// clean cancellation: the fan-out / fan-in pattern, without the channels,
// WaitGroups and close-ordering written by hand.
//
// Fan-out: inputs are pulled lazily from an iterator and handed to at most
// [WithConcurrency] work calls at once. Fan-in: each result goes through a
// bounded buffer ([WithBuffer]) to a single consumer, which runs on the
// goroutine that called fofi. A fofi call behaves like the for loop it
// replaces: an error stops it, a panic reaches the caller, cancellation
// stops it promptly, and when it returns nothing it started is still
// running.
//
//	entry point  input        output            ordered?        fails fast?  blocks?
//	Run          iter.Seq     consume callback  WithOrdered     yes (1)      until done
//	Stream       iter.Seq     range loop        WithOrdered     yes (1)      per loop
//	ForEach      iter.Seq     none (effects)    WithOrdered     yes (1)      until done
//	RunSeq2      iter.Seq2    consume callback  WithOrdered     yes (1, 2)   until done
//	StreamSeq2   iter.Seq2    range loop        WithOrdered     yes (1, 2)   per loop
//	ForEachSeq2  iter.Seq2    none (effects)    WithOrdered     yes (1, 2)   until done
//	Map          slice        slice             always          yes (1)      until done
//	Merge        channels     channel           no              no           no
//
// (1) unless [WithContinueOnError]. (2) An iter.Seq2[In, error] carries
// input errors too, which stop the run as work errors do (see [RunSeq2]).
//
// # Concurrency
//
// At most [WithConcurrency] work calls are in flight at once; the default
// is runtime.GOMAXPROCS(0). The calls run on goroutines that fofi starts,
// through an errgroup with SetLimit, as the work needs them: quick work
// runs on a few goroutines however high the limit, slow work gets a
// goroutine per call up to the limit. work may be called from several
// goroutines at once and must be safe for that.
//
// Every input is available to the workers as soon as it is pulled. When
// the work is quick (well under 100µs a call), a worker claims a run of
// consecutive inputs at once, up to a few hundred, sized so that the run
// takes about 100µs, and hands their results over together, which is what
// makes fofi cheap per item; slow work is claimed one input at a time. Work
// of a few microseconds a call, which is CPU work or fofi's own overhead,
// never gets more goroutines than processors.
//
// fofi is work-conserving, whatever the calls do: while fewer than
// [WithConcurrency] calls of a run are in flight, an input that has been
// pulled and waits, in the queue or in the unstarted part of a worker's
// claim, gets a call promptly; and a finished result becomes deliverable
// to the consumer promptly, even while the next call on its worker blocks.
// (Exceptions, by design: the window of [WithOrdered] is full, the
// [Limiter] makes the calls wait, or the run's [Pool] has no slot it may
// use.) The workers' claims are sampled every 200µs while a run has any at
// risk, much as the Go runtime's sysmon retakes a processor whose goroutine
// blocks in a system call: by the workers themselves, between claims,
// while calls return, and by a watcher goroutine when they stop returning.
// A claim that has not started a call for a whole period gives its
// unstarted inputs to other workers, one input each, and its finished
// results to the consumer. Promptly means within 500µs (two periods and
// the length of a claim of quick work) in a testing/synctest bubble, where
// the bound is exact. In real time add the time the watcher takes to wake
// and be scheduled: on Linux its timer is a timerfd that the runtime's
// netpoller wakes it for on time even while every processor is idle (a
// runtime timer under a millisecond would fire about a millisecond late
// then), and elsewhere the runtime's timers are that fine already.
// Measured here (BenchmarkStall, 2 quiet cores): an input claimed behind a
// call that blocks starts within 0.4ms at the median and 0.9ms at the 99th
// percentile; on a loaded machine the watcher also waits for a processor,
// like any goroutine. The watcher
// sleeps when nothing is at risk, so a run whose calls all wait for ever is
// still reported as a deadlock in a bubble.
//
// So calls may wait for each other as they may in a loop run by c
// goroutines: c calls that meet (a barrier) all run, a call may wait for
// consume to have received an earlier result, and a permit taken in work
// and given back in consume cannot pile up in results held back. One
// difference remains: inputs start in roughly, not strictly, input order
// (a claim's unstarted tail may start after inputs pulled later), so calls
// that wait for an earlier input can fill all c slots while that input
// waits, where a loop of c goroutines taking inputs in order would not.
// At concurrency 1 inputs start in input order. And an ordered Run or
// Stream that fails fast starts no input after a failed one (see
// [WithOrdered]) without cancelling the calls before it, which it waits
// for: a call before the failure that waits for a call after it waits for
// ever. This is a known bug.
//
// The inputs iterator runs on a goroutine of fofi's and is asked for the
// next input only while the run goes on; but fofi cannot interrupt it
// while it waits for an input. An iterator that can block, over a channel
// for instance, should also watch the context, or the run waits for it to
// yield or return before it can stop.
//
// # Backpressure
//
// The consumer is never flooded and memory does not grow with the input:
// the inputs are pulled at most concurrency + buffer + 2 ahead of the
// results consume has finished, and at most concurrency + buffer + 1
// results exist that consume has not finished. A slow consumer therefore
// slows the producers down, and a 10-million-item input streams in
// constant memory. The buffer defaults to 128 × concurrency, at least 1024
// and at most 1<<24; a smaller buffer costs speed, never correctness.
//
// # Ordering
//
// Results reach the consumer in the order they complete. With
// [WithOrdered], they reach it in input order: a result that completes
// early waits for the ones before it. At most concurrency + buffer results
// wait; when the window is full of them, no new work starts until the
// oldest input completes. [Map] always returns results in input order.
//
// With [WithOrdered], a failure stops the run where the loop would have
// stopped (see Errors and cancellation): the results before the first
// failing input all reach the consumer, in order, and none after it.
//
// # Errors and cancellation
//
// By default the first error stops the run: the first work error, wrapped
// in a [*TaskError] that names the input's index and the input, or the
// first consume error, returned as it is. Stopping cancels the context
// that the work calls receive, starts no new call, waits for the calls in
// flight, and returns the error. Errors that the calls return because of
// that cancellation are not reported. When the parent context is
// cancelled, the run stops the same way and returns an error for which
// errors.Is(err, ctx.Err()) holds, carrying the context's cause if it has
// one.
//
// With [WithOrdered] a failed work call stops the run exactly where the
// loop would have: the run returns the error of the smallest failing index
// i (a failure at a smaller index, seen later, replaces one at a larger
// index), and before it returns every input before i is called, even one
// not started yet when the failure was seen, and its result reaches the
// consumer in order. No call starts for an input after i once a failure at
// or before it is known, and no input after it is pulled; calls after i
// already running are cancelled at the latest once 0..i-1 have been
// delivered, and calls before i never see their context cancelled by the
// failure. A consume error, a panic and the cancellation of the parent
// context still stop the run at once. [ForEach] with WithOrdered follows
// the same rule with no results to deliver. [Map] ignores WithOrdered: its
// first failure stops it at once, and it returns (nil, err).
//
// The entry points over an iter.Seq2[In, error] ([RunSeq2], [StreamSeq2],
// [ForEachSeq2]) treat an input error like the failure of a work call at
// its place in the sequence, but return it as it is, not as a
// [*TaskError]: by default it stops the run when it is pulled; with
// WithOrdered, as the rule above says; with WithContinueOnError, it is
// collected with the work errors.
//
// With [WithContinueOnError], a failed work call (or an input error) does
// not stop the run: every other input is still processed, every successful
// result still reaches the consumer, and the error returned is errors.Join
// of the [*TaskError]s (and input errors) in input order. A consume error
// and cancellation still stop the run; the error then joins the failures
// so far and the reason for the stop, and [Map] returns no outputs.
//
// Results that have not reached the consumer when the run stops are
// dropped: nothing else is ever dropped, and without a stop every
// successful result reaches the consumer exactly once.
//
// Bad configuration (an option out of range, a nil context, function,
// iterator or [Limiter]) is reported before anything starts, as an error
// wrapping [ErrInvalidOption] that names the option and the value.
//
// # Panics
//
// A panic in a work call or in the inputs iterator, which run on
// goroutines of fofi's, stops the run like an error; once every call in
// flight has returned, fofi panics on the caller's goroutine with a
// [*PanicError] that carries the panic value and the stack of the goroutine
// that panicked. A runtime.Goexit there (t.FailNow in a test helper, for
// instance) is never taken for success: after the same cleanup, fofi calls
// runtime.Goexit on the caller's goroutine. A panic or Goexit in consume or
// in the body of a loop over [Stream] happens on the caller's goroutine
// already; it stops the run and propagates once every call has returned.
//
// # Sharing a limit
//
// [WithConcurrency] bounds one run. A [Pool], given to runs with
// [WithPool], bounds all the runs that share it: at most its Limit work
// calls are in flight across all of them, handed out first come, first
// served. A server makes one Pool per backend and passes it to the runs of
// every request. Runs stay isolated: the error, panic or cancellation of
// one stops only that one. A run nested in a work call on the same pool
// borrows the slot of that call while the call runs, through any other
// pools in between, so nested runs on a full pool do not deadlock (see
// [Pool] for the exact rule). [Pool.Shutdown] closes a pool from inside a
// work call.
//
// # Statistics
//
// [WithStats] fills in a [Stats] when the run returns: calls started,
// succeeded, failed and cancelled by the stop, the time spent working,
// consuming, blocked by backpressure and starved of results, waiting for a
// [Limiter] or a [Pool], and the most calls in flight and results ready.
// Its [Verdict] says what limited the run: the consumer, the producers, the
// Limiter or the Pool, or that it stopped early; [Stats.String] explains it.
// [WithProgress] reports progress while the run goes. Without these options
// nothing is measured.
//
// # Goroutine lifetimes
//
// [Run], [ForEach], [Map] and the Seq2 entry points return, and a range
// over [Stream] or [StreamSeq2] ends, only after every goroutine they
// started has exited, whether they finish, fail, are cancelled, or are
// left by a panic, a Goexit or a break. No callback runs
// afterwards. [Merge] is the exception that proves the rule: it returns a
// channel at once, and its goroutines exit when that channel is closed.
package fofi
