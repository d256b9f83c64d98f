package bench

import (
	"context"

	"github.com/fofi-go/fofi"
)

// The shared-pool contestant: the pool is made once per sub-benchmark, with
// c slots, and every run draws its slots from it, as the runs of a server's
// requests would.
func init() {
	register(contestant{name: "fofi.Run.pool", start: func(c int) (runFunc, func()) {
		p, err := fofi.NewPool(c)
		if err != nil {
			panic(err)
		}
		return func(ctx context.Context, in source, work func(int) int, consume func(int)) error {
			return fofi.Run(ctx, in.seq, fofiWork(work), fofiConsume(consume), fofi.WithPool(p), fofi.WithConcurrency(c))
		}, func() { p.Close() }
	}})
}
