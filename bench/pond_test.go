package bench

import (
	"context"
	"sync"

	"github.com/alitto/pond/v2"
)

// pond's pools are long-lived: made once per sub-benchmark (start), used by
// every run. They keep pond's defaults, among them an unbounded task queue:
// submitting never blocks, so the whole input is queued as tasks at once
// (pond.WithQueueSize bounds it).
func init() {
	register(
		// Pool.Go per input; workers send results on a channel.
		contestant{name: "pond.Pool", start: func(c int) (runFunc, func()) {
			p := pond.NewPool(c)
			return func(_ context.Context, in source, work func(int) int, consume func(int)) error {
				results := make(chan int, c)
				var submitErr error
				go func() {
					var tasks sync.WaitGroup
					for v := range in.seq {
						tasks.Add(1)
						if err := p.Go(func() { results <- work(v); tasks.Done() }); err != nil {
							tasks.Done()
							submitErr = err
							break
						}
					}
					tasks.Wait()
					close(results) // after the last task has sent
				}()
				for r := range results {
					consume(r)
				}
				return submitErr // written before close(results)
			}, p.StopAndWait
		}},
		// A result group: Submit per input, Wait returns every result, in
		// input order.
		contestant{name: "pond.ResultGroup", ordered: true, start: func(c int) (runFunc, func()) {
			p := pond.NewResultPool[int](c)
			return func(_ context.Context, in source, work func(int) int, consume func(int)) error {
				g := p.NewGroup()
				for v := range in.seq {
					g.Submit(func() int { return work(v) })
				}
				out, err := g.Wait()
				for _, r := range out {
					consume(r)
				}
				return err
			}, p.StopAndWait
		}},
	)
}
