// Fofi runs the classic fan-out / fan-in demonstration on package fofi:
// expensive jobs, each produced by a producer that takes a random while,
// fanned out to concurrent producers and fanned back in to one consumer
// that processes the outputs one at a time. It prints a trace of every step
// and the wall time of the whole run.
//
// Usage:
//
//	fofi [flags]
//
// The flags are:
//
//	-jobs n         number of jobs (default 5)
//	-concurrency n  producers running at once, fofi.WithConcurrency (default 5)
//	-buffer n       outputs that may be ready for the consumer, fofi.WithBuffer
//	                (default: fofi's default; 0 hands each output straight over)
//	-work MIN-MAX   time a producer takes, drawn uniformly from [MIN, MAX];
//	                a single duration fixes it (default 1s-3s)
//	-consume d      time the consumer takes per output (default 100ms)
//	-ordered        consume outputs in job order, fofi.WithOrdered
//	-seed n         seed of the random producer times (default 1)
//	-quiet          print only the summary lines, no per-job trace
//	-compare        run the jobs twice, as a sequential loop and with fofi,
//	                and print both wall times and the speedup; the loop
//	                takes the sum of every job's times (about 2.1s a job
//	                by default), which it prints before it starts
//	-stats          print the statistics of the fofi run, fofi.WithStats: a
//	                paragraph on where the time went and what limited the
//	                run (fofi.Stats.String), after the finished line, or
//	                before the message of a run that was interrupted
//	-progress       report progress on stderr every 200ms while fofi runs,
//	                fofi.WithProgress: jobs done (produced) of the total,
//	                failed, in flight, consumed, and the time elapsed;
//	                on a terminal one line redrawn in place, otherwise a line
//	                per report
//
// The producer times are drawn up front from -seed, so they do not depend
// on goroutine scheduling: one seed gives the same times on every run and
// in both passes of -compare. Pass another seed for another set of times.
//
// Ctrl-C (SIGINT) or SIGTERM cancels the run: producers and consumer stop
// at once, and fofi exits once [fofi.Run] has returned, with status 130
// after SIGINT and 143 after SIGTERM, as a shell reports a process killed
// by either. A second signal kills the process. Bad flag values, fofi's
// bounds on -concurrency and -buffer included, exit with status 2 before
// anything starts; other errors exit with status 1.
//
// Examples:
//
//	go run ./cmd/fofi
//	go run ./cmd/fofi -compare -jobs 20 -concurrency 5   # about 42s, then 10s
//
// Backpressure: with no buffer and a slow consumer, the producers get at
// most a few jobs ahead of the consumer, so new "producer processing" lines
// appear only as "consumer processed" lines make room:
//
//	go run ./cmd/fofi -jobs 8 -concurrency 2 -consume 1s -buffer 0
//
// -stats names the side that limited the run. The same jobs are
// consumer-bound with a slow consumer and producer-bound with a fast one:
//
//	go run ./cmd/fofi -quiet -stats -jobs 8 -concurrency 4 -work 100ms -consume 1s -buffer 0
//	go run ./cmd/fofi -quiet -stats -jobs 8 -concurrency 4 -work 100ms -consume 0s -buffer 0
//
// docs/backpressure.md explains the statistics and how to tune -concurrency
// and -buffer with them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fofi-go/fofi"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{}) // closed by main when run returns
	// The watcher cancels the run with the first signal as the cause, from
	// which failed chooses the exit status. It then restores the default
	// behaviour, so that a second Ctrl-C kills the process even if the run
	// were stuck. It exits on the first signal or when run returns.
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case sig := <-sigs:
			signal.Stop(sigs)
			cancel(signalled{sig})
		case <-finished:
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	close(finished)
	<-watcherDone
	signal.Stop(sigs)
	cancel(nil)
	os.Exit(code)
}

// signalled is the cause of the run's cancellation by a signal.
type signalled struct{ sig os.Signal }

func (s signalled) Error() string { return s.sig.String() + " signal received" }

// exitStatus is the status and the word for a run stopped by ctx: 128 plus
// the signal's number, as a shell reports a process killed by it (130
// "interrupted" for SIGINT, 143 "terminated" for SIGTERM), and 130 for a
// cancellation without a signal.
func exitStatus(ctx context.Context) (int, string) {
	var s signalled
	if errors.As(context.Cause(ctx), &s) && s.sig == syscall.SIGTERM {
		return 128 + int(syscall.SIGTERM), "terminated"
	}
	return 128 + int(syscall.SIGINT), "interrupted"
}

// run is the whole command with its environment passed in; it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the message and usage are printed already
	}
	d.trace = &tracer{w: stdout, quiet: d.quiet, status: stderr, redraw: isTerminal(stderr)}
	d.durations = drawDurations(d.jobs, d.work, d.seed)

	var seq time.Duration
	if d.compare {
		// The loop takes the sum of every job's times, which the default
		// -work makes 2s a job: say so before it starts.
		total := time.Duration(d.jobs) * d.consumeTime
		for _, t := range d.durations {
			total += t
		}
		d.trace.line("the sequential loop takes about %v: every job's producer and consumer time, one after the other", total.Round(time.Millisecond))
		if seq, err = d.pass(ctx, "sequential", d.runLoop); err != nil {
			return d.failed(ctx, err, stderr)
		}
	}
	conc, err := d.pass(ctx, "fofi", d.runFofi)
	if err != nil {
		return d.failed(ctx, err, stderr)
	}
	if d.stats != nil {
		d.trace.line("stats: %v", d.stats)
	}
	if d.compare {
		fmt.Fprintf(stdout, "sequential loop: %v\n", seq.Round(time.Millisecond))
		fmt.Fprintf(stdout, "fofi, concurrency %d: %v\n", d.concurrency, conc.Round(time.Millisecond))
		// max: a run of zero jobs may measure no time at all.
		fmt.Fprintf(stdout, "speedup: %.2fx\n", float64(seq)/float64(max(conc, time.Nanosecond)))
	}
	return 0
}

// demo is one invocation: the flags, the drawn producer times and the trace.
type demo struct {
	jobs, concurrency int
	opts              []fofi.Option // from -buffer, -ordered, -stats and -progress
	work              span
	consumeTime       time.Duration
	seed              uint64
	quiet, compare    bool
	stats             *fofi.Stats // with -stats, filled in by the fofi pass

	durations []time.Duration // durations[i] is the producer time of job i+1
	trace     *tracer
	start     time.Time // when the current pass started
	consumed  int       // jobs consumed in the current pass; owned by the consumer
}

// pass runs the jobs once with process, between the summary lines, and
// returns its wall time.
func (d *demo) pass(ctx context.Context, name string, process func(context.Context) error) (time.Duration, error) {
	d.trace.line("starting %s processing", name)
	d.start, d.consumed = time.Now(), 0
	err := process(ctx)
	elapsed := time.Since(d.start)
	if err != nil {
		return elapsed, err
	}
	d.trace.line("consumer done")
	d.trace.line("%s processing finished in %v", name, elapsed.Round(time.Millisecond))
	return elapsed, nil
}

// runFofi is the fan-out / fan-in version: up to -concurrency producers at
// once, the consumer on this goroutine.
func (d *demo) runFofi(ctx context.Context) error {
	// fofi reports progress for the last time when Run ends, also by an
	// error or a cancellation, so the progress line ends here.
	defer d.trace.endProgress()
	opts := append([]fofi.Option{fofi.WithConcurrency(d.concurrency)}, d.opts...)
	return fofi.Run(ctx, d.inputs(), d.produce,
		func(job int) error { return d.consume(ctx, job) }, opts...)
}

// reportProgress is the fofi.WithProgress function of -progress. fofi calls
// it on the goroutine that called Run, never at the same time as consume, so
// it may read d.consumed without a lock.
func (d *demo) reportProgress(p fofi.Progress) { d.trace.progress(p, d.jobs, d.consumed) }

// runLoop is the hand-written sequential version that fofi.Run replaces: one
// job at a time, each output consumed before the next job starts.
func (d *demo) runLoop(ctx context.Context) error {
	for job := range d.inputs() {
		out, err := d.produce(ctx, job)
		if err != nil {
			return err
		}
		if err := d.consume(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

// inputs yields the job numbers 1 to -jobs.
func (d *demo) inputs() iter.Seq[int] {
	return func(yield func(int) bool) {
		for job := 1; job <= d.jobs; job++ {
			if !yield(job) {
				return
			}
		}
	}
}

// produce is the expensive job. Its output is the job number.
func (d *demo) produce(ctx context.Context, job int) (int, error) {
	d.trace.job("producer processing %d", job)
	if err := pause(ctx, d.durations[job-1]); err != nil {
		return 0, err
	}
	d.trace.job("producer wrote %d", job)
	return job, nil
}

// consume processes one output. fofi.Run calls it on the goroutine that
// called Run, one output at a time, so it needs no lock.
func (d *demo) consume(ctx context.Context, job int) error {
	d.trace.job("consumer processing %d", job)
	if err := pause(ctx, d.consumeTime); err != nil {
		return err
	}
	d.trace.job("consumer processed %d", job)
	d.consumed++
	return nil
}

// failed reports the error that stopped a pass and returns the exit status.
// With -stats it prints the statistics of the fofi pass first, if it ran:
// where the time went up to the stop is what an interrupted slow run is
// for.
func (d *demo) failed(ctx context.Context, err error, stderr io.Writer) int {
	if d.stats != nil && d.stats.Verdict != 0 { // the zero Verdict: not filled in
		d.trace.line("stats: %v", d.stats)
	}
	if ctx.Err() != nil && !errors.Is(err, fofi.ErrInvalidOption) {
		code, what := exitStatus(ctx)
		fmt.Fprintf(stderr, "%s after %v: %d of %d jobs consumed\n",
			what, time.Since(d.start).Round(time.Millisecond), d.consumed, d.jobs)
		return code
	}
	fmt.Fprintln(stderr, err)
	return 1
}

// pause stands in for real work: it waits for d, or until ctx is done.
// Unlike time.Sleep it returns as soon as the run is cancelled.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drawDurations draws the producer time of every job from one source seeded
// with seed, before any goroutine starts, so that the times depend on the
// seed alone.
func drawDurations(jobs int, work span, seed uint64) []time.Duration {
	r := rand.New(rand.NewPCG(seed, seed))
	ds := make([]time.Duration, jobs)
	for i := range ds {
		// max-min+1 fits in a uint64 even for the widest span.
		ds[i] = work.min + time.Duration(r.Uint64N(uint64(work.max-work.min)+1))
	}
	return ds
}
