package fofi

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Stats tells where the time of a run went. Pass a *Stats with
// [WithStats]; it is filled in when the run returns, on every path:
// success, error, cancellation, panic and Goexit. Durations summed over
// goroutines (Work, Blocked, Limited, PoolWait) can exceed Wall. Read
// [Stats.String] for the figures in words and a diagnosis.
//
// Quick work is measured a batch at a time (see Concurrency in the package
// documentation), so Work includes the few nanoseconds per call that fofi
// spends around each call.
type Stats struct {
	Started   int64 // work calls started
	Succeeded int64 // work calls that returned a nil error
	Failed    int64 // work calls that returned an error (or whose Limiter did)

	Wall    time.Duration // the whole run, from the call to its return
	Work    time.Duration // summed time inside work calls
	Consume time.Duration // time inside consume, or in the body of a loop over Stream

	// Blocked is the time, summed over the workers, that workers sat idle
	// because the run's window was full: the consumer had not yet taken
	// the results, and no more inputs could be pulled (backpressure).
	// Starved is the time the consumer waited with no result to take: the
	// producers were the bottleneck. Map has no consumer, so neither.
	Blocked time.Duration
	Starved time.Duration

	Limited  time.Duration // summed time work calls waited for the Limiter
	PoolWait time.Duration // summed time workers waited for a slot of the Pool

	MaxInFlight int // the most work calls in flight at once
	MaxBuffered int // the most results waiting for the consumer at once

	Concurrency int // the run's WithConcurrency
	Buffer      int // the run's WithBuffer
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
	Failed   int64         // of which failed
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

	started, succeeded, failed atomic.Int64
	work, consume              atomic.Int64 // nanoseconds
	blocked, starved           atomic.Int64
	limited, poolWait          atomic.Int64
	inFlight, maxInFlight      atomic.Int64
	buffered, maxBuffered      atomic.Int64

	stats        *Stats
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

func (o *observer) batchDone(started, failed int, work time.Duration) {
	o.inFlight.Add(-1)
	o.started.Add(int64(started))
	o.failed.Add(int64(failed))
	o.succeeded.Add(int64(started - failed))
	o.work.Add(int64(work))
}

// handedOver and taken bracket results waiting for the consumer.
func (o *observer) handedOver(n int) { raise(&o.maxBuffered, o.buffered.Add(int64(n))) }
func (o *observer) taken(n int)      { o.buffered.Add(-int64(n)) }

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
		Done:     o.succeeded.Load() + o.failed.Load(),
		Failed:   o.failed.Load(),
		InFlight: o.inFlight.Load(),
		Elapsed:  now.Sub(o.start),
	})
}

// fill writes the figures to the run's Stats. The run's goroutines have all
// exited, so the figures are final.
func (o *observer) fill(cfg *config) {
	if o.stats == nil {
		return
	}
	*o.stats = Stats{
		Started:     o.started.Load(),
		Succeeded:   o.succeeded.Load(),
		Failed:      o.failed.Load(),
		Wall:        time.Since(o.start),
		Work:        time.Duration(o.work.Load() - o.limited.Load()), // batches are timed with the waits
		Consume:     time.Duration(o.consume.Load()),
		Blocked:     time.Duration(o.blocked.Load()),
		Starved:     time.Duration(o.starved.Load()),
		Limited:     time.Duration(o.limited.Load()),
		PoolWait:    time.Duration(o.poolWait.Load()),
		MaxInFlight: int(o.maxInFlight.Load()),
		MaxBuffered: int(o.maxBuffered.Load()),
		Concurrency: cfg.concurrency,
		Buffer:      cfg.buffer,
	}
}

// A verdict is what limited a run, as Stats.String diagnoses it.
type verdict int

const (
	balanced verdict = iota
	consumerBound
	producerBound
	limiterBound
	poolBound
)

// verdict reads the figures the way one would by hand. A Limiter or Pool
// that made the work calls wait longer than they worked explains everything
// downstream, so it is named first. Otherwise the side that waited for the
// other is the fast one: producers that sat blocked by a full window longer
// than they worked mean a slow consumer; a consumer starved of results for
// most of the run means slow producers.
func (s Stats) verdict() verdict {
	const most = 0.5
	switch {
	case s.PoolWait > s.Work && s.PoolWait > s.Limited:
		return poolBound
	case s.Limited > s.Work:
		return limiterBound
	case s.Blocked > s.Work:
		return consumerBound
	case s.Wall > 0 && float64(s.Starved) > most*float64(s.Wall):
		return producerBound
	}
	return balanced
}

// String describes the run in one paragraph: what ran, where the time
// went, and a diagnosis with advice: consumer-bound, producer-bound,
// limited by the Limiter or by the Pool, or balanced.
func (s Stats) String() string {
	pct := func(d time.Duration) string {
		if s.Wall <= 0 {
			return "0%"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(d)/float64(s.Wall))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d work calls (%d failed) in %v at concurrency %d (at most %d in flight), buffer %d (at most %d waiting). ",
		s.Started, s.Failed, s.Wall.Round(time.Microsecond), s.Concurrency, s.MaxInFlight, s.Buffer, s.MaxBuffered)
	fmt.Fprintf(&b, "Work %v, consume %v; producers blocked %v (summed over workers), consumer starved %v (%s of the run)",
		s.Work.Round(time.Microsecond), s.Consume.Round(time.Microsecond),
		s.Blocked.Round(time.Microsecond), s.Starved.Round(time.Microsecond), pct(s.Starved))
	if s.Limited > 0 {
		fmt.Fprintf(&b, ", limiter waits %v", s.Limited.Round(time.Microsecond))
	}
	if s.PoolWait > 0 {
		fmt.Fprintf(&b, ", pool waits %v", s.PoolWait.Round(time.Microsecond))
	}
	b.WriteString(". ")
	switch s.verdict() {
	case poolBound:
		b.WriteString("Limited by the Pool: work calls waited longer for a slot than they worked; the runs sharing it need a larger pool, or fewer of them at once.")
	case limiterBound:
		b.WriteString("Limited by the Limiter: work calls waited longer for it than they worked; more concurrency will not help.")
	case consumerBound:
		b.WriteString("Consumer-bound: the producers sat waiting for the consumer longer than they worked. Speed up consume, or grow the buffer if it is slow only in bursts; more concurrency will not help.")
	case producerBound:
		if s.MaxInFlight >= s.Concurrency {
			b.WriteString("Producer-bound: the consumer spent most of the run waiting for results with every work slot busy. Raise the concurrency if the work waits on I/O or other machines; if it is CPU-bound, it is as fast as the cores allow.")
		} else {
			b.WriteString("Producer-bound: the consumer spent most of the run waiting for results, but the work never used every slot: the inputs came too slowly.")
		}
	default:
		b.WriteString("Balanced: neither side waited for the other for most of the run.")
	}
	return b.String()
}
