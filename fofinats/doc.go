// Package fofinats runs fofi's fan-out across many machines: the work
// function of a fofi run executes on worker processes that pull their
// inputs from a NATS JetStream server, while the caller keeps everything
// else fofi does (backpressure, ordering, fail-fast, stats, progress).
//
// Three calls make a remote fan-out:
//
//	fofinats.Provision(ctx, js, "resize")                  // once: the handler's stream and consumer
//	fofinats.Serve(ctx, js, "resize", resize)              // on each worker machine, until ctx ends
//	fofinats.Run(ctx, client, "resize", images, save)      // on the caller: fofi.Run over the workers
//
// [Remote] turns a [Client] and a handler name into an ordinary fofi work
// function, for fofi.Stream or fofi.Map; [Run] is fofi.Run over the same
// calls, plus input order in the stream and the clean-up of a run that
// stops early.
//
// # Flow
//
// A call publishes its input to the handler's work-queue stream (one per
// handler, FOFI_IN_<name>). Workers pull inputs from the handler's durable
// consumer, at most as many as they have free slots, run the work function,
// and publish the result, with the call's id as message id, to the results
// stream (FOFI_OUT, in memory), on the subject of the client that made the
// call. Once the server has stored the result, the worker acknowledges the
// input, which removes it. The client receives its results on a consumer of its
// own, hands each to the call waiting for it, and fofi hands it to consume.
//
// # Order
//
// The handler's stream hands inputs out in the order it stored them. [Run]
// publishes its inputs in input order, whatever order fofi starts their
// calls in, so that while the workers are busy the inputs run in the order
// a loop would run them and a failing input is not queued behind the
// inputs after it. To do so a call publishes, before its own, the inputs
// the run has pulled and not yet published: an input may be queued a
// moment before fofi starts its call, so a run can have slightly more
// inputs in the stream than its concurrency. [Remote] publishes an input
// when its call starts: calls started at once reach the stream in any
// order. Results reach consume in completion order, or in input order with
// fofi.WithOrdered.
//
// # Delivery
//
// Execution is at least once: an input whose worker dies, loses its
// connection for longer than [WithAckWait], or stops before it answers,
// runs again on another worker; so does an input whose worker died between
// storing the result and acknowledging the input. Work functions must
// therefore be idempotent. Delivery to consume is exactly once: a result
// stored twice is stored once (message ids) or dropped by the client (call
// ids), and a result is stored before its input is acknowledged, so none is
// lost. An input that was delivered [WithMaxDeliver] times without an
// answer (a poison input that crashes its workers) makes its call fail with
// [ErrMaxDeliveries].
//
// # Backpressure
//
// fofi.WithConcurrency bounds a run's calls in flight (inputs published
// and not yet answered, give or take the few [Run] publishes ahead of their
// calls, see Order); [DefaultConcurrency] is Run's default. A worker
// asks the server for at most as many inputs as it has free slots
// ([WithWorkerConcurrency]), in batches, so an input waits in the stream,
// where any worker can take it, rather than behind a busy worker.
// [WithGlobalLimit] bounds the calls in flight for a handler across every
// client and worker: the remote form of fofi.Pool. Inputs and results are
// published asynchronously: no call waits for a round trip of its own
// before the next starts.
//
// # Errors and cancellation
//
// A work error returns to the caller as a [*RemoteError] (inside fofi's
// *fofi.TaskError, which names the input), and by default stops the run,
// as in fofi. When a run stops (the first error, or ctx), its calls in
// flight are cancelled on the workers (their context ends, and their
// inputs are terminated, not retried) and its inputs not yet taken are
// purged: when [Run] returns, no input of the run is still queued. A call
// of [Remote] outside Run whose context ends is cancelled the same way and
// removes its own input.
//
// Failures of the system itself are errors, never hangs: an unknown
// handler wraps [ErrNotProvisioned]; an input the codec cannot encode, or a
// result it cannot decode, is an error naming the type; a server that does
// not answer within [WithServerTimeout] (5s by default), or a connection
// that stays down for that long while calls wait, wraps [ErrUnavailable].
// Configuration errors wrap fofi.ErrInvalidOption and name the option.
//
// # Panics
//
// A panic in a work function is recovered on the worker, which goes on
// serving, and reaches the caller as a [*RemotePanicError] with the value
// and the worker's stack. Unlike fofi, which replays a panic on the
// caller's goroutine, fofinats reports it as an error: the panic happened
// in another process, and the caller's process has no reason to crash.
//
// # Shutdown
//
// [Serve] returns when its context ends: it hands back (Nak) the inputs it
// has not started, so that other workers run them at once, and cancels the
// context of its calls in flight; a call that then returns an error is
// handed back, one that returns a result has it delivered. It returns
// within about 700ms when the work functions honour their context.
//
// # Goroutine lifetimes
//
// Run returns, as fofi.Run does, once every call has returned. Serve
// returns once every goroutine it started has exited. A [Client] runs a
// few goroutines of its own (its results subscription and a connection
// watchdog) until [Client.Close].
package fofinats
