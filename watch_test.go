package fofi_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

// TestWatcherParksWhenUserCodeDeadlocks: a run stuck in user code is left
// to synctest to report. The watcher must not sample for ever, or a bubble
// whose goroutines are all blocked would never be reported deadlocked, and
// a stuck process would burn a processor. Each case blocks the run in user
// code, then lets an hour of the bubble's time pass: a watcher that kept
// sampling every 250µs would take seconds of real time for it.
func TestWatcherParksWhenUserCodeDeadlocks(t *testing.T) {
	cases := []struct {
		name     string
		consumer bool // consume blocks too, with results held behind a stalled call
		pool     bool // a second worker waits for the slot the stalled call holds
	}{
		{"work blocks", false, false},
		{"work and consume block", true, false},
		{"worker waits for a Pool slot", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now() // real time: outside the bubble
			synctest.Test(t, func(t *testing.T) {
				never := make(chan struct{})
				opts := []fofi.Option{fofi.WithConcurrency(2), fofi.WithBuffer(300)}
				if tc.pool {
					p, err := fofi.NewPool(1)
					if err != nil {
						t.Fatal(err)
					}
					defer p.Close()
					opts = append(opts, fofi.WithPool(p))
				}
				var blocked atomic.Bool
				done := make(chan error)
				go func() {
					done <- fofi.Run(t.Context(), seq(400), func(ctx context.Context, x int) (int, error) {
						if x == 150 {
							<-never
						}
						return x, nil
					}, func(v int) error {
						if tc.consumer && v > 150 && blocked.CompareAndSwap(false, true) {
							<-never
						}
						return nil
					}, opts...)
				}()
				time.Sleep(10 * time.Millisecond)
				synctest.Wait()
				time.Sleep(time.Hour)
				close(never)
				if err := <-done; err != nil {
					t.Errorf("Run = %v after the calls were released, want nil", err)
				}
			})
			if real := time.Since(start); real > 2*time.Second {
				t.Errorf("an hour of bubble time with the run stuck in user code took %v of real time: the watcher kept sampling", real)
			}
		})
	}
}

// FuzzStall runs Run, Stream and Map in a synctest bubble over inputs of
// which a fuzzed share block for a fuzzed time, between quick ones, so that
// claims stall, their tails are stolen and their finished results are
// taken by the consumer. It checks that every input is called exactly once
// and every result delivered exactly once, in input order with
// WithOrdered, that at most c calls are in flight, and that the run ends
// (in a bubble, a stuck run is a deadlock that fails the test).
func FuzzStall(f *testing.F) {
	f.Add(uint8(4), uint16(3000), uint8(100), uint16(500), uint8(0), uint64(1))
	f.Add(uint8(64), uint16(4000), uint8(100), uint16(5000), uint8(1), uint64(2))
	f.Add(uint8(1), uint16(500), uint8(10), uint16(300), uint8(2), uint64(3))
	f.Add(uint8(2), uint16(2000), uint8(3), uint16(2000), uint8(3), uint64(4))
	f.Add(uint8(8), uint16(1000), uint8(1), uint16(100), uint8(4), uint64(5))
	f.Fuzz(func(t *testing.T, c8 uint8, n16 uint16, every8 uint8, blockUs uint16, mode uint8, seed uint64) {
		c, n := int(c8%64)+1, int(n16%5000)
		every := uint64(every8) + 1
		block := time.Duration(blockUs%10000) * time.Microsecond
		slow := func(x int) bool { return (uint64(x)*0x9E3779B97F4A7C15^seed)%every == 0 }
		synctest.Test(t, func(t *testing.T) {
			calls := make([]atomic.Int32, n)
			var g gauge
			work := func(ctx context.Context, x int) (int, error) {
				g.enter()
				defer g.leave()
				calls[x].Add(1)
				if slow(x) {
					time.Sleep(block)
				}
				return x, nil
			}
			opts := []fofi.Option{fofi.WithConcurrency(c)}
			ordered := mode%5 == 1 || mode%5 == 3
			if ordered {
				opts = append(opts, fofi.WithOrdered())
			}
			var got []int
			var err error
			switch mode % 5 {
			case 0, 1:
				err = fofi.Run(t.Context(), seq(n), work, func(v int) error { got = append(got, v); return nil }, opts...)
			case 2, 3:
				for v, e := range fofi.Stream(t.Context(), seq(n), work, opts...) {
					if e != nil {
						err = e
						break
					}
					got = append(got, v)
				}
			case 4:
				got, err = fofi.Map(t.Context(), slices.Collect(seq(n)), work, opts...)
				ordered = true
			}
			if err != nil {
				t.Fatalf("mode %d: %v", mode%5, err)
			}
			for x := range n {
				if k := calls[x].Load(); k != 1 {
					t.Fatalf("mode %d: input %d called %d times, want 1", mode%5, x, k)
				}
			}
			if len(got) != n {
				t.Fatalf("mode %d: %d results, want %d", mode%5, len(got), n)
			}
			if !ordered {
				slices.Sort(got)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("mode %d: result %d is %d, want %d (each exactly once%s)", mode%5, i, v, i, map[bool]string{true: ", in order"}[ordered])
				}
			}
			if m := g.max.Load(); m > int64(c) {
				t.Fatalf("%d calls in flight, want at most %d", m, c)
			}
		})
	})
}
