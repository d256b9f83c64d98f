package guide

import "context"

// SizesLoop fetches the pages one after another and sums their sizes.
func SizesLoop(ctx context.Context, urls []string, fetch Fetch) (int, error) {
	total := 0
	for _, url := range urls {
		size, err := fetch(ctx, url)
		if err != nil {
			return 0, err
		}
		total += size
	}
	return total, nil
}
