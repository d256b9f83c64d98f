package fofi_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// The tests in this file hold an ordered run that fails to the loop it
// replaces (see Errors and cancellation in the package documentation): it
// returns the error of the smallest failing input i, after every input
// before i has been called and its result consumed in order; no call
// after i starts once a failure at or before it is known; the calls after
// i still running are cancelled once 0..i-1 are delivered; and no call
// before i sees its context cancelled.

// orderedEntry is an entry point run with WithOrdered over 0..n-1, or over
// the pairs (x, nil) of 0..n-1 with (0, inputErr) at index inputErrAt
// for the Seq2 ones. It returns the results consumed, in order (none for
// ForEach and ForEachSeq2).
type orderedEntry struct {
	name string
	seq2 bool
	run  func(ctx context.Context, n, inputErrAt int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error)
}

var errInput = errors.New("input failed")

// pairs yields (x, nil) for x in 0..n-1, and (0, errInput) instead of
// inputErrAt, after which it returns.
func pairs(n, inputErrAt int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for x := range n {
			if x == inputErrAt {
				yield(0, errInput)
				return
			}
			if !yield(x, nil) {
				return
			}
		}
	}
}

var orderedEntries2 = []orderedEntry{
	{"Run", false, func(ctx context.Context, n, _ int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		err := fofi.Run(ctx, seq(n), work, func(v int) error { got = append(got, v); return nil }, append(opts, fofi.WithOrdered())...)
		return got, err
	}},
	{"Stream", false, func(ctx context.Context, n, _ int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		for v, err := range fofi.Stream(ctx, seq(n), work, append(opts, fofi.WithOrdered())...) {
			if err != nil {
				return got, err
			}
			got = append(got, v)
		}
		return got, nil
	}},
	{"ForEach", false, func(ctx context.Context, n, _ int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		return nil, fofi.ForEach(ctx, seq(n), func(ctx context.Context, x int) error {
			_, err := work(ctx, x)
			return err
		}, append(opts, fofi.WithOrdered())...)
	}},
	{"RunSeq2", true, func(ctx context.Context, n, inputErrAt int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		err := fofi.RunSeq2(ctx, pairs(n, inputErrAt), work, func(v int) error { got = append(got, v); return nil }, append(opts, fofi.WithOrdered())...)
		return got, err
	}},
	{"StreamSeq2", true, func(ctx context.Context, n, inputErrAt int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		var got []int
		for v, err := range fofi.StreamSeq2(ctx, pairs(n, inputErrAt), work, append(opts, fofi.WithOrdered())...) {
			if err != nil {
				return got, err
			}
			got = append(got, v)
		}
		return got, nil
	}},
	{"ForEachSeq2", true, func(ctx context.Context, n, inputErrAt int, work func(context.Context, int) (int, error), opts ...fofi.Option) ([]int, error) {
		return nil, fofi.ForEachSeq2(ctx, pairs(n, inputErrAt), func(ctx context.Context, x int) error {
			_, err := work(ctx, x)
			return err
		}, append(opts, fofi.WithOrdered())...)
	}},
}

// consumes reports whether the entry hands results to a consumer.
func (e orderedEntry) consumes() bool { return e.name != "ForEach" && e.name != "ForEachSeq2" }

// plan is what the call for one input does: wait for delay (or, when
// block, until its context is cancelled, for an hour at most), then fail
// or return its input.
type plan struct {
	delay time.Duration
	block bool
	fail  bool
}

// orderedCase is one ordered run that may fail, and the loop it is held to.
type orderedCase struct {
	entry      orderedEntry
	c, buf     int
	plans      []plan
	inputErrAt int  // Seq2 entries: the index of the input error, or -1
	exactTime  bool // in a synctest bubble: check what happens when, exactly
}

// loop returns what the sequential loop does with the case: the index it
// stops at (len(plans) when it does not) and whether it stops there
// because of the input error.
func (oc orderedCase) loop() (stop int, inputErr bool) {
	for x, p := range oc.plans {
		if oc.entry.seq2 && x == oc.inputErrAt {
			return x, true
		}
		if p.fail {
			return x, false
		}
	}
	return len(oc.plans), false
}

// checkOrderedFailure runs the case and checks it against the loop. With
// exactTime, it returns how many calls before the failure started after
// the failure had returned, which the loop makes and fofi must make too.
func checkOrderedFailure(t *testing.T, ctx context.Context, oc orderedCase) (late int) {
	t.Helper()
	n := len(oc.plans)
	stop, stopsAtInput := oc.loop()
	errWork := errors.New("work failed")

	var (
		mu         sync.Mutex
		firstFail  = -1 // smallest index whose call has returned its failure
		failedAt   time.Time
		violations []string
		calls      = make([]atomic.Int32, n)
		running    atomic.Int64
		lastReturn time.Time // when the last of the calls up to stop returned
	)
	violate := func(format string, args ...any) {
		mu.Lock()
		violations = append(violations, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	work := func(ctx context.Context, x int) (int, error) {
		running.Add(1)
		defer running.Add(-1)
		if x <= stop {
			defer func() {
				mu.Lock()
				if now := time.Now(); now.After(lastReturn) {
					lastReturn = now
				}
				mu.Unlock()
			}()
		}
		calls[x].Add(1)
		if oc.exactTime {
			// A failure at j < x that returned at an earlier instant is
			// known to the run: x must not start.
			mu.Lock()
			if firstFail >= 0 && firstFail < x && time.Now().After(failedAt) {
				violations = append(violations, fmt.Sprintf("input %d started %v after input %d failed", x, time.Since(failedAt), firstFail))
			}
			if firstFail > x && time.Now().After(failedAt) {
				late++
			}
			mu.Unlock()
		}
		p := oc.plans[x]
		wait := p.delay
		if p.block {
			wait = time.Hour
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				if x < stop {
					violate("the call for input %d, before the failure at %d, saw its context cancelled: %v", x, stop, context.Cause(ctx))
				}
				return 0, ctx.Err()
			}
		}
		if p.fail {
			mu.Lock()
			if firstFail < 0 || x < firstFail {
				firstFail, failedAt = x, time.Now()
			}
			mu.Unlock()
			return 0, fmt.Errorf("input %d: %w", x, errWork)
		}
		return x, nil
	}

	start := time.Now()
	lastReturn = start
	got, err := oc.entry.run(ctx, n, oc.inputErrAt, work, fofi.WithConcurrency(oc.c), fofi.WithBuffer(oc.buf))
	elapsed := time.Since(start)

	if r := running.Load(); r != 0 {
		t.Errorf("%d calls still running when %s returned", r, oc.entry.name)
	}
	for _, v := range violations {
		t.Error(v)
	}
	switch {
	case stop == n:
		if err != nil {
			t.Errorf("%s = %v, want nil: nothing failed", oc.entry.name, err)
		}
	case stopsAtInput:
		if err != errInput {
			t.Errorf("%s = %v (%T), want the input error %v as it is", oc.entry.name, err, err, errInput)
		}
	default:
		var te *fofi.TaskError
		if !errors.As(err, &te) || te.Index != stop || te.Input != any(stop) || !errors.Is(err, errWork) {
			t.Errorf("%s = %v, want *TaskError{Index: %d, Input: %d} wrapping the work error", oc.entry.name, err, stop, stop)
		}
		if errors.Is(err, context.Canceled) {
			t.Errorf("%s = %v: reports the cancellation it caused", oc.entry.name, err)
		}
	}
	if oc.entry.consumes() {
		want := make([]int, stop)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s consumed %v, want 0..%d in order, as the loop", oc.entry.name, got, stop-1)
		}
	}
	for x := range n {
		c := calls[x].Load()
		switch {
		case x < stop && c != 1:
			t.Errorf("input %d, before the failure at %d, was called %d times, want once", x, stop, c)
		case c > 1:
			t.Errorf("input %d was called %d times", x, c)
		case oc.entry.seq2 && oc.inputErrAt >= 0 && x >= oc.inputErrAt && c != 0:
			t.Errorf("input %d, at or after the input error at %d, was called", x, oc.inputErrAt)
		}
	}
	// The run ends when the failure and every call before it have
	// returned (consume takes no time): the calls after it that still run
	// are cancelled then, not waited for. (An input error is not a call
	// whose return can be timed; a run without a failure waits for
	// every call.)
	if want := lastReturn.Sub(start); oc.exactTime && stop < n && !stopsAtInput && elapsed != want {
		t.Errorf("%s returned after %v, want %v: when the failure at %d and every call before it had returned", oc.entry.name, elapsed, want, stop)
	}
	return late
}

// randomCase draws an ordered case from seed: n inputs of mixed delays,
// some blocking until cancelled, up to three failing.
func randomCase(seed uint64, entry orderedEntry, n int, exactTime bool) orderedCase {
	rng := rand.New(rand.NewPCG(seed, 1))
	oc := orderedCase{entry: entry, c: 1 + rng.IntN(16), buf: rng.IntN(64), plans: make([]plan, n), inputErrAt: -1, exactTime: exactTime}
	if rng.IntN(2) == 0 {
		oc.buf = 1024
	}
	for x := range oc.plans {
		p := &oc.plans[x]
		switch k := rng.IntN(100); {
		case k < 50:
		case k < 80:
			p.delay = time.Duration(rng.IntN(100)) * time.Microsecond
		case k < 97:
			p.delay = time.Duration(rng.IntN(2000)) * time.Microsecond
		default:
			p.delay = 20 * time.Millisecond
			p.block = exactTime // in real time, an hour is too long for a test
		}
	}
	if n > 0 {
		for range rng.IntN(4) {
			oc.plans[rng.IntN(n)].fail = true
		}
		if entry.seq2 && rng.IntN(3) == 0 {
			oc.inputErrAt = rng.IntN(n)
		}
	}
	return oc
}

// TestOrderedFailureAt37 is the case of the issue: 100 inputs on 8
// goroutines, input 37 fails; the loop writes 0..36 first, and so must
// every ordered entry point.
func TestOrderedFailureAt37(t *testing.T) {
	for _, e := range orderedEntries2 {
		t.Run(e.name, func(t *testing.T) {
			inBubbleAndRealTime(t, func(t *testing.T, ctx context.Context) {
				_, exact := ctx.Deadline()
				exact = !exact
				for seed := range uint64(20) {
					rng := rand.New(rand.NewPCG(seed, 37))
					oc := orderedCase{entry: e, c: 8, buf: 1024, plans: make([]plan, 100), inputErrAt: -1, exactTime: exact}
					for x := range oc.plans {
						oc.plans[x].delay = time.Duration(rng.IntN(500)) * time.Microsecond
					}
					oc.plans[37].fail = true
					checkOrderedFailure(t, ctx, oc)
				}
			})
		})
	}
}

// TestOrderedFailureSmallerIndexWins: input 50 fails first, input 10
// later; the run returns input 10's error, after delivering 0..9, and
// cancels the calls after 10, which would block for an hour, only then.
func TestOrderedFailureSmallerIndexWins(t *testing.T) {
	for _, e := range orderedEntries2 {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				oc := orderedCase{entry: e, c: 64, buf: 1024, plans: make([]plan, 64), inputErrAt: -1, exactTime: true}
				for x := range oc.plans {
					switch {
					case x < 10:
						oc.plans[x].delay = 10 * time.Millisecond
					case x == 10:
						oc.plans[x] = plan{delay: 5 * time.Millisecond, fail: true}
					case x == 50:
						oc.plans[x] = plan{delay: time.Millisecond, fail: true}
					default:
						oc.plans[x].block = true
					}
				}
				start := time.Now()
				checkOrderedFailure(t, t.Context(), oc)
				if d := time.Since(start); d != 10*time.Millisecond {
					t.Errorf("%s returned after %v, want 10ms: when inputs 0..9 are done, and no later", e.name, d)
				}
			})
		})
	}
}

// TestOrderedFailureCallsInputsNotStarted: after quick calls have taught
// the run to claim several inputs at once, input 1500 (or one of the next
// seven) blocks for 50ms; the
// inputs claimed behind it go to the other worker once the watcher steals
// them, and input 1520 fails before that, while some of 1501..1519 have
// not started. They are
// still called and consumed, as the loop would, and the test checks that
// some did start after the failure.
func TestOrderedFailureCallsInputsNotStarted(t *testing.T) {
	for _, e := range orderedEntries2 {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Warm up: quick calls teach the run to claim many
				// inputs at once, so that a claim holds inputs before
				// and after a blocked call.
				// A small buffer keeps claims short (a few inputs), so
				// that input 1520 is claimed by the other worker, which
				// gets to it while 1500 blocks (the window reaches 33
				// inputs past 1500).
				// Where claims begin depends on scheduling, and an input
				// that ends its claim has no tail, so the blocking input
				// moves over eight places.
				const n = 2000
				late := 0
				for block := 1500; block < 1508; block++ {
					oc := orderedCase{entry: e, c: 2, buf: 30, plans: make([]plan, n), inputErrAt: -1, exactTime: true}
					oc.plans[block].delay = 50 * time.Millisecond
					oc.plans[1520].fail = true
					late += checkOrderedFailure(t, t.Context(), oc)
				}
				if late == 0 {
					t.Errorf("%s: every input before 1520 started before 1520 failed: the case tests nothing", e.name)
				}
			})
		})
	}
}

// FuzzOrderedFailure holds every ordered entry point to the loop on random
// cases: mixed delays, calls that block until cancelled, up to three
// failures and, for the Seq2 entry points, an input error, on 1 to 16
// goroutines with small and default buffers, in a synctest bubble where
// the order of events in time is exact. Its seed corpus runs in every go
// test; go test -fuzz FuzzOrderedFailure explores.
func FuzzOrderedFailure(f *testing.F) {
	for seed := range uint64(24) {
		f.Add(seed, uint8(seed), uint16(40+seed*7))
	}
	f.Fuzz(func(t *testing.T, seed uint64, e uint8, n16 uint16) {
		entry := orderedEntries2[int(e)%len(orderedEntries2)]
		oc := randomCase(seed, entry, int(n16%600), true)
		synctest.Test(t, func(t *testing.T) { checkOrderedFailure(t, t.Context(), oc) })
	})
}

// TestOrderedFailureRealTime runs random cases in real time, with the
// race detector's scheduling instead of a bubble's.
func TestOrderedFailureRealTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for seed := range uint64(30) {
		entry := orderedEntries2[int(seed)%len(orderedEntries2)]
		t.Run(fmt.Sprintf("%s/seed=%d", entry.name, seed), func(t *testing.T) {
			checkOrderedFailure(t, ctx, randomCase(seed, entry, 300, false))
		})
	}
}
