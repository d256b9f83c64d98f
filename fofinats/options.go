package fofinats

import (
	"runtime"
	"time"
)

// An Option configures [Provision], [Serve] or [NewClient]. Every function
// accepts every Option and ignores the ones that do not concern it, so that
// a program can keep one list of options for its handler and hand it to all
// three. Options are applied in order, a later one overriding an earlier one
// of the same kind, and validated once, before anything is sent to the
// server; an invalid value is an error wrapping fofi.ErrInvalidOption that
// names the option. The zero Option does nothing.
type Option struct {
	apply func(*config)
}

// Defaults and limits, each with the one thing it decides.
const (
	// defaultAckWait is how long the server waits for a worker's answer
	// before it hands the input to another worker. Workers send heartbeats
	// every third of it, so a long call is never redelivered while its
	// worker lives; the value only bounds how long a dead worker's inputs
	// wait.
	defaultAckWait = 30 * time.Second
	minAckWait     = 100 * time.Millisecond
	// defaultMaxDeliver is how many workers may die on one input before
	// the calls for it fail with ErrMaxDeliveries.
	defaultMaxDeliver = 5
	// defaultServerTimeout bounds every wait on the server: an API request,
	// the acknowledgement of a publish, a lost connection.
	defaultServerTimeout = 5 * time.Second
	// maxWorkerConcurrency keeps a mistyped value from becoming a pull
	// request the server refuses.
	maxWorkerConcurrency = 1 << 14
	maxReplicas          = 5
)

// config is what the options produce; newConfig fills in the defaults.
type config struct {
	workerConcurrency int
	ackWait           time.Duration
	maxDeliver        int
	globalLimit       int // 0: none
	globalLimitSet    bool
	replicas          int
	codec             Codec
	serverTimeout     time.Duration
}

// WithWorkerConcurrency sets how many calls one [Serve] runs at once, its
// slots: a worker asks the server for at most as many inputs as it has free
// slots, so it never holds an input it cannot start. The default is
// runtime.GOMAXPROCS(0) of the worker's machine, which suits CPU-bound work;
// a worker of latency-bound work (network calls, sleeps) wants more. n must
// be between 1 and 16384. [Provision] and [NewClient] ignore it.
func WithWorkerConcurrency(n int) Option {
	return Option{func(c *config) { c.workerConcurrency = n }}
}

// WithAckWait sets how long the server waits for a worker to finish an
// input before it delivers the input to another worker: the time a dead
// worker's inputs wait before they run again. A live worker sends a
// heartbeat every d/3 while a call runs, so calls longer than d are not
// redelivered. The default is 30s; d must be at least 100ms. It is a
// setting of the handler's consumer: [Provision] applies it, [Serve] reads
// it from the server, [NewClient] ignores it.
func WithAckWait(d time.Duration) Option {
	return Option{func(c *config) { c.ackWait = d }}
}

// WithMaxDeliver sets how many times an input is delivered to a worker
// before the server gives up on it: an input whose workers die (or shut
// down before they answer) n times makes its call fail with
// [ErrMaxDeliveries]. A call that returns an error is not retried, whatever
// n. The default is 5; n must be at least 1. [Provision] applies it;
// [Serve] and [NewClient] ignore it.
func WithMaxDeliver(n int) Option {
	return Option{func(c *config) { c.maxDeliver = n }}
}

// WithGlobalLimit bounds the calls in flight for the handler across every
// client and worker to n: the server delivers no new input while n are
// delivered and not yet answered. It is the remote form of fofi.Pool, set on
// the handler's consumer (its MaxAckPending). By default there is no global
// limit: each worker is bounded by [WithWorkerConcurrency] and each run by
// fofi.WithConcurrency. n must be at least 1. [Provision] applies it;
// [Serve] and [NewClient] ignore it.
func WithGlobalLimit(n int) Option {
	return Option{func(c *config) { c.globalLimit, c.globalLimitSet = n, true }}
}

// WithReplicas sets how many servers of a NATS cluster keep the handler's
// streams and consumer. The default is 1, which suits a single server; a
// cluster of three wants 3. n must be between 1 and 5. [Provision] and
// [NewClient] (for the results stream) apply it; [Serve] ignores it.
func WithReplicas(n int) Option {
	return Option{func(c *config) { c.replicas = n }}
}

// WithCodec sets how inputs and results are encoded. The default is
// [JSON]. Clients and workers of a handler must use the same codec. c must
// not be nil. [Provision] ignores it.
func WithCodec(c Codec) Option {
	return Option{func(cfg *config) { cfg.codec = c }}
}

// WithServerTimeout bounds every wait on the NATS server: a request to the
// JetStream API (creating a stream, purging a run), the acknowledgement of a
// published input or result (within d and d/10 more), and, on a client, a
// lost connection: calls
// waiting for results fail once the connection has been down for d. The
// default is 5s; d must be positive. All three functions apply it.
func WithServerTimeout(d time.Duration) Option {
	return Option{func(c *config) { c.serverTimeout = d }}
}

// newConfig applies opts over the defaults and validates the result once.
func newConfig(opts []Option) (config, error) {
	c := config{
		workerConcurrency: runtime.GOMAXPROCS(0),
		ackWait:           defaultAckWait,
		maxDeliver:        defaultMaxDeliver,
		replicas:          1,
		codec:             JSON,
		serverTimeout:     defaultServerTimeout,
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(&c)
		}
	}
	switch {
	case c.workerConcurrency < 1 || c.workerConcurrency > maxWorkerConcurrency:
		return c, optionError("WithWorkerConcurrency(%d): concurrency must be between 1 and %d", c.workerConcurrency, maxWorkerConcurrency)
	case c.ackWait < minAckWait:
		return c, optionError("WithAckWait(%v): ack wait must be at least %v", c.ackWait, minAckWait)
	case c.maxDeliver < 1:
		return c, optionError("WithMaxDeliver(%d): deliveries must be at least 1", c.maxDeliver)
	case c.globalLimitSet && c.globalLimit < 1:
		return c, optionError("WithGlobalLimit(%d): limit must be at least 1", c.globalLimit)
	case c.replicas < 1 || c.replicas > maxReplicas:
		return c, optionError("WithReplicas(%d): replicas must be between 1 and %d", c.replicas, maxReplicas)
	case c.codec == nil:
		return c, optionError("WithCodec(nil): codec must not be nil")
	case c.serverTimeout <= 0:
		return c, optionError("WithServerTimeout(%v): timeout must be positive", c.serverTimeout)
	}
	return c, nil
}
