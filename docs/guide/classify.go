package guide

import (
	"context"
	"errors"
	"strconv"

	"github.com/fofi-go/fofi"
)

// Classify tells apart the errors a fofi run returns, as
// docs/errors-and-cancellation.md describes them. The order of the cases
// matters: a *TaskError may wrap a context error of its own (a
// WithTaskTimeout deadline, say), so it is tested before the run's context.
func Classify(err error) string {
	var te *fofi.TaskError
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, fofi.ErrInvalidOption):
		return "bad call: nothing ran" // a bug to fix, not to retry
	case errors.As(err, &te):
		return "work failed for input " + strconv.Itoa(te.Index) + ": " + te.Err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "ctx ended the run: " + err.Error()
	case errors.Is(err, fofi.ErrClosed):
		return "the pool is closed"
	default:
		return "consume failed: " + err.Error()
	}
}
