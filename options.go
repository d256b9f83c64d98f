package fofi

import (
	"context"
	"reflect"
	"runtime"
	"time"
)

// An Option configures a call of [Run], [Stream] or [Map]. Options are
// applied in order, so a later option overrides an earlier one of the same
// kind; the resulting configuration is validated once, before any goroutine
// starts, and an invalid value makes the call return an error wrapping
// [ErrInvalidOption]. The zero Option does nothing. Options are plain values:
// one Option may be shared by any number of calls and goroutines.
type Option struct {
	apply func(*config)
}

// Limiter paces the start of work calls: Run, Stream and Map call Wait
// before every work call and start the call only when Wait returns nil.
// Wait must return promptly with a non-nil error when ctx is cancelled.
// *rate.Limiter from golang.org/x/time/rate satisfies Limiter.
//
// Wait is called from several goroutines at once, so it must be safe for
// concurrent use. A non-nil error that is not caused by the run stopping is
// reported as a [*TaskError] for the input whose call it would have started,
// its Err wrapping the Limiter's error: "fofi: input 3: limiter: <error>".
type Limiter interface {
	Wait(ctx context.Context) error
}

// Limits that keep a mistyped value from turning into an enormous
// allocation or a run that can never fill its window.
const (
	maxConcurrency = 1 << 24
	maxBuffer      = 1 << 24
	// The default buffer, max(minDefaultBuffer, defaultBufferPerWorker ×
	// concurrency), leaves room for the batches that make short work cheap
	// (see batching in fanout.go) at every concurrency: the window holds
	// concurrency + 2 full batches. It is capped at maxBuffer, which it
	// reaches at concurrency 1<<17, where batches are moot: that many
	// calls in flight are slow ones.
	minDefaultBuffer       = 1024
	defaultBufferPerWorker = 128
)

// config is what the options produce. The zero value is not valid: use
// newConfig.
type config struct {
	concurrency     int
	buffer          int // the default (see newConfig) unless bufferSet
	bufferSet       bool
	ordered         bool
	continueOnError bool

	taskTimeout    time.Duration
	taskTimeoutSet bool

	limiter    Limiter
	limiterSet bool

	pool    *Pool
	poolSet bool

	stats         *Stats
	statsSet      bool
	progressEvery time.Duration
	progress      func(Progress)
	progressSet   bool
}

// WithConcurrency sets the largest number of work calls in flight at once
// to n. The default is runtime.GOMAXPROCS(0), which suits CPU-bound work;
// latency-bound work (network calls, disk, sleeps) usually wants more.
// n must be between 1 and 1<<24. Goroutines are started only as work
// needs them, so a large n costs nothing when the work is quick. The default
// buffer grows with n (see [WithBuffer]).
func WithConcurrency(n int) Option {
	return Option{func(c *config) { c.concurrency = n }}
}

// WithBuffer sets how many finished results may be ready for the consumer
// beyond those the work slots hold. While the consumer is busy, work goes
// on until the window of concurrency + n + 1 results is full; then the
// workers are blocked (backpressure). The default is 128 × concurrency, at
// least 1024 and at most 1<<24, which lets fofi hand short work over in
// batches; a small buffer makes each hand over smaller and so costs speed,
// never correctness. n must be between 0 and 1<<24; WithBuffer(0) hands
// every result straight to the consumer.
//
// With a busy consumer at most concurrency + n + 1 results exist at
// once, and inputs are pulled at most concurrency + n + 2 ahead of consume.
// [Map] has no consumer and ignores the buffer (it still validates n).
func WithBuffer(n int) Option {
	return Option{func(c *config) { c.buffer, c.bufferSet = n, true }}
}

// WithOrdered makes [Run] and [Stream] (and their Seq2 forms) deliver
// results in input order instead of completion order. A slow input holds
// back the results after it: at most concurrency + buffer results wait for
// it, after which no new work starts until it is done. A failure stops the
// run where the loop would have, after every input before it has been
// called and delivered; [ForEach] follows that rule too. See the package
// documentation, sections Ordering and Errors and cancellation. [Map] is
// always ordered and ignores the option.
func WithOrdered() Option {
	return Option{func(c *config) { c.ordered = true }}
}

// WithContinueOnError makes a failed work call not stop the run: every
// other input is still processed and every successful result still reaches
// the consumer. [Run] and [Map] then return errors.Join of the
// [*TaskError]s in input order; [Stream] yields each failure as it comes.
// A consume error, a panic and cancellation still stop the run; the error
// is then the failures so far followed by the reason for the stop, and
// [Map] returns nil outputs, as it does for any run that did not call
// every input.
func WithContinueOnError() Option {
	return Option{func(c *config) { c.continueOnError = true }}
}

// WithTaskTimeout gives every work call a context that expires d after the
// call starts (time spent waiting for a [Limiter] does not count). A call
// that fails because of it returns an error like any other: with
// context.DeadlineExceeded inside a [*TaskError]. d must be positive; by
// default work calls have no timeout of their own.
func WithTaskTimeout(d time.Duration) Option {
	return Option{func(c *config) { c.taskTimeout, c.taskTimeoutSet = d, true }}
}

// WithLimiter makes every work call wait for l before it starts (see
// [Limiter]). The wait happens on the goroutine that will make the call, so
// waiting calls count against the concurrency limit. l must not be nil; by
// default there is no limiter.
func WithLimiter(l Limiter) Option {
	return Option{func(c *config) { c.limiter, c.limiterSet = l, true }}
}

// WithPool makes every work call of the run hold a slot of p while it runs,
// on top of the run's own [WithConcurrency] limit, so that all the runs
// sharing p have at most p.Limit() calls in flight between them (see
// [Pool]). p must come from [NewPool]; by default a run has no pool. A run
// started on a closed pool returns [ErrClosed] at once.
func WithPool(p *Pool) Option {
	return Option{func(c *config) { c.pool, c.poolSet = p, true }}
}

// newConfig applies opts over the defaults and validates the result once.
func newConfig(opts []Option) (config, error) {
	c := config{concurrency: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	switch {
	case c.concurrency < 1:
		return c, configError("WithConcurrency(%d): concurrency must be at least 1", c.concurrency)
	case c.concurrency > maxConcurrency:
		return c, configError("WithConcurrency(%d): concurrency must be at most %d", c.concurrency, maxConcurrency)
	case c.buffer < 0:
		return c, configError("WithBuffer(%d): buffer must be at least 0", c.buffer)
	case c.buffer > maxBuffer:
		return c, configError("WithBuffer(%d): buffer must be at most %d", c.buffer, maxBuffer)
	case c.taskTimeoutSet && c.taskTimeout <= 0:
		return c, configError("WithTaskTimeout(%v): timeout must be positive", c.taskTimeout)
	case c.limiterSet && c.limiter == nil:
		return c, configError("WithLimiter(nil): limiter must not be nil")
	case c.limiterSet && isNil(c.limiter):
		return c, configError("WithLimiter(%T(nil)): limiter must not be nil", c.limiter)
	case c.poolSet && c.pool == nil:
		return c, configError("WithPool(nil): pool must not be nil")
	case c.poolSet && c.pool.limit < 1:
		return c, configError("WithPool(&Pool{}): the zero Pool is not usable, make one with NewPool")
	case c.poolSet && c.pool.isClosed():
		return c, ErrClosed
	case c.statsSet && c.stats == nil:
		return c, configError("WithStats(nil): stats must not be nil")
	case c.progressSet && c.progressEvery <= 0:
		return c, configError("WithProgress(%v, fn): interval must be positive", c.progressEvery)
	case c.progressSet && c.progress == nil:
		return c, configError("WithProgress(%v, nil): fn must not be nil", c.progressEvery)
	}
	if !c.bufferSet {
		c.buffer = min(max(minDefaultBuffer, defaultBufferPerWorker*c.concurrency), maxBuffer)
	}
	return c, nil
}

// isNil reports whether l is nil or a typed nil pointer, which would panic
// on the first Wait.
func isNil(l Limiter) bool {
	if l == nil {
		return true
	}
	switch v := reflect.ValueOf(l); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.Slice:
		return v.IsNil()
	}
	return false
}
