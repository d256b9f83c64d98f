package fofi

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func spinX(_ context.Context, x int) (int, error) {
	f := float64(x)
	for range 110 {
		f = math.Sqrt(f*f + 1)
	}
	return int(f), nil
}

var bufN = 2048
func TestDebugPar(t *testing.T) {
	const N = 200000
	in := make([]int, N)
	for i := range in {
		in[i] = i
	}
	out := make([]int, N)
	for range 3 {
		t0 := time.Now()
		for i := range N {
			out[i], _ = spinX(nil, i)
		}
		seq := time.Since(t0)
		t0 = time.Now()
		var wg sync.WaitGroup
		var next atomic.Int64
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					e := next.Add(26)
					s := e - 26
					if s >= N {
						return
					}
					e = min(e, N)
					for i := s; i < e; i++ {
						out[i], _ = spinX(nil, int(i))
					}
				}
			}()
		}
		wg.Wait()
		raw := time.Since(t0)
		t0 = time.Now()
		Map(context.Background(), in, spinX, WithConcurrency(2))
		mp := time.Since(t0)
		t0 = time.Now()
		Run(context.Background(), func(y func(int) bool) {
			for i := range N {
				if !y(i) {
					return
				}
			}
		}, spinX, func(v int) error { return nil }, WithConcurrency(2), WithBuffer(bufN))
		run := time.Since(t0)
		t.Log(seq, raw, mp, run)
	}
}
