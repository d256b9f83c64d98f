package guide

import (
	"context"
	"sync"
)

// SizesNaive fetches the pages concurrently, one goroutine per page, and
// sums their sizes as they arrive. It is right when nothing fails, and
// that is its trap: see the comments marked TRAP.
func SizesNaive(ctx context.Context, urls []string, fetch Fetch) (int, error) {
	type result struct {
		size int
		err  error
	}
	results := make(chan result)
	var wg sync.WaitGroup
	for _, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size, err := fetch(ctx, url) // TRAP: a panic here kills the process
			results <- result{size, err} // TRAP: blocks forever once nobody receives
		}()
	}
	go func() {
		wg.Wait()      // only after the last send is close safe,
		close(results) // and without it the range below never ends
	}()

	total := 0
	for r := range results {
		if r.err != nil {
			return 0, r.err // TRAP: leaves the other senders blocked forever
		}
		total += r.size
	}
	return total, nil
}
