package guide

import (
	"context"
	"slices"

	"github.com/fofi-go/fofi"
)

// SizesFofi is SizesLoop made concurrent with fofi.
func SizesFofi(ctx context.Context, urls []string, fetch Fetch) (int, error) {
	total := 0
	err := fofi.Run(ctx, slices.Values(urls), fetch, func(size int) error {
		total += size // consume runs on this goroutine, one result at a time
		return nil
	}, fofi.WithConcurrency(4))
	if err != nil {
		return 0, err
	}
	return total, nil
}
