package bench

import (
	"context"

	"github.com/samber/lo/parallel"
)

func init() {
	// lo's parallel.Map has no concurrency limit: it starts one goroutine
	// per element at once, so c does not apply. The correctness test checks
	// that the gauge sees it go past c.
	register(contestant{name: "lo.parallel.Map", ordered: true, unbounded: true, slice: true, start: plain(
		func(_ context.Context, in source, _ int, work func(int) int, consume func(int)) error {
			for _, r := range parallel.Map(in.slice(), func(v int, _ int) int { return work(v) }) {
				consume(r)
			}
			return nil
		})})
}
