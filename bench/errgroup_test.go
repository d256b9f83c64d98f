package bench

import (
	"context"

	"golang.org/x/sync/errgroup"
)

func init() {
	register(contestant{name: "errgroup", start: plain(runErrgroup)})
}

// runErrgroup is what people write by hand with errgroup: SetLimit(c), one
// goroutine per input, the results fanned in through a channel. The feeder
// goroutine blocks in Go while c calls are in flight, so the input
// streams.
func runErrgroup(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c)
	results := make(chan int, c)
	go func() {
		for v := range in.seq {
			g.Go(func() error {
				r := work(v)
				select {
				case results <- r:
					return nil
				case <-gctx.Done():
					return gctx.Err()
				}
			})
		}
		g.Wait()
		close(results) // after the last sender has returned
	}()
	for r := range results {
		consume(r)
	}
	return g.Wait()
}
