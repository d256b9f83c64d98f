package fofi

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Stats tells where the time of a run went. Pass a *Stats with
// [WithStats]; it is filled in when the run returns, on every path:
// success, error, cancellation (a context cancelled before the run started
// included), panic and Goexit, an empty input, and a [WithProgress] function
// that panics. Only a configuration error, which starts nothing, leaves it
// untouched. Durations summed over goroutines (Work, Blocked, Limited,
// PoolWait) can exceed Wall. Read [Stats.String] for the figures in words
// and a diagnosis, or Verdict for the diagnosis alone.
//
// Stats and its String use one word per kind of wait: work calls wait for
// a [Limiter] or a [Pool]; workers are blocked when the run's window is
// full (backpressure); the consumer is starved when no result is ready;
// a result is ready from the moment a worker hands it over until the
// consumer takes it. The window holds concurrency + buffer + 1 results
// (see Backpressure in the package documentation), which is why more
// results than the buffer can be ready at once.
//
// Quick work is measured a batch at a time (see Concurrency in the package
// documentation), so Work includes the few nanoseconds per call that fofi
// spends around each call.
type Stats struct {
	// Started counts the work calls started: Succeeded + Failed +
	// Cancelled. When work panics or calls runtime.Goexit, the calls of
	// that worker's batch (quick calls are counted a batch at a time) are
	// counted in none of them.
	Started   int64
	Succeeded int64 // work calls that returned a nil error
	// Failed counts the work calls whose error (or whose Limiter's) was
	// reported: the one that stopped the run, or each of them with
	// WithContinueOnError.
	Failed int64
	// Cancelled counts the work calls that returned an error after the
	// run had stopped (by an error, a cancellation, a panic or a consumer
	// that left): the stop caused those errors, which are not reported.
	Cancelled int64

	Wall    time.Duration // the whole run, from the call to its return
	Work    time.Duration // summed time inside work calls
	Consume time.Duration // time inside consume, or in the body of a loop over Stream

	// Blocked is the time, summed over the workers, that workers were
	// blocked because the run's window was full: the consumer had not yet
	// taken the results, and no more inputs could be pulled
	// (backpressure). Starved is the time the consumer was starved: no
	// result was ready for it, the producers were the bottleneck. Map has
	// no consumer, so neither.
	Blocked time.Duration
	Starved time.Duration

	Limited  time.Duration // summed time work calls waited for the Limiter
	PoolWait time.Duration // summed time workers waited for a slot of the Pool

	MaxInFlight int // the most work calls in flight at once
	// MaxReady is the most results ready for the consumer at once: handed
	// over by the workers and not yet taken. It is at most concurrency +
	// buffer + 1, the run's window, and can exceed Buffer.
	MaxReady int

	Concurrency int // the run's WithConcurrency
	Buffer      int // the run's WithBuffer, or its default

	// Verdict is what limited the run, or [StoppedEarly]: the diagnosis
	// that String explains.
	Verdict Verdict
}

// Verdict is what limited a run, as [Stats] diagnoses it from its figures.
// The zero Verdict is none: it is that of a Stats no run has filled in.
type Verdict int

// The verdicts, in the order [Stats] checks them after StoppedEarly: a
// Limiter or Pool that made the work calls wait longer than they worked
// explains everything downstream, so it is named first; otherwise the side
// that waited for the other is the fast one.
const (
	// StoppedEarly: the run ended before every input was processed,
	// stopped by an error, a cancellation, a panic or a consumer that
	// left (a break out of a loop over Stream). The figures cover only
	// the part that ran.
	StoppedEarly Verdict = iota + 1
	// PoolBound: work calls waited longer for a slot of the Pool than
	// they worked (PoolWait > Work).
	PoolBound
	// LimiterBound: work calls waited longer for the Limiter than they
	// worked (Limited > Work).
	LimiterBound
	// ConsumerBound: the workers were blocked by a full window longer
	// than they worked (Blocked > Work).
	ConsumerBound
	// ProducerBound: the consumer was starved for more than half the
	// run (Starved > Wall/2).
	ProducerBound
	// Balanced: none of the above; neither side waited for the other for
	// most of the run.
	Balanced
)

// String returns the verdict in lower case: "stopped early", "pool-bound",
// "limiter-bound", "consumer-bound", "producer-bound", "balanced", or
// "none" for the zero Verdict.
func (v Verdict) String() string {
	switch v {
	case StoppedEarly:
		return "stopped early"
	case PoolBound:
		return "pool-bound"
	case LimiterBound:
		return "limiter-bound"
	case ConsumerBound:
		return "consumer-bound"
	case ProducerBound:
		return "producer-bound"
	case Balanced:
		return "balanced"
	case 0:
		return "none"
	}
	return "Verdict(" + strconv.Itoa(int(v)) + ")"
}

// WithStats makes the run fill in *s when it returns (see [Stats]). s
// must not be nil, and must not be read while the run is going; give each
// run its own Stats. Without WithStats (the default), nothing is measured.
func WithStats(s *Stats) Option {
	return Option{func(c *config) { c.stats, c.statsSet = s, true }}
}

// Progress is a run's progress so far, as [WithProgress] reports it.
type Progress struct {
	Done     int64         // work calls finished, successful or not
	Failed   int64         // of which failed, as Stats.Failed counts them
	InFlight int64         // work calls in flight now
	Elapsed  time.Duration // since the run started
}

// WithProgress makes the run call fn with its [Progress] about every
// interval while it runs, and once more when it ends (but not when it ends
// by a panic or Goexit). fn is called on the goroutine that called [Run]
// or [Map], or that ranges over [Stream], never concurrently with consume
// and never after the run returned; a slow fn slows the consumer down.
// every must be positive and fn not nil. By default there is no progress
// report.
func WithProgress(every time.Duration, fn func(Progress)) Option {
	return Option{func(c *config) { c.progressEvery, c.progress, c.progressSet = every, fn, true }}
}

// observer collects the figures of one run. It exists only when the run
// has WithStats or WithProgress; every hook on the hot paths is behind one
// nil check, made once per batch.
type observer struct {
	start time.Time

	started, succeeded    atomic.Int64
	errored, cancelled    atomic.Int64 // calls that returned an error; of which after the stop
	work, consume         atomic.Int64 // nanoseconds
	blocked, starved      atomic.Int64
	limited, poolWait     atomic.Int64
	inFlight, maxInFlight atomic.Int64
	ready, maxReady       atomic.Int64

	stats        *Stats
	complete     bool // every input was processed; set by the caller before fill
	filled       bool // fill has run; owned by the caller
	every        time.Duration
	progress     func(Progress)
	lastProgress time.Time // owned by the caller's goroutine
}

func newObserver(cfg *config) *observer {
	if cfg.stats == nil && cfg.progress == nil {
		return nil
	}
	now := time.Now()
	return &observer{start: now, lastProgress: now, stats: cfg.stats, every: cfg.progressEvery, progress: cfg.progress}
}

func raise(m *atomic.Int64, v int64) {
	for old := m.Load(); v > old && !m.CompareAndSwap(old, v); old = m.Load() {
	}
}

// batchStarted and batchDone bracket a worker's batch of work calls.
func (o *observer) batchStarted() { raise(&o.maxInFlight, o.inFlight.Add(1)) }

// errored counts the calls of the batch that returned an error, whether
// reported or caused by the stop (see stoppedCall).
func (o *observer) batchDone(started, errored int, work time.Duration) {
	o.inFlight.Add(-1)
	o.started.Add(int64(started))
	o.errored.Add(int64(errored))
	o.succeeded.Add(int64(started - errored))
	o.work.Add(int64(work))
}

// stoppedCall counts a call whose error the run's stop caused, and which is
// therefore not reported: the batch counts it as errored, Stats as
// Cancelled instead of Failed. o may be nil.
func (o *observer) stoppedCall() {
	if o != nil {
		o.cancelled.Add(1)
	}
}

// failed is the number of reported failures so far. A call cancelled by
// the stop is counted here before its batch counts it as errored, so a
// report made in between could go below zero.
func (o *observer) failed() int64 { return max(o.errored.Load()-o.cancelled.Load(), 0) }

// handedOver and taken bracket results ready for the consumer.
func (o *observer) handedOver(n int) { raise(&o.maxReady, o.ready.Add(int64(n))) }
func (o *observer) taken(n int)      { o.ready.Add(-int64(n)) }

// tick calls the progress function if an interval has passed, or if final.
func (o *observer) tick(final bool) {
	if o.progress == nil {
		return
	}
	now := time.Now()
	if !final && now.Sub(o.lastProgress) < o.every {
		return
	}
	o.lastProgress = now
	o.progress(Progress{
		Done:     o.succeeded.Load() + o.errored.Load(),
		Failed:   o.failed(),
		InFlight: o.inFlight.Load(),
		Elapsed:  now.Sub(o.start),
	})
}

// fill writes the figures to the run's Stats, once. The run's goroutines
// have all exited, so the figures are final.
func (o *observer) fill(cfg *config) {
	if o.stats == nil || o.filled {
		return
	}
	o.filled = true
	s := Stats{
		Started:     o.started.Load(),
		Succeeded:   o.succeeded.Load(),
		Failed:      o.failed(),
		Cancelled:   o.cancelled.Load(),
		Wall:        time.Since(o.start),
		Work:        time.Duration(o.work.Load() - o.limited.Load()), // batches are timed with the waits
		Consume:     time.Duration(o.consume.Load()),
		Blocked:     time.Duration(o.blocked.Load()),
		Starved:     time.Duration(o.starved.Load()),
		Limited:     time.Duration(o.limited.Load()),
		PoolWait:    time.Duration(o.poolWait.Load()),
		MaxInFlight: int(o.maxInFlight.Load()),
		MaxReady:    int(o.maxReady.Load()),
		Concurrency: cfg.concurrency,
		Buffer:      cfg.buffer,
		Verdict:     StoppedEarly,
	}
	if o.complete {
		s.Verdict = s.diagnose()
	}
	*o.stats = s
}

// observeNoRun reports a run that ends before it starts anything, for an
// empty input or a context cancelled already: it fills in the Stats and
// makes the final progress report, as a run would. complete says whether
// the run is done (an empty input) rather than stopped.
func observeNoRun(cfg *config, complete bool) {
	if o := newObserver(cfg); o != nil {
		o.complete = complete
		o.fill(cfg)
		o.tick(true)
	}
}

// diagnose reads the figures the way one would by hand, in the order of
// the Verdict constants.
func (s Stats) diagnose() Verdict {
	const most = 0.5
	switch {
	case s.PoolWait > s.Work && s.PoolWait > s.Limited:
		return PoolBound
	case s.Limited > s.Work:
		return LimiterBound
	case s.Blocked > s.Work:
		return ConsumerBound
	case s.Wall > 0 && float64(s.Starved) > most*float64(s.Wall):
		return ProducerBound
	}
	return Balanced
}

// String describes the run in one paragraph: what ran, where the time
// went, and the Verdict with advice. A Stats with no Verdict (built by
// hand) is diagnosed from its figures.
func (s Stats) String() string {
	pct := func(d time.Duration) string {
		if s.Wall <= 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(d)/float64(s.Wall))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d work calls (%d failed", s.Started, s.Failed)
	if s.Cancelled > 0 {
		fmt.Fprintf(&b, ", %d cancelled by the stop", s.Cancelled)
	}
	fmt.Fprintf(&b, ") in %v at concurrency %d (at most %d in flight) and buffer %d, a window of %d results (at most %d ready at once). ",
		s.Wall.Round(time.Microsecond), s.Concurrency, s.MaxInFlight, s.Buffer, s.Concurrency+s.Buffer+1, s.MaxReady)
	fmt.Fprintf(&b, "Work %v, consume %v; workers blocked %v (summed), consumer starved %v (%s of the run)",
		s.Work.Round(time.Microsecond), s.Consume.Round(time.Microsecond),
		s.Blocked.Round(time.Microsecond), s.Starved.Round(time.Microsecond), pct(s.Starved))
	if s.Limited > 0 {
		fmt.Fprintf(&b, ", limiter waits %v", s.Limited.Round(time.Microsecond))
	}
	if s.PoolWait > 0 {
		fmt.Fprintf(&b, ", pool waits %v", s.PoolWait.Round(time.Microsecond))
	}
	b.WriteString(". ")
	v := s.Verdict
	if v == 0 {
		v = s.diagnose()
	}
	if v == StoppedEarly {
		// What the figures say is about the part that ran only: after a
		// break at the first result, the consumer was starved for all of
		// a run that never got going.
		b.WriteString("Stopped early, before every input was processed: the figures cover the part that ran. Up to the stop: ")
		v = s.diagnose()
	}
	switch v {
	case PoolBound:
		b.WriteString("Pool-bound: work calls waited longer for a slot of the Pool than they worked; the runs sharing it need a larger pool, or fewer of them at once.")
	case LimiterBound:
		b.WriteString("Limiter-bound: work calls waited longer for the Limiter than they worked; more concurrency will not help.")
	case ConsumerBound:
		b.WriteString("Consumer-bound: the workers were blocked by a full window longer than they worked. Speed up consume, or grow the buffer if it is slow only in bursts; more concurrency will not help.")
	case ProducerBound:
		if s.MaxInFlight >= s.Concurrency {
			b.WriteString("Producer-bound: the consumer was starved for most of the run with every work slot busy. Raise the concurrency if the work waits on I/O or other machines; if it is CPU-bound, it is as fast as the cores allow.")
		} else {
			b.WriteString("Producer-bound: the consumer was starved for most of the run, but the work never used every slot: the inputs came too slowly.")
		}
	default:
		b.WriteString("Balanced: neither side waited for the other for most of the run.")
	}
	return b.String()
}
