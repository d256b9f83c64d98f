package guide_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/docs/guide"
)

// Each kind of error a run returns, told apart by Classify.
func ExampleClassify() {
	ctx := context.Background()
	double := func(_ context.Context, x int) (int, error) { return 2 * x, nil }
	ignore := func(int) error { return nil }

	// Success, and a bad option: nothing runs.
	fmt.Println(guide.Classify(fofi.Run(ctx, slices.Values([]int{1, 2}), double, ignore)))
	fmt.Println(guide.Classify(fofi.Run(ctx, slices.Values([]int{1, 2}), double, ignore, fofi.WithBuffer(-1))))

	// A work call fails; another runs out of its own time.
	_, err := fofi.Map(ctx, []string{"a.example", "bad.example"}, fetch)
	fmt.Println(guide.Classify(err))
	slow := func(ctx context.Context, d time.Duration) (int, error) {
		select {
		case <-time.After(d):
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	_, err = fofi.Map(ctx, []time.Duration{0, time.Hour}, slow, fofi.WithTaskTimeout(10*time.Millisecond))
	fmt.Println(guide.Classify(err))

	// The caller's context ends the run.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	fmt.Println(guide.Classify(fofi.Run(cancelled, slices.Values([]int{1, 2}), double, ignore)))

	// The shared pool is closed.
	pool, _ := fofi.NewPool(2)
	pool.Close()
	fmt.Println(guide.Classify(fofi.Run(ctx, slices.Values([]int{1, 2}), double, ignore, fofi.WithPool(pool))))

	// consume fails: its error is returned as it is.
	full := errors.New("disk full")
	fmt.Println(guide.Classify(fofi.Run(ctx, slices.Values([]int{1, 2}), double, func(int) error { return full })))
	// Output:
	// success
	// bad call: nothing ran
	// work failed for input 1: bad.example: not found
	// work failed for input 1: context deadline exceeded
	// ctx ended the run: context canceled
	// the pool is closed
	// consume failed: disk full
}

// The first page is the slowest, the last the quickest; the lines still
// come in the order of the URLs.
func ExamplePrintInOrder() {
	slowFirst := func(ctx context.Context, url string) (int, error) {
		time.Sleep(time.Duration(10-len(url)) * 5 * time.Millisecond)
		return len(url), nil
	}
	err := guide.PrintInOrder(context.Background(), os.Stdout,
		[]string{"a.ex", "bb.ex", "ccc.ex", "dddd.ex"}, slowFirst)
	fmt.Println(err)
	// Output:
	// a.ex: 4 bytes
	// bb.ex: 5 bytes
	// ccc.ex: 6 bytes
	// dddd.ex: 7 bytes
	// <nil>
}

// TestHeadOfLine checks the bound docs/ordering.md gives for WithOrdered:
// while the oldest input is slow, at most concurrency + buffer inputs after
// it are pulled and worked on, and then nothing moves until it completes.
// Fake time makes "then nothing moves" exact: synctest.Wait returns only
// when every goroutine of the run is blocked.
func TestHeadOfLine(t *testing.T) {
	for _, tc := range []struct{ concurrency, buffer int }{{2, 0}, {2, 2}, {4, 3}} {
		t.Run(fmt.Sprintf("c=%d/b=%d", tc.concurrency, tc.buffer), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				var started atomic.Int64
				work := func(_ context.Context, i int) (int, error) {
					started.Add(1)
					if i == 0 {
						<-release // the head of the line
					}
					return i, nil
				}
				done := make(chan error)
				var got []int
				go func() {
					done <- fofi.Run(context.Background(), slices.Values(seq(100)), work,
						func(i int) error { got = append(got, i); return nil },
						fofi.WithConcurrency(tc.concurrency), fofi.WithBuffer(tc.buffer), fofi.WithOrdered())
				}()
				synctest.Wait()
				if n, most := started.Load()-1, int64(tc.concurrency+tc.buffer); n > most {
					t.Errorf("inputs started behind a slow head = %d, want at most concurrency + buffer = %d", n, most)
				}
				t.Logf("inputs started behind the slow head: %d", started.Load()-1)
				if len(got) != 0 {
					t.Errorf("consumed before the head completed: %v", got)
				}
				close(release)
				if err := <-done; err != nil {
					t.Fatalf("Run(...) = %v, want nil", err)
				}
				if len(got) != 100 {
					t.Errorf("consumed %d results, want 100", len(got))
				}
			})
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
