package fofi

import (
	"sync"
	"sync/atomic"
	"time"
)

// alarm is the watcher goroutine's timer. A runtime timer under a
// millisecond fires about a millisecond late on Linux while every
// processor is idle, because the netpoller, which the runtime then sleeps
// in, takes its timeout in whole milliseconds; and every processor is idle
// exactly when every worker's call blocks, which is when the watcher must
// not be late. So on Linux the alarm is a timerfd that the netpoller
// waits on, which wakes it on time (see fineTimer); elsewhere, and in a
// testing/synctest bubble, it is a runtime timer.
//
// reset and stop are called under the watcher's mu; wait only by the
// watcher goroutine, without it.
type alarm struct {
	timer   *time.Timer
	fine    *fineTimer // nil until the first reset, and for good once coarse
	coarse  bool       // the runtime timer is the alarm
	closed  bool       // the watcher goroutine has returned
	waiting bool       // the watcher goroutine waits on fine
	armed   bool       // fine is set to ring
	kicked  bool       // fine rang for the run's end: no reset may re-arm it
	due     time.Time  // when fine is to ring; zero: not set
}

// arm sets the fine timer to ring in d, or disarms it for 0. Setting it
// also drops an expiry nobody has read. mu is held.
func (a *alarm) arm(d time.Duration) {
	if a.kicked && d != 1 {
		return // a late worker's sample must not take the kick back
	}
	a.fine.set(d)
	a.armed = d > 0
}

// fineTimers keeps the fine timers of runs that have ended, for the next
// runs: a timerfd costs a few system calls to make. One that the collector
// drops is closed by its os.File's cleanup.
var fineTimers sync.Pool

// A fine timer is a file descriptor, which a process has a limited number
// of; runs beyond maxFine at once take the runtime timer, so that a
// program running thousands of runs at once does not spend its
// descriptors on them.
const maxFine = 64

var fineInUse atomic.Int32 // fine timers held by alarms

// takeFine returns a fine timer for an alarm, or nil if none may be had.
func takeFine() *fineTimer {
	if fineInUse.Add(1) > maxFine {
		fineInUse.Add(-1)
		return nil
	}
	if f, ok := fineTimers.Get().(*fineTimer); ok {
		return f
	}
	if f := newFineTimer(); f != nil {
		return f
	}
	fineInUse.Add(-1)
	return nil
}

// giveFine gives back a fine timer an alarm held.
func giveFine(f *fineTimer) {
	fineTimers.Put(f)
	fineInUse.Add(-1)
}

// dropFine closes a fine timer an alarm held, instead of giving it back.
func dropFine(f *fineTimer) {
	f.close()
	fineInUse.Add(-1)
}

func (a *alarm) init() {
	a.timer = time.NewTimer(time.Hour)
	a.timer.Stop()
	a.coarse = !fineTimersWork
}

// reset sets the alarm to ring in d.
func (a *alarm) reset(d time.Duration) {
	if a.closed {
		return // the fine timer may be another run's by now
	}
	if !a.coarse && a.fine == nil {
		if a.fine = takeFine(); a.fine == nil {
			a.coarse = true
		}
	}
	if a.coarse {
		a.timer.Reset(d)
		return
	}
	// The fine timer is armed only while the watcher waits on it. One
	// that rings for nobody still wakes a thread in the netpoller, which
	// then waits for the runtime's next timer anew, in whole milliseconds
	// rounded up: every goroutine's sleep that ends within a millisecond
	// would end up to a millisecond late (1ms sleeps at c=50 took 15%
	// longer).
	a.due = time.Now().Add(d)
	if a.waiting {
		a.arm(max(d, 2)) // 0 would disarm it, 1 is the kick's
	}
}

// stop disarms the alarm.
func (a *alarm) stop() {
	if a.coarse || a.fine == nil {
		a.timer.Stop()
		return
	}
	a.due = time.Time{}
	if a.armed && !a.closed {
		a.arm(0) // armed by a reset that raced with the end of a wait, say
	}
}

// wait returns when the alarm rings, or early, and reports false when done
// is closed. mu is the watcher's, which guards the alarm's fields; wait
// takes it for the decisions it makes.
func (a *alarm) wait(mu *sync.Mutex, done <-chan struct{}) bool {
	mu.Lock()
	fine := a.fine
	if a.coarse || fine == nil {
		mu.Unlock()
		select {
		case <-a.timer.C:
			return true
		case <-done:
			return false
		}
	}
	t := time.Now()
	if !a.due.IsZero() {
		a.arm(max(a.due.Sub(t), 2))
	}
	a.waiting = true
	mu.Unlock()
	// kick, called after done is closed, rings the timer if it saw
	// waiting set; otherwise this sees done closed.
	select {
	case <-done:
		mu.Lock()
		a.waiting = false
		mu.Unlock()
		return false
	default:
	}
	ok := fine.wait()
	mu.Lock()
	a.waiting = false
	mu.Unlock()
	select {
	case <-done:
		return false
	default:
	}
	if !ok || time.Now() == t {
		// The read failed, or the clock stood still while the
		// goroutine waited outside the runtime: a testing/synctest
		// bubble's clock, in which the watcher must wait on a timer of
		// the bubble to be durably blocked. From now on it does.
		mu.Lock()
		a.coarse, a.fine, a.armed = true, nil, false
		fine.set(0)
		if ok {
			giveFine(fine)
		} else {
			dropFine(fine) // broken: no other run should take it
		}
		mu.Unlock()
	}
	return true // the caller checks the time
}

// kick makes a wait under way return, for the watcher goroutine to see
// done closed. It is called after done is closed.
func (a *alarm) kick(mu *sync.Mutex) {
	mu.Lock()
	if a.fine != nil && a.waiting && !a.closed {
		a.kicked = true
		a.arm(1)
	}
	mu.Unlock()
}

// close gives the fine timer back, once the watcher goroutine has
// returned; no reset touches it after.
func (a *alarm) close(mu *sync.Mutex) {
	mu.Lock()
	defer mu.Unlock()
	a.timer.Stop()
	a.closed = true
	if a.fine != nil {
		a.fine.set(0) // which also drops an expiry nobody read
		giveFine(a.fine)
		a.fine = nil
	}
}
