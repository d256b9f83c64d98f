package bench

import (
	"context"
	"errors"

	"github.com/destel/rill"
)

func init() {
	register(
		contestant{name: "rill.Map", start: plain(func(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return drainRill(rill.Map(rill.FromSeq(in.seq, nil), c, rillWork(work)), consume)
		})},
		contestant{name: "rill.OrderedMap", ordered: true, start: plain(func(_ context.Context, in source, c int, work func(int) int, consume func(int)) error {
			return drainRill(rill.OrderedMap(rill.FromSeq(in.seq, nil), c, rillWork(work)), consume)
		})},
	)
}

func rillWork(work func(int) int) func(int) (int, error) {
	return func(v int) (int, error) { return work(v), nil }
}

// drainRill consumes a rill stream to the end, as rill asks: stopping early
// would leave its goroutines blocked.
func drainRill(out <-chan rill.Try[int], consume func(int)) error {
	var errs []error
	for t := range out {
		if t.Error != nil {
			errs = append(errs, t.Error)
			continue
		}
		consume(t.Value)
	}
	return errors.Join(errs...)
}
