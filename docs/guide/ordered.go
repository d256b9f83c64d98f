package guide

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/fofi-go/fofi"
)

// PrintInOrder fetches up to four pages at once and prints one line per
// page in the order of urls, whichever fetch finishes first.
func PrintInOrder(ctx context.Context, w io.Writer, urls []string, fetch Fetch) error {
	describe := func(ctx context.Context, url string) (string, error) {
		size, err := fetch(ctx, url)
		return fmt.Sprintf("%s: %d bytes", url, size), err
	}
	return fofi.Run(ctx, slices.Values(urls), describe, func(line string) error {
		_, err := fmt.Fprintln(w, line)
		return err
	}, fofi.WithConcurrency(4), fofi.WithOrdered())
}
