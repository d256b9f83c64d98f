package guide

import (
	"context"
	"sync"
)

// SizesByHand is SizesNaive with its traps closed by hand: at most four
// fetches at once, the first error cancels the others and starts no more,
// and no goroutine outlives the call. A panic in fetch still kills the
// process.
func SizesByHand(ctx context.Context, urls []string, fetch Fetch) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		size int
		err  error
	}
	results := make(chan result)
	sem := make(chan struct{}, 4) // at most 4 fetches at once
	var wg sync.WaitGroup
	go func() {
		for _, url := range urls {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break // the run has stopped: start no more fetches
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				size, err := fetch(ctx, url)
				results <- result{size, err} // received: the loop below drains results
			}()
		}
		wg.Wait()      // every sender has returned,
		close(results) // so no send can follow the close
	}()

	total, firstErr := 0, error(nil)
	for r := range results { // to the end, even after an error: see the send
		switch {
		case firstErr != nil:
			// stopped: the fetches that the cancel made fail are not errors
		case r.err != nil:
			firstErr = r.err
			cancel() // stop the fetches in flight
		default:
			total += r.size
		}
	}
	if firstErr == nil {
		firstErr = ctx.Err() // the caller cancelled ctx: pages were skipped
	}
	if firstErr != nil {
		return 0, firstErr
	}
	return total, nil
}
