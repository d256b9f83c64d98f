// Package guide holds the code that the pages of docs/ quote. Most of it is
// docs/guide.md's one job, summing the sizes of a list of pages, written
// three ways: SizesLoop is the sequential loop, SizesNaive and SizesByHand
// the hand-written goroutine versions, SizesFofi the same job with fofi.
// Classify and PrintInOrder belong to docs/errors-and-cancellation.md and
// docs/ordering.md. The pages quote this code verbatim, TestGuideQuotesCode
// in the repository root checks that they still do, and the examples and
// tests beside it run every claim the pages make about it.
package guide

import "context"

// Fetch fetches one page and returns its size. In the guide it stands for
// any slow call: an HTTP request, a query, a subprocess.
type Fetch func(ctx context.Context, url string) (int, error)
