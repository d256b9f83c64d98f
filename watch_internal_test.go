package fofi

import (
	"bytes"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

// stealRecorder is a run for sample that steals as Map does (lane.steal)
// and records what it took.
type stealRecorder struct {
	from, to int
	stole    bool
}

func (s *stealRecorder) stealFrom(l *lane[int, int]) bool {
	from, to, ok := l.steal()
	if ok {
		s.from, s.to, s.stole = from, to, true
	}
	return ok
}
func (*stealRecorder) hostage(*lane[int, int]) bool { return false }
func (*stealRecorder) stalledQueue(bool) bool       { return false }
func (*stealRecorder) queued() bool                 { return false }
func (*stealRecorder) stolen()                      {}

// waitBlockedInSample waits until a goroutine is blocked on a mutex inside
// sample: the state between its read of a lane and its lock of the lane.
func waitBlockedInSample(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		for g := range bytes.SplitSeq(buf[:runtime.Stack(buf, true)], []byte("\n\n")) {
			if bytes.Contains(g, []byte("[sync.Mutex.Lock")) && bytes.Contains(g, []byte("fofi.sample[")) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatal("the sampler never blocked on the lane's mutex")
}

// TestSampleStealsOnlyTheClaimItJudged: the sampler judges a claim stalled
// from two reads of its lane a period apart, then locks the lane to steal.
// If the claim ends and its worker begins the next one in between (the
// worker was merely descheduled, and the lane's mutex is held by the worker
// or the sampler is preempted), the sampler must leave the new claim alone:
// its worker has started no call of it, and a claim stolen whole makes no
// call. Map then counted its zero calls against the completed count after
// the others had completed every input and closed finished a second time
// ("close of closed channel", seen by FuzzMap with c=64 on a Pool of 7),
// and Run sent an empty batch at the start index of the inputs stolen from
// it, which the ordered consumer could file over their real results.
func TestSampleStealsOnlyTheClaimItJudged(t *testing.T) {
	var ls lanes[int, int]
	l := ls.get()
	run := &stealRecorder{}
	l.begin(nil, 4)
	if off, ok := l.next(); off != 0 || !ok {
		t.Fatalf("next() = %d, %v, want 0, true", off, ok)
	}
	sample(&ls, run) // the baseline: the claim has started its first call

	// The next sample finds the claim unmoved, and blocks on the lane's
	// mutex, which the worker holds while it begins its next claim.
	l.mu.Lock()
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sample(&ls, run)
	}()
	waitBlockedInSample(t)
	// What the worker does: the last call returns, the claim ends (next
	// passes end) and a claim of 3 inputs begins (begin, under the mutex).
	for {
		if _, ok := l.next(); !ok {
			break
		}
	}
	l.b, l.taken = &batch[int, int]{start: 10}, 0
	l.gen.Add(1)
	l.word.Store(3)
	l.mu.Unlock()
	<-sampled

	if run.stole {
		t.Errorf("sample stole offsets [%d, %d) of a claim begun after it judged the last one stalled, want nothing stolen", run.from, run.to)
	}
	if n, e := unpack(l.word.Load()); n != 0 || e != 3 {
		t.Errorf("the new claim's lane is next=%d end=%d, want next=0 end=3", n, e)
	}
}

// TestPollJudgesStallsAPeriodApart: a lane is stalled when it has started
// no call between two samples a whole period apart. A worker samples with
// the clock reading it took at its claim's end (see poll), which is stale
// when the worker was descheduled in between: the next sample was then
// due a period after the stale reading, less than a period after the
// sample itself, and a call that had started just before the sample was
// judged stalled, its claim stolen, after running a fraction of a period.
func TestPollJudgesStallsAPeriodApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ls lanes[int, int]
		run := &stealRecorder{}
		var w watcher[int, int]
		w.init(&ls, run, time.Now())
		defer w.alarm.close(&w.mu)
		l := ls.get()
		l.begin(nil, 4)
		l.next() // call 0 starts
		time.Sleep(watchPeriod)
		w.poll(time.Now()) // the baseline
		time.Sleep(watchPeriod)
		stale := time.Now() // a worker ends a claim and reads the clock, ...
		time.Sleep(watchPeriod * 3 / 4)
		l.next()      // ... call 1 starts meanwhile, ...
		w.poll(stale) // ... and the worker samples, with its stale reading.
		time.Sleep(watchPeriod / 4)
		w.poll(time.Now()) // a quarter period after the last sample
		if run.stole {
			t.Errorf("poll stole offsets [%d, %d) of a claim whose call started %v before, want a stall judged after a whole period (%v)", run.from, run.to, watchPeriod/4, watchPeriod)
		}
	})
}

// TestSampleKeepsALateFirstCallAtRisk: a claim begun whose worker has not
// made its first call a period later is at risk unless the worker waits
// for a Pool slot. Its worker was descheduled, say, under load: a watcher
// that parked on it was never woken again, and the claim's first result,
// held once its second call blocked (on the consumer, in
// TestResultAwaitedByLaterCalls under -race and load), waited for ever.
// A worker that waits for a slot wakes the watcher once it has it; if the
// watcher parks after the wake, atRisk sees the wait over.
func TestSampleKeepsALateFirstCallAtRisk(t *testing.T) {
	for _, slotWait := range []bool{false, true} {
		var ls lanes[int, int]
		l := ls.get()
		run := &stealRecorder{}
		l.begin(nil, 2)
		l.slotWait.Store(slotWait)
		sample(&ls, run) // the baseline: moved, at risk
		risk, _ := sample(&ls, run)
		if risk == slotWait {
			t.Errorf("with slotWait %v, a claim whose first call has not started a period later: at risk %v, want %v", slotWait, risk, !slotWait)
		}
		if run.stole {
			t.Errorf("with slotWait %v, the sample stole [%d, %d) from a claim that made no call", slotWait, run.from, run.to)
		}
		if slotWait {
			var w watcher[int, int]
			w.init(&ls, run, time.Now())
			if w.atRisk() {
				t.Error("atRisk with the worker still waiting for its slot, want false")
			}
			l.slotWait.Store(false)
			if !w.atRisk() {
				t.Error("atRisk false once the worker has its slot and its claim's first call is due, want true")
			}
			w.alarm.close(&w.mu)
		}
	}
}
