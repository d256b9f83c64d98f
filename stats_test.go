package fofi_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fofi-go/fofi"
)

func sleepWork(d time.Duration) func(context.Context, int) (int, error) {
	return func(ctx context.Context, x int) (int, error) {
		time.Sleep(d)
		return x, nil
	}
}

func sleepConsume(d time.Duration) func(int) error {
	return func(int) error { time.Sleep(d); return nil }
}

// slowLimiter lets a call through every d.
type slowLimiter struct{ d time.Duration }

func (l slowLimiter) Wait(ctx context.Context) error {
	select {
	case <-time.After(l.d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestStatsVerdicts produces each diagnosis with a workload made for it,
// under fake time, and checks the figures behind it.
func TestStatsVerdicts(t *testing.T) {
	cases := []struct {
		name    string
		verdict string
		run     func(t *testing.T, s *fofi.Stats) error
		check   func(t *testing.T, s fofi.Stats)
	}{
		{"slow consumer", "Consumer-bound",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(time.Millisecond), sleepConsume(10*time.Millisecond),
					fofi.WithConcurrency(4), fofi.WithBuffer(4), fofi.WithStats(s))
			},
			func(t *testing.T, s fofi.Stats) {
				if s.Consume != time.Second || s.MaxBuffered > 4+4+1 {
					t.Errorf("Consume = %v, MaxBuffered = %d, want 1s and at most concurrency+buffer+1", s.Consume, s.MaxBuffered)
				}
			}},
		{"slow work, every slot busy", "every work slot busy",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(10*time.Millisecond), func(int) error { return nil },
					fofi.WithConcurrency(2), fofi.WithStats(s))
			},
			func(t *testing.T, s fofi.Stats) {
				if s.Wall != 500*time.Millisecond || s.Work != time.Second || s.MaxInFlight != 2 {
					t.Errorf("Wall, Work, MaxInFlight = %v, %v, %d, want 500ms, 1s, 2", s.Wall, s.Work, s.MaxInFlight)
				}
			}},
		{"slow inputs", "the inputs came too slowly",
			func(t *testing.T, s *fofi.Stats) error {
				slowInputs := func(yield func(int) bool) {
					for i := range 20 {
						time.Sleep(10 * time.Millisecond)
						if !yield(i) {
							return
						}
					}
				}
				return fofi.Run(t.Context(), slowInputs, sleepWork(time.Millisecond), func(int) error { return nil },
					fofi.WithConcurrency(4), fofi.WithStats(s))
			},
			func(t *testing.T, s fofi.Stats) {
				if s.MaxInFlight != 1 {
					t.Errorf("MaxInFlight = %d, want 1", s.MaxInFlight)
				}
			}},
		{"matched", "Balanced",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(time.Millisecond), sleepConsume(time.Millisecond),
					fofi.WithConcurrency(1), fofi.WithBuffer(1), fofi.WithStats(s))
			}, nil},
		{"limiter", "Limited by the Limiter",
			func(t *testing.T, s *fofi.Stats) error {
				_, err := fofi.Map(t.Context(), make([]int, 20), sleepWork(time.Millisecond),
					fofi.WithLimiter(slowLimiter{10 * time.Millisecond}), fofi.WithStats(s))
				return err
			},
			func(t *testing.T, s fofi.Stats) {
				if s.Limited != 200*time.Millisecond || s.Work != 20*time.Millisecond {
					t.Errorf("Limited, Work = %v, %v, want 200ms and 20ms (the waits are not work)", s.Limited, s.Work)
				}
			}},
		{"pool", "Limited by the Pool",
			func(t *testing.T, s *fofi.Stats) error {
				p, _ := fofi.NewPool(1)
				ctx, cancel := context.WithCancel(t.Context())
				other := make(chan struct{})
				go func() {
					defer close(other)
					fofi.Map(ctx, make([]int, 1000), sleepWork(10*time.Millisecond), fofi.WithPool(p))
				}()
				time.Sleep(time.Millisecond)
				_, err := fofi.Map(t.Context(), make([]int, 10), sleepWork(time.Millisecond),
					fofi.WithPool(p), fofi.WithConcurrency(1), fofi.WithStats(s))
				cancel()
				<-other
				return err
			},
			func(t *testing.T, s fofi.Stats) {
				if s.PoolWait <= s.Work {
					t.Errorf("PoolWait = %v, Work = %v, want the wait longer", s.PoolWait, s.Work)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s fofi.Stats
				if err := c.run(t, &s); err != nil {
					t.Fatal(err)
				}
				if got := s.String(); !strings.Contains(got, c.verdict) {
					t.Errorf("Stats.String() = %q, want the verdict %q", got, c.verdict)
				}
				if s.Started == 0 || s.Succeeded != s.Started || s.Failed != 0 {
					t.Errorf("Started, Succeeded, Failed = %d, %d, %d", s.Started, s.Succeeded, s.Failed)
				}
				if c.check != nil {
					c.check(t, s)
				}
				t.Log(s.String())
			})
		})
	}
}

// TestStatsEveryExitPath checks that the Stats are filled in however the
// run ends.
func TestStatsEveryExitPath(t *testing.T) {
	exits := map[string]func(ctx context.Context, x int) (int, error){
		"success": func(ctx context.Context, x int) (int, error) { time.Sleep(time.Millisecond); return x, nil },
		"error": func(ctx context.Context, x int) (int, error) {
			time.Sleep(time.Millisecond)
			if x == 5 {
				return 0, errors.New("fail")
			}
			return x, nil
		},
		"panic": func(ctx context.Context, x int) (int, error) {
			time.Sleep(time.Millisecond)
			if x == 5 {
				panic("boom")
			}
			return x, nil
		},
		"goexit": func(ctx context.Context, x int) (int, error) {
			time.Sleep(time.Millisecond)
			if x == 5 {
				runtime.Goexit()
			}
			return x, nil
		},
		"cancel": func(ctx context.Context, x int) (int, error) {
			select {
			case <-time.After(time.Millisecond):
				return x, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		},
	}
	for _, e := range entries {
		for name, work := range exits {
			t.Run(e.name+"/"+name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var s fofi.Stats
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if name == "cancel" {
						time.AfterFunc(10*time.Millisecond+time.Microsecond, cancel)
					}
					done := make(chan struct{})
					go func() {
						defer close(done)
						defer func() { recover() }()
						e.run(ctx, 100, work, fofi.WithConcurrency(2), fofi.WithStats(&s))
					}()
					<-done
					if s.Started == 0 || s.Wall == 0 || s.Concurrency != 2 || s.MaxInFlight != 2 {
						t.Errorf("Stats after %s = %+v, want them filled in", name, s)
					}
					if name == "success" && (s.Succeeded != 100 || s.Wall != 50*time.Millisecond) {
						t.Errorf("Succeeded, Wall = %d, %v, want 100, 50ms", s.Succeeded, s.Wall)
					}
					if name == "error" && s.Failed != 1 {
						t.Errorf("Failed = %d, want 1", s.Failed)
					}
				})
			})
		}
	}
}

func TestProgress(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				caller := goid()
				var reports []fofi.Progress
				var inConsume atomic.Bool
				progress := func(p fofi.Progress) {
					if goid() != caller {
						t.Error("progress called on another goroutine than the caller's")
					}
					if inConsume.Load() {
						t.Error("progress called during consume")
					}
					reports = append(reports, p)
				}
				_, err := e.run(t.Context(), 50, func(_ context.Context, x int) (int, error) {
					time.Sleep(10 * time.Millisecond)
					return x, nil
				}, fofi.WithConcurrency(1), fofi.WithProgress(100*time.Millisecond, progress))
				if err != nil {
					t.Fatal(err)
				}
				if len(reports) < 5 || len(reports) > 6 {
					t.Fatalf("%d progress reports over 500ms every 100ms, want 5 or 6: %+v", len(reports), reports)
				}
				for i := 1; i < len(reports)-1; i++ {
					if d := reports[i].Elapsed - reports[i-1].Elapsed; d < 100*time.Millisecond {
						t.Errorf("reports %d and %d %v apart, want at least 100ms", i-1, i, d)
					}
				}
				last := reports[len(reports)-1]
				if last.Done != 50 || last.InFlight != 0 || last.Elapsed != 500*time.Millisecond {
					t.Errorf("final report %+v, want Done 50, InFlight 0, Elapsed 500ms", last)
				}
			})
		})
	}
}

func TestStatsBadOptions(t *testing.T) {
	for _, c := range []struct {
		opt  fofi.Option
		want string
	}{
		{fofi.WithStats(nil), "fofi: WithStats(nil): stats must not be nil"},
		{fofi.WithProgress(0, func(fofi.Progress) {}), "fofi: WithProgress(0s, fn): interval must be positive"},
		{fofi.WithProgress(time.Second, nil), "fofi: WithProgress(1s, nil): fn must not be nil"},
	} {
		_, err := fofi.Map(t.Context(), []int{1}, func(_ context.Context, x int) (int, error) { return x, nil }, c.opt)
		if !errors.Is(err, fofi.ErrInvalidOption) || err.Error() != c.want {
			t.Errorf("Map = %v, want %q", err, c.want)
		}
	}
}
