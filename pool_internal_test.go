package fofi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// holders counts the goroutines holding a slot of a pool, and fails the
// test if they are ever more than the pool's limit.
type holders struct {
	t     *testing.T
	limit int64
	n     atomic.Int64
}

func (h *holders) hold() {
	if n := h.n.Add(1); n > h.limit {
		h.t.Errorf("%d slots held at once, want at most %d", n, h.limit)
	}
	runtime.Gosched() // let the others contend while the slot is held
	h.n.Add(-1)
}

// acquireOnce makes one acquire of p, with a context that another goroutine
// cancels at about the same moment in one call of five, and holds the slot
// if it got one. It reports whether the pool was closed.
func acquireOnce(t *testing.T, p *Pool, w *waiter, h *holders, rnd *rand.Rand) (closed bool) {
	ctx := context.Background()
	var cancelled sync.WaitGroup
	if rnd.IntN(5) == 0 {
		c, cancel := context.WithCancel(ctx)
		defer cancelled.Wait()
		defer cancel()
		cancelled.Go(cancel)
		ctx = c
	}
	_, err := p.acquire(ctx, w, nil, nil)
	switch {
	case err == nil:
		h.hold()
		p.release()
	case errors.Is(err, ErrClosed):
		return true
	case !errors.Is(err, context.Canceled):
		t.Errorf("acquire = %v, want nil, ErrClosed or context.Canceled", err)
	}
	return false
}

// checkQueue checks, under p.mu, what the fast path relies on: waitersFlag
// is set exactly while the queue is not empty, and then every slot is in
// use. A slot free while a worker waits is a lost wake-up.
func checkQueue(t *testing.T, p *Pool) {
	p.mu.Lock()
	s, n := p.state.Load(), p.waiters.n
	p.mu.Unlock()
	if (n > 0) != (s&waitersFlag != 0) {
		t.Errorf("%d waiters queued with state %#x: waitersFlag must be set exactly while some wait", n, s)
	}
	if n > 0 && s&^poolFlags != int64(p.limit) {
		t.Errorf("%d waiters queued while %d of %d slots are in use: a wake-up was lost", n, s&^poolFlags, p.limit)
	}
}

// TestPoolFastPathStress races acquires, releases and cancelled waits on
// pools small enough that most acquires find them full, so that the
// lock-free fast path races with waiters joining and leaving the queue,
// while another goroutine checks the queue's invariants. A slot given back
// while a waiter queues must reach it: a lost wake-up shows as a free slot
// with waiters queued, or leaves a waiter blocked and the test hangs.
// Afterwards the pool must be whole, with no flag left set.
func TestPoolFastPathStress(t *testing.T) {
	iterations := 20000
	if testing.Short() {
		iterations = 2000
	}
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			p, _ := NewPool(limit)
			h := &holders{t: t, limit: int64(limit)}
			var wg sync.WaitGroup
			done := make(chan struct{})
			var checker sync.WaitGroup
			checker.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
						checkQueue(t, p)
						runtime.Gosched()
					}
				}
			})
			for g := range 2*limit + 2 {
				wg.Go(func() {
					var w waiter
					rnd := rand.New(rand.NewPCG(uint64(g), uint64(limit)))
					for range iterations {
						if acquireOnce(t, p, &w, h, rnd) {
							t.Error("acquire = ErrClosed on a pool never closed")
							return
						}
					}
				})
			}
			wg.Wait()
			close(done)
			checker.Wait()
			if s, n := p.state.Load(), p.waiters.n; s != 0 || n != 0 || p.Waiting() != 0 {
				t.Errorf("after the stress state = %#x with %d waiters queued, Waiting() = %d, want all 0", s, n, p.Waiting())
			}
		})
	}
}

// TestPoolCloseStress closes a pool while goroutines acquire and release
// its slots: Close must return only when no slot is held, and every acquire
// after it must fail with ErrClosed.
func TestPoolCloseStress(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for round := range rounds {
		limit := 1 + round%3
		p, _ := NewPool(limit)
		h := &holders{t: t, limit: int64(limit)}
		var acquires atomic.Int64
		started := make(chan struct{})
		var wg sync.WaitGroup
		for g := range 2*limit + 2 {
			wg.Go(func() {
				var w waiter
				rnd := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				for !acquireOnce(t, p, &w, h, rnd) {
					if acquires.Add(1) == 100 {
						close(started)
					}
				}
			})
		}
		<-started
		p.Close()
		if n := h.n.Load(); n != 0 {
			t.Fatalf("round %d: Close returned with %d slots held", round, n)
		}
		if _, err := p.acquire(context.Background(), &waiter{}, nil, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("round %d: acquire after Close = %v, want ErrClosed", round, err)
		}
		wg.Wait()
		if s := p.state.Load(); s != closedFlag || p.Waiting() != 0 {
			t.Fatalf("round %d: after Close state = %#x, Waiting() = %d, want closedFlag only and 0", round, s, p.Waiting())
		}
	}
}
