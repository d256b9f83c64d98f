package fofi

// This file is the scheduling policy of Run, Stream and Map: every
// constant a scheduling decision uses, each with the one decision it
// controls, and the decisions themselves as pure functions of a snapshot
// of the run's counters, so that a table test can feed them microsecond
// work, millisecond work and a mix of both (see policy_test.go).

import "time"

// Batch sizing. A worker claims about batchTarget worth of inputs at a
// time: long enough that the cost of handing the results over (a channel
// send, a goroutine wake-up, and the wait for an idle processor to pick the
// woken goroutine up, which on a busy machine is tens of microseconds) is
// small per item, short enough that it delays no result noticeably. 25µs
// batches left CPU-bound work at 1.3x the loop's speed on two cores, 100µs
// ones at 1.7x (BenchmarkFanOut/work=cpu1us). Claims start at 1 input,
// grow after each batch to half of batchTarget's worth at once, or double
// if that is more, and fall at once when the work gets slower, so
// latency-bound work is claimed one input at a time; a batch that turns
// slow on the way gives the rest of its inputs back (see run.calls).
const (
	batchTarget = 100 * time.Microsecond
	maxBatch    = 256
	// A batch checks the clock after its first call and every
	// clockEvery calls after that, to notice that it has turned slow.
	clockEvery = 8
	// Work under tinyWork a call gets no more workers than processors.
	tinyWork = 5 * time.Microsecond
)

// Watching. A lane that has not started a call for watchPeriod is stalled.
// While claims flow, workers sample the lanes once a period, at the end of
// a claim; the watcher goroutine's timer fires only when no worker has
// sampled for watchPeriod + watchSlack, watchSlack being about the length
// of a claim of quick work, so that it does not fire while they flow. A
// call that blocks right after a sample is noticed at the latest at the
// second sample after it: 2 × watchPeriod + watchSlack = 500µs, the bound
// documented for work conservation, plus the time the watcher takes to be
// scheduled (a timer under a millisecond still fires about a millisecond
// late while every processor is idle: the runtime's netpoller waits in
// whole milliseconds).
//
// A run whose claims have stalled is heavy-tailed: its next slow call is
// likely to come soon, in a claim of quick calls again, and every period of
// its detection is a period that claim's inputs wait. So for tailWindow
// after a steal the lanes are sampled every tailPeriod instead.
const (
	watchPeriod = 200 * time.Microsecond
	watchSlack  = batchTarget
	tailPeriod  = 50 * time.Microsecond
	tailWindow  = 20 * time.Millisecond
)

// snapshot is what the policy reads of a run at one moment. The counters
// are read one by one, without a lock, so a snapshot may be slightly
// inconsistent; every decision tolerates that (the errgroup's limit is
// the hard bound on workers, the policy only estimates).
type snapshot struct {
	concurrency int64         // WithConcurrency
	procs       int64         // runtime.GOMAXPROCS(0)
	started     int64         // workers running or about to
	starting    int64         // workers started that have not claimed yet
	sleepers    int64         // workers asleep, waiting for inputs (Run and Stream)
	backlog     int64         // inputs waiting to be claimed, given-back ones included
	work        time.Duration // the last measured work time per call; 0 before the first
	slowSoFar   bool          // the first call, not finished, has run for batchTarget/4
	poolFull    bool          // the run's Pool has no slot free, or workers wait for one
	batch       int64         // the backlog worth one more worker of quick work
}

// workersNeeded is how many more workers would help: one when there is
// none yet; none while one sleeps (it is woken instead) or nothing waits;
// for slow work, one for every input waiting that no worker about to start
// will take, so that latency-bound work gets its workers at once; before
// the first call is measured, up to twice as many workers as have claimed
// an input, so that slow work has its workers after a few generations of
// start-and-claim and quick work, measured as soon as its first call
// returns, does not get them all at once; for quick work one at a time,
// once a batch's worth waits, none while the run's Pool has no slot free
// (a worker of quick work takes a whole batch with each slot, so one per
// run is its share), and for work of a few microseconds no more than
// processors, since more would only contend for them.
func workersNeeded(s snapshot) int64 {
	if s.started == 0 {
		return 1
	}
	if s.sleepers > 0 || s.backlog <= 0 || s.started >= s.concurrency {
		return 0
	}
	switch {
	case s.work >= batchTarget || s.work == 0 && s.slowSoFar:
		return min(s.backlog-s.starting, s.concurrency-s.started)
	case s.work == 0:
		return min(s.backlog-s.starting, s.started-2*s.starting)
	case s.starting > 0, s.poolFull:
		return 0
	case s.work < tinyWork && s.started >= s.procs:
		return 0
	case s.backlog >= s.batch:
		return 1
	}
	return 0
}

// nextClaim is the claim after one of k inputs that took perItem each:
// twice k, or half of batchTarget's worth if that is more, so that a worker
// whose first claims were made before the work was measured does not ramp
// up one doubling per batch, paying a hand-over for each; never more than
// batchTarget's worth, nor than limit.
func nextClaim(k int64, perItem time.Duration, limit int64) int64 {
	perItem = max(perItem, 1)
	return max(1, min(max(2*k, int64(batchTarget/(2*perItem))), int64(batchTarget/perItem), limit))
}
