package fofinats

import (
	"context"
	"fmt"
	"iter"
	"strconv"

	"github.com/fofi-go/fofi"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultConcurrency is the concurrency of a [Run] without
// fofi.WithConcurrency: remote calls spend their time waiting, so a run
// keeps many in flight where fofi's own default (GOMAXPROCS) would keep a
// few.
const DefaultConcurrency = 64

// Remote returns a fofi work function that runs each call on a worker of
// the handler name (see [Serve]) through c: it encodes the input with the
// client's codec, publishes it, waits for the result and decodes it. Give it
// to fofi.Run, fofi.Stream or fofi.Map like any work function; fofi's
// options keep their meaning, fofi.WithConcurrency bounding this run's calls
// in flight. [Run] does that, and also publishes the run's inputs in input
// order and purges them when it stops; Remote publishes an input when its
// call starts, so inputs whose calls start at once reach the stream in any
// order.
//
// A call returns the result, a [*RemoteError] or [*RemotePanicError] from
// the worker, an error wrapping [ErrMaxDeliveries], [ErrNotProvisioned] or
// [ErrUnavailable], or ctx.Err() when ctx ends first. In that last case the
// call is cancelled on the worker running it (its context ends and the
// input is terminated) and its input is removed from the stream; an input
// already on its way to a worker may still run once, its result dropped.
// The function is safe for concurrent use. A nil c makes every call fail.
func Remote[In, Out any](c *Client, name string) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		var zero Out
		if c == nil {
			return zero, optionError("Remote(nil, %q): nil client", name)
		}
		data, err := c.cfg.codec.Marshal(in)
		if err != nil {
			return zero, fmt.Errorf("fofinats: handler %q: encode input %T: %w", name, in, err)
		}
		res, err := c.call(ctx, name, data)
		if err != nil {
			return zero, err
		}
		return decode[Out](c, name, res)
	}
}

// decode decodes the result of a call of handler name with the client's
// codec.
func decode[Out any](c *Client, name string, res []byte) (Out, error) {
	var out Out
	if err := c.cfg.codec.Unmarshal(res, &out); err != nil {
		var zero Out
		return zero, fmt.Errorf("fofinats: handler %q: decode result as %T: %w", name, out, err)
	}
	return out, nil
}

// Run is fofi.Run over remote calls: it calls the handler name for every
// input on the workers, passes each result to consume on the caller's
// goroutine, and keeps every promise of fofi.Run (backpressure, ordering
// with fofi.WithOrdered, fail-fast, stats, progress; see fofi's
// documentation). Its concurrency is [DefaultConcurrency] unless opts set
// one.
//
// Run publishes its inputs in input order, whatever the order in which
// fofi starts the calls: while the workers are busy, the inputs wait in the
// stream and run in the order a loop would run them, so that a failing
// input is not queued behind the inputs that came after it. To keep that
// order, a call publishes the inputs before its own that the run has pulled
// and not yet published; a few inputs may so be queued a moment before
// fofi starts their calls.
//
// When the run stops early (the first error, or ctx), Run cancels its
// calls in flight on the workers and purges its inputs that no worker has
// answered; when it returns, no input of the run is still queued. A work
// error arrives as a *fofi.TaskError wrapping a [*RemoteError] (or
// [*RemotePanicError], or an error wrapping [ErrMaxDeliveries]).
//
// Run checks that the handler exists before it pulls the first input: a
// handler nobody provisioned is an error wrapping [ErrNotProvisioned]. A
// nil c is an error wrapping fofi.ErrInvalidOption.
func Run[In, Out any](ctx context.Context, c *Client, name string, inputs iter.Seq[In],
	consume func(Out) error, opts ...fofi.Option) error {
	switch {
	case c == nil:
		return optionError("Run(%q): nil client", name)
	case ctx == nil:
		return optionError("Run(%q): nil context", name)
	case inputs == nil:
		return optionError("Run(%q): nil inputs", name)
	}
	s, err := c.handler(ctx, name)
	if err != nil {
		return err
	}
	rs := &runState{c: c, id: strconv.FormatUint(c.runs.Add(1), 10), inRun: true, name: name, stream: s}
	pulled := func(yield func(*ticket) bool) {
		for in := range inputs {
			if !yield(rs.pull(in)) {
				return
			}
		}
	}
	work := func(ctx context.Context, t *ticket) (Out, error) {
		var zero Out
		res, err := rs.call(ctx, t)
		if err != nil {
			return zero, err
		}
		return decode[Out](c, name, res)
	}
	opts = append([]fofi.Option{fofi.WithConcurrency(DefaultConcurrency)}, opts...)
	err = fofi.Run(context.WithValue(ctx, runKey{}, rs), pulled, work, consume, opts...)
	if err != nil {
		// Usually done already, by the first call that saw the run stop.
		rs.cancel()
	}
	rs.waitAnswered(c.cfg.serverTimeout)
	c.endRun(rs)
	purgeErr := withTimeout(context.WithoutCancel(ctx), c.cfg, func(ctx context.Context) error {
		return s.Purge(ctx, jetstream.WithPurgeSubject(inPrefix+name+"."+c.id+"."+rs.id))
	})
	if err == nil && purgeErr != nil {
		return fmt.Errorf("fofinats: Run(%q): purge the run's inputs: %w", name, purgeErr)
	}
	return err
}

// runKey is the context key under which Run marks its calls with its
// *runState.
type runKey struct{}

// runOf returns the run a call belongs to: its Run's, or the client's
// run "0" for calls made outside Run.
func runOf(ctx context.Context, c *Client) *runState {
	if rs, ok := ctx.Value(runKey{}).(*runState); ok && rs.c == c {
		return rs
	}
	return c.outside
}
