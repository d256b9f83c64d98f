package fofi

import (
	"testing"
	"time"
)

// TestNextClaim pins the claim sizes the workers of Run, Stream and Map
// grow by: after one measured batch of quick work, half of batchTarget's
// worth at once rather than a doubling per batch; doubling beyond that, up
// to batchTarget's worth; one input at a time for slow work; never above
// the limit.
func TestNextClaim(t *testing.T) {
	cases := []struct {
		k       int64
		perItem time.Duration
		limit   int64
		want    int64
	}{
		{1, time.Microsecond, 256, 50},         // measured quick: half of 100µs at once
		{50, time.Microsecond, 256, 100},       // then doubling, capped at 100µs worth
		{100, time.Microsecond, 256, 100},      // and staying there
		{1, 0, 256, 256},                       // too quick to measure: the limit
		{1, 10 * time.Microsecond, 256, 5},     // half of 10 calls
		{8, 10 * time.Microsecond, 256, 10},    // 16, capped at 10 calls
		{1, 60 * time.Microsecond, 256, 1},     // slower than half the target: one at a time
		{4, time.Millisecond, 256, 1},          // turned slow: down to one at once
		{1, time.Microsecond, 20, 20},          // the limit wins
		{1, time.Microsecond, 0, 1},            // at least one
		{200, 100 * time.Nanosecond, 256, 256}, // never above the limit
	}
	for _, c := range cases {
		if got := nextClaim(c.k, c.perItem, c.limit); got != c.want {
			t.Errorf("nextClaim(%d, %v, %d) = %d, want %d", c.k, c.perItem, c.limit, got, c.want)
		}
	}
}
