package fofi

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestAlarmRings: a reset alarm rings, on the fine timer where there is
// one; a wait for a far-off ring returns once kicked, reporting done; a
// closed alarm gives its fine timer back, and a reset after that (a late
// worker's sample) is ignored.
func TestAlarmRings(t *testing.T) {
	var mu sync.Mutex
	var a alarm
	a.init()
	done := make(chan struct{})
	mu.Lock()
	a.reset(100 * time.Microsecond)
	mu.Unlock()
	t0 := time.Now()
	if !a.wait(&mu, done) {
		t.Fatal("wait reported done before done was closed")
	}
	if d := time.Since(t0); d < 100*time.Microsecond {
		t.Errorf("the alarm rang after %v, set for 100µs", d)
	}
	if fineTimersWork && (a.coarse || a.fine == nil) {
		t.Error("the alarm fell back to the runtime timer outside a synctest bubble")
	}

	mu.Lock()
	a.reset(time.Hour)
	mu.Unlock()
	returned := make(chan bool)
	go func() { returned <- a.wait(&mu, done) }()
	close(done)
	a.kick(&mu)
	if <-returned {
		t.Error("a kicked wait with done closed reported true")
	}

	fine := a.fine
	a.close(&mu)
	if a.fine != nil || !a.closed {
		t.Error("close kept the fine timer")
	}
	mu.Lock()
	a.reset(time.Millisecond) // ignored: fine may be another run's now
	mu.Unlock()
	if fine != nil && a.fine != nil {
		t.Error("a reset after close took a fine timer")
	}
}

// TestAlarmInBubble: in a testing/synctest bubble the first wait notices
// that the clock stood still and falls back to the runtime timer, on which
// the watcher is durably blocked: synctest.Wait returns while it waits, and
// it rings after the bubble's time has moved on.
func TestAlarmInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var a alarm
		a.init()
		defer a.close(&mu)
		done := make(chan struct{})
		mu.Lock()
		a.reset(time.Millisecond)
		mu.Unlock()
		a.wait(&mu, done) // on the fine timer, in real time, if there is one
		if !a.coarse {
			t.Fatal("the alarm kept a fine timer in a synctest bubble")
		}
		mu.Lock()
		a.reset(time.Second)
		mu.Unlock()
		rang := make(chan time.Time)
		go func() {
			a.wait(&mu, done)
			rang <- time.Now()
		}()
		t0 := time.Now()
		synctest.Wait() // durably blocked on the bubble's timer
		if got := (<-rang).Sub(t0); got != time.Second {
			t.Errorf("the alarm rang after %v of the bubble's time, set for 1s", got)
		}
	})
}

// TestAlarmFineTimersBounded: once maxFine alarms hold a fine timer, the
// next takes the runtime timer instead of another file descriptor, and a
// fine timer given back is counted back.
func TestAlarmFineTimersBounded(t *testing.T) {
	if !fineTimersWork {
		t.Skip("no fine timers here")
	}
	var mu sync.Mutex
	var held []*alarm
	defer func() {
		for _, a := range held {
			a.close(&mu)
		}
	}()
	base := fineInUse.Load()
	for range maxFine - base {
		a := new(alarm)
		a.init()
		mu.Lock()
		a.reset(time.Hour)
		mu.Unlock()
		held = append(held, a)
	}
	var extra alarm
	extra.init()
	mu.Lock()
	extra.reset(time.Hour)
	mu.Unlock()
	if !extra.coarse || extra.fine != nil {
		t.Errorf("alarm %d took a fine timer, want the runtime timer beyond %d", maxFine+1, maxFine)
	}
	extra.close(&mu)
	held[0].close(&mu)
	held = held[1:]
	if n := fineInUse.Load(); n != maxFine-1 {
		t.Errorf("%d fine timers in use after one was given back, want %d", n, maxFine-1)
	}
}
