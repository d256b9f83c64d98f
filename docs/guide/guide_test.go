package guide_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fofi-go/fofi"
	"github.com/fofi-go/fofi/docs/guide"
)

var urls = []string{"a.example", "b.example", "c.example", "d.example"}

// fetch stands in for an HTTP GET: it takes a millisecond, gives up when
// ctx is cancelled, fails for the URLs that start with "bad", and returns
// the length of the URL as the size of the page.
func fetch(ctx context.Context, url string) (int, error) {
	select {
	case <-time.After(time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if strings.HasPrefix(url, "bad") {
		return 0, fmt.Errorf("%s: not found", url)
	}
	return len(url), nil
}

// Step 1: the loop. One fetch at a time, the first error returned.
func ExampleSizesLoop() {
	fmt.Println(guide.SizesLoop(context.Background(), urls, fetch))
	// Output: 36 <nil>
}

// Step 2: goroutines, a WaitGroup and a channel. When nothing fails the
// naive version is right, which is why its traps survive code review.
func ExampleSizesNaive() {
	fmt.Println(guide.SizesNaive(context.Background(), urls, fetch))
	// Output: 36 <nil>
}

// Step 2, with its traps closed by hand: the first error stops the run.
func ExampleSizesByHand() {
	fmt.Println(guide.SizesByHand(context.Background(), urls, fetch))
	fmt.Println(guide.SizesByHand(context.Background(), []string{"a.example", "bad.example"}, fetch))
	// Output:
	// 36 <nil>
	// 0 bad.example: not found
}

// Step 3: fofi.
func ExampleSizesFofi() {
	fmt.Println(guide.SizesFofi(context.Background(), urls, fetch))
	// Output: 36 <nil>
}

// The first error stops the run: it names the input that failed, and when
// SizesFofi returns, no fetch is still running.
func ExampleSizesFofi_error() {
	var inFlight atomic.Int64
	counted := func(ctx context.Context, url string) (int, error) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		return fetch(ctx, url)
	}
	in := []string{"a.example", "b.example", "bad.example", "d.example", "e.example"}
	_, err := guide.SizesFofi(context.Background(), in, counted)
	fmt.Println(err)
	var te *fofi.TaskError
	fmt.Println(errors.As(err, &te), te.Index)
	fmt.Println("fetches still running:", inFlight.Load())
	// Output:
	// fofi: input 2: bad.example: not found
	// true 2
	// fetches still running: 0
}

// A panic in fetch stops the run and reaches the caller of SizesFofi, on
// its own goroutine, as a *fofi.PanicError: a recover there works as it
// does around the loop of step 1.
func ExampleSizesFofi_panic() {
	defer func() {
		pe, ok := recover().(*fofi.PanicError)
		fmt.Println("recovered:", ok, pe.Value)
	}()
	guide.SizesFofi(context.Background(), urls, func(ctx context.Context, url string) (int, error) {
		if url == "c.example" {
			panic("bad input " + url)
		}
		return fetch(ctx, url)
	})
	// Output: recovered: true bad input c.example
}
