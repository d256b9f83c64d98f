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

// TestWorkersNeeded feeds the policy snapshots of runs doing trivial,
// microsecond and millisecond work, and a heavy-tailed mix, at the moments
// it is asked: a feeder pushing, a worker claiming, the watcher stealing.
func TestWorkersNeeded(t *testing.T) {
	us, ms := time.Microsecond, time.Millisecond
	base := snapshot{concurrency: 8, procs: 2, started: 1, batch: 64}
	with := func(f func(*snapshot)) snapshot { s := base; f(&s); return s }
	cases := []struct {
		name string
		s    snapshot
		want int64
	}{
		{"no worker yet", with(func(s *snapshot) { s.started = 0 }), 1},
		{"nothing waits", with(func(s *snapshot) { s.backlog = 0; s.work = ms }), 0},
		{"a worker sleeps: wake it instead", with(func(s *snapshot) { s.sleepers = 1; s.backlog = 500; s.work = ms }), 0},
		{"at the limit", with(func(s *snapshot) { s.started = 8; s.backlog = 500; s.work = ms }), 0},
		// Millisecond work: a worker per waiting input, at once.
		{"1ms calls, 3 wait", with(func(s *snapshot) { s.backlog = 3; s.work = ms }), 3},
		{"1ms calls, 500 wait", with(func(s *snapshot) { s.backlog = 500; s.work = ms }), 7},
		{"1ms calls, 2 of 3 taken by workers starting", with(func(s *snapshot) { s.started = 3; s.starting = 2; s.backlog = 3; s.work = ms }), 1},
		{"unmeasured but slow so far", with(func(s *snapshot) { s.backlog = 500; s.slowSoFar = true }), 7},
		// Not measured yet: doubling generations of start-and-claim.
		{"unmeasured, one claimed", with(func(s *snapshot) { s.backlog = 500 }), 1},
		{"unmeasured, 2 claimed, 1 starting", with(func(s *snapshot) { s.started = 3; s.starting = 1; s.backlog = 500 }), 1},
		{"unmeasured, 4 claimed", with(func(s *snapshot) { s.started = 4; s.backlog = 500 }), 4},
		// Microsecond work: one at a time, once a batch's worth waits.
		{"20µs calls, a batch waits", with(func(s *snapshot) { s.backlog = 64; s.work = 20 * us }), 1},
		{"20µs calls, less than a batch", with(func(s *snapshot) { s.backlog = 63; s.work = 20 * us }), 0},
		{"20µs calls, one starting", with(func(s *snapshot) { s.started = 2; s.starting = 1; s.backlog = 500; s.work = 20 * us }), 0},
		{"20µs calls, Pool full", with(func(s *snapshot) { s.backlog = 500; s.work = 20 * us; s.poolFull = true }), 0},
		{"1µs calls, below procs", with(func(s *snapshot) { s.backlog = 500; s.work = us }), 1},
		{"1µs calls, at procs", with(func(s *snapshot) { s.started = 2; s.backlog = 500; s.work = us }), 0},
		{"20ns calls, at procs", with(func(s *snapshot) { s.started = 2; s.backlog = 5000; s.work = 20 }), 0},
		{"20µs calls, past procs", with(func(s *snapshot) { s.started = 4; s.backlog = 500; s.work = 20 * us }), 1},
		// A heavy-tailed mix: the last claim measured quick, but a
		// stalled claim's tail was given back (counted in backlog); the
		// watcher starts a worker per given-back input itself (see
		// run.stolen), and the policy adds no more than for quick work.
		{"mix: quick measured, tail given back", with(func(s *snapshot) { s.started = 2; s.backlog = 40; s.work = us }), 0},
		{"mix: 5ms measured last", with(func(s *snapshot) { s.started = 2; s.backlog = 40; s.work = 5 * ms }), 6},
		// Map asks with batch 1: any input left is worth a worker.
		{"Map, 20µs calls, one left", with(func(s *snapshot) { s.batch = 1; s.backlog = 1; s.work = 20 * us }), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := workersNeeded(c.s); got != c.want {
				t.Errorf("workersNeeded(%+v) = %d, want %d", c.s, got, c.want)
			}
		})
	}
}
