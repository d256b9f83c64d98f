package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fofi-go/fofi"
)

// parseFlags parses args into a demo. On a bad flag it prints the error and
// the usage to stderr and returns a non-nil error.
func parseFlags(args []string, stderr io.Writer) (*demo, error) {
	fs := flag.NewFlagSet("fofi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := &demo{work: span{time.Second, 3 * time.Second}}
	fs.IntVar(&d.jobs, "jobs", 5, "number of jobs")
	fs.IntVar(&d.concurrency, "concurrency", 5, "producers running at once, fofi.WithConcurrency")
	buffer := fs.Int("buffer", 0, "outputs that may be ready for the consumer, fofi.WithBuffer (default: fofi's default)")
	fs.Var(&d.work, "work", "time a producer takes: `MIN-MAX` or a single duration")
	fs.DurationVar(&d.consumeTime, "consume", 100*time.Millisecond, "time the consumer takes per output")
	ordered := fs.Bool("ordered", false, "consume outputs in job order, fofi.WithOrdered")
	fs.Uint64Var(&d.seed, "seed", 1, "seed of the random producer times; the same seed gives the same times")
	fs.BoolVar(&d.quiet, "quiet", false, "print only the summary lines, no per-job trace")
	fs.BoolVar(&d.compare, "compare", false, "run as a sequential loop, then with fofi, and print the speedup")
	stats := fs.Bool("stats", false, "print where the time of the fofi run went and what limited it, fofi.WithStats")
	progress := fs.Bool("progress", false, "report progress on stderr every "+progressEvery.String()+" while fofi runs, fofi.WithProgress")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	var err error
	switch {
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q: fofi takes flags only", fs.Arg(0))
	case d.jobs < 0:
		err = fmt.Errorf("invalid value \"%d\" for flag -jobs: must be at least 0", d.jobs)
	case d.consumeTime < 0:
		err = fmt.Errorf("invalid value \"%v\" for flag -consume: must not be negative", d.consumeTime)
	default:
		// fofi's own bounds, asked of fofi itself so that they cannot
		// drift apart: a bad value is a usage error, found before
		// anything starts, not a failure of the run.
		err = checkOption("concurrency", d.concurrency, fofi.WithConcurrency)
		if err == nil {
			err = checkOption("buffer", *buffer, fofi.WithBuffer)
		}
	}
	if err != nil {
		// The same message and usage as the flag package gives for a
		// value it cannot parse.
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return nil, err
	}

	// Pass WithBuffer only when -buffer is given, so that the default
	// run shows fofi's own default buffer.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "buffer" {
			d.opts = append(d.opts, fofi.WithBuffer(*buffer))
		}
	})
	if *ordered {
		d.opts = append(d.opts, fofi.WithOrdered())
	}
	if *stats {
		d.stats = new(fofi.Stats)
		d.opts = append(d.opts, fofi.WithStats(d.stats))
	}
	if *progress {
		d.opts = append(d.opts, fofi.WithProgress(progressEvery, d.reportProgress))
	}
	return d, nil
}

// checkOption reports whether fofi accepts the option that flag -name with
// value n sets: Map over no input validates its options and does nothing
// else.
func checkOption(name string, n int, option func(int) fofi.Option) error {
	_, err := fofi.Map(context.Background(), []int(nil),
		func(context.Context, int) (int, error) { return 0, nil }, option(n))
	if err != nil {
		return fmt.Errorf("invalid value \"%d\" for flag -%s: %w", n, name, err)
	}
	return nil
}

// span is the value of -work: a range of durations, MIN-MAX, or a single
// duration.
type span struct{ min, max time.Duration }

func (s *span) String() string {
	if s.min == s.max {
		return s.min.String()
	}
	return s.min.String() + "-" + s.max.String()
}

func (s *span) Set(v string) error {
	lo, hi := v, v
	// The separator is the first '-' after the first character, which may
	// be the sign of a (bad) negative MIN.
	if i := strings.Index(v[min(1, len(v)):], "-"); i >= 0 {
		lo, hi = v[:i+1], v[i+2:]
	}
	a, err := time.ParseDuration(lo)
	if err != nil {
		return err
	}
	b, err := time.ParseDuration(hi)
	switch {
	case err != nil:
		return err
	case a < 0:
		return fmt.Errorf("negative duration %v", a)
	case a > b:
		return fmt.Errorf("MIN %v is greater than MAX %v", a, b)
	}
	s.min, s.max = a, b
	return nil
}
