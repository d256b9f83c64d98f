package bench

import (
	"context"

	"github.com/fofi-go/fofi"
)

func init() {
	register(
		contestant{name: "fofi.Run", start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return fofi.Run(ctx, in.seq, fofiWork(work), fofiConsume(consume), fofi.WithConcurrency(c))
		})},
		contestant{name: "fofi.Run.ordered", ordered: true, start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return fofi.Run(ctx, in.seq, fofiWork(work), fofiConsume(consume), fofi.WithConcurrency(c), fofi.WithOrdered())
		})},
		contestant{name: "fofi.Stream", start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			for v, err := range fofi.Stream(ctx, in.seq, fofiWork(work), fofi.WithConcurrency(c)) {
				if err != nil {
					return err
				}
				consume(v)
			}
			return nil
		})},
		contestant{name: "fofi.Map", ordered: true, slice: true, start: plain(func(ctx context.Context, in source, c int, work func(int) int, consume func(int)) error {
			out, err := fofi.Map(ctx, in.slice(), fofiWork(work), fofi.WithConcurrency(c))
			for _, r := range out {
				consume(r)
			}
			return err
		})},
	)
}

func fofiWork(work func(int) int) func(context.Context, int) (int, error) {
	return func(_ context.Context, v int) (int, error) { return work(v), nil }
}

func fofiConsume(consume func(int)) func(int) error {
	return func(v int) error { consume(v); return nil }
}
