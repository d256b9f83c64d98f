package bench

import (
	"context"

	"github.com/sourcegraph/conc/iter"
	"github.com/sourcegraph/conc/pool"
	"github.com/sourcegraph/conc/stream"
)

func init() {
	register(
		// iter.Map takes a slice and returns one, in input order.
		contestant{name: "conc.iter.Map", ordered: true, slice: true, start: plain(
			func(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
				out := iter.Mapper[int, int]{MaxGoroutines: c}.Map(in.slice(), func(v *int) int { return work(*v) })
				for _, r := range out {
					consume(r)
				}
				return nil
			})},
		// pool.ResultPool: Go blocks while c tasks run, so the input
		// streams, but Wait returns every result at once, in completion
		// order.
		contestant{name: "conc.pool.ResultPool", start: plain(
			func(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
				p := pool.NewWithResults[int]().WithMaxGoroutines(c)
				for v := range in.seq {
					p.Go(func() int { return work(v) })
				}
				for _, r := range p.Wait() {
					consume(r)
				}
				return nil
			})},
		// stream.Stream: each task returns a callback; the callbacks run
		// one at a time, in submission order, on the stream's own
		// goroutine. That goroutine is the consumer here.
		contestant{name: "conc.stream", ordered: true, start: plain(
			func(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
				s := stream.New().WithMaxGoroutines(c)
				for v := range in.seq {
					s.Go(func() stream.Callback {
						r := work(v)
						return func() { consume(r) }
					})
				}
				s.Wait()
				return nil
			})},
	)
}
