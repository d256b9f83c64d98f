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
		verdict fofi.Verdict
		text    string // in String
		run     func(t *testing.T, s *fofi.Stats) error
		check   func(t *testing.T, s fofi.Stats)
	}{
		{"slow consumer", fofi.ConsumerBound, "Consumer-bound",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(time.Millisecond), sleepConsume(10*time.Millisecond),
					fofi.WithConcurrency(4), fofi.WithBuffer(4), fofi.WithStats(s))
			},
			func(t *testing.T, s fofi.Stats) {
				if s.Consume != time.Second || s.MaxReady > 4+4+1 {
					t.Errorf("Consume = %v, MaxReady = %d, want 1s and at most concurrency+buffer+1", s.Consume, s.MaxReady)
				}
			}},
		{"slow work, every slot busy", fofi.ProducerBound, "every work slot busy",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(10*time.Millisecond), func(int) error { return nil },
					fofi.WithConcurrency(2), fofi.WithStats(s))
			},
			func(t *testing.T, s fofi.Stats) {
				if s.Wall != 500*time.Millisecond || s.Work != time.Second || s.MaxInFlight != 2 {
					t.Errorf("Wall, Work, MaxInFlight = %v, %v, %d, want 500ms, 1s, 2", s.Wall, s.Work, s.MaxInFlight)
				}
			}},
		{"slow inputs", fofi.ProducerBound, "the inputs came too slowly",
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
		{"matched", fofi.Balanced, "Balanced",
			func(t *testing.T, s *fofi.Stats) error {
				return fofi.Run(t.Context(), seq(100), sleepWork(time.Millisecond), sleepConsume(time.Millisecond),
					fofi.WithConcurrency(1), fofi.WithBuffer(1), fofi.WithStats(s))
			}, nil},
		{"limiter", fofi.LimiterBound, "Limiter-bound",
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
		{"pool", fofi.PoolBound, "Pool-bound",
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
				if s.Verdict != c.verdict {
					t.Errorf("Verdict = %v, want %v", s.Verdict, c.verdict)
				}
				if got := s.String(); !strings.Contains(got, c.text) {
					t.Errorf("Stats.String() = %q, want the verdict %q", got, c.text)
				}
				if s.Started == 0 || s.Succeeded != s.Started || s.Failed != 0 || s.Cancelled != 0 {
					t.Errorf("Started, Succeeded, Failed, Cancelled = %d, %d, %d, %d", s.Started, s.Succeeded, s.Failed, s.Cancelled)
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
					if want := fofi.StoppedEarly; name == "success" && s.Verdict == want || name != "success" && s.Verdict != want {
						t.Errorf("Verdict after %s = %v, want StoppedEarly only for a run that stopped", name, s.Verdict)
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

// TestStatsRunsThatStartNothing checks that the Stats are filled in, and
// the final progress report made, for a run that starts no work call: an
// empty input, and a context cancelled before the call. A configuration
// error leaves both untouched.
func TestStatsRunsThatStartNothing(t *testing.T) {
	never := func(context.Context, int) (int, error) { panic("work called") }
	for _, e := range entries {
		for _, c := range []struct {
			name    string
			cancel  bool
			n       int
			opts    []fofi.Option
			verdict fofi.Verdict // 0: the Stats stay untouched
		}{
			{"empty input", false, 0, nil, fofi.Balanced},
			{"cancelled before", true, 10, nil, fofi.StoppedEarly},
			{"bad option", false, 10, []fofi.Option{fofi.WithBuffer(-1)}, 0},
		} {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if c.cancel {
						cancel()
					}
					s := fofi.Stats{Started: -1}
					var reports []fofi.Progress
					opts := append([]fofi.Option{fofi.WithConcurrency(3), fofi.WithStats(&s),
						fofi.WithProgress(time.Hour, func(p fofi.Progress) { reports = append(reports, p) })}, c.opts...)
					e.run(ctx, c.n, never, opts...)
					if c.verdict == 0 {
						if s != (fofi.Stats{Started: -1}) || len(reports) != 0 {
							t.Errorf("after a configuration error Stats = %+v, %d progress reports; want both untouched", s, len(reports))
						}
						return
					}
					if want := (fofi.Stats{Concurrency: 3, Buffer: 1024, Verdict: c.verdict}); s != want {
						t.Errorf("Stats = %+v, want %+v", s, want)
					}
					if len(reports) != 1 || reports[0].Done != 0 {
						t.Errorf("progress reports %+v, want one final report of nothing done", reports)
					}
				})
			})
		}
	}
}

// TestStatsProgressPanics checks that the Stats are filled in when the
// progress function panics, on the caller's goroutine, in the middle of
// the run.
func TestStatsProgressPanics(t *testing.T) {
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s fofi.Stats
				func() {
					defer func() {
						if r := recover(); r != "progress" {
							t.Errorf("recovered %v, want the progress function's panic", r)
						}
					}()
					e.run(t.Context(), 100, sleepWork(time.Millisecond), fofi.WithConcurrency(2), fofi.WithStats(&s),
						fofi.WithProgress(10*time.Millisecond, func(fofi.Progress) { panic("progress") }))
				}()
				if s.Started == 0 || s.Wall == 0 || s.Concurrency != 2 || s.Verdict != fofi.StoppedEarly {
					t.Errorf("Stats after a panic in the progress function = %+v, want them filled in, StoppedEarly", s)
				}
			})
		})
	}
}

// TestStatsFailedIsReported checks that Failed counts the failures the run
// reports, not the calls that fail because the stop cancelled them: one
// call fails while seven others block until the run stops.
func TestStatsFailedIsReported(t *testing.T) {
	for _, e := range entries {
		for _, continueOnError := range []bool{false, true} {
			name := e.name
			if continueOnError {
				name += "/WithContinueOnError"
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					work := func(ctx context.Context, x int) (int, error) {
						if x == 7 {
							time.Sleep(time.Millisecond)
							if continueOnError {
								// The only way to stop such a run early,
								// once the failure is recorded.
								time.AfterFunc(time.Millisecond, cancel)
							}
							return 0, errors.New("fail")
						}
						<-ctx.Done()
						return 0, ctx.Err()
					}
					var s fofi.Stats
					var last fofi.Progress
					_, err := e.run(ctx, 100, work, fofi.WithConcurrency(8), fofi.WithStats(&s),
						fofi.WithProgress(time.Hour, func(p fofi.Progress) { last = p }))
					if err == nil {
						t.Fatal("the run succeeded, want it failed")
					}
					if s.Started != 8 || s.Failed != 1 || s.Cancelled != 7 || s.Succeeded != 0 {
						t.Errorf("Started, Succeeded, Failed, Cancelled = %d, %d, %d, %d, want 8, 0, 1, 7",
							s.Started, s.Succeeded, s.Failed, s.Cancelled)
					}
					if s.Verdict != fofi.StoppedEarly {
						t.Errorf("Verdict = %v, want StoppedEarly", s.Verdict)
					}
					if got, want := s.String(), "8 work calls (1 failed, 7 cancelled by the stop)"; !strings.HasPrefix(got, want) {
						t.Errorf("String() = %q, want it to start with %q", got, want)
					}
					if last.Done != 8 || last.Failed != 1 {
						t.Errorf("final progress %+v, want Done 8, Failed 1", last)
					}
				})
			})
		}
	}
}

// TestStatsBreak checks that a loop over Stream that breaks early gets the
// verdict StoppedEarly, not a diagnosis of a run cut short.
func TestStatsBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s fofi.Stats
		for range fofi.Stream(t.Context(), seq(100), sleepWork(time.Millisecond), fofi.WithStats(&s)) {
			break
		}
		if s.Verdict != fofi.StoppedEarly {
			t.Errorf("Verdict after a break = %v, want StoppedEarly", s.Verdict)
		}
		if got := s.String(); !strings.Contains(got, "Stopped early") {
			t.Errorf("String() = %q, want it to say the run stopped early", got)
		}
	})
}

// TestStatsWords checks the one word per kind of wait: String says
// blocked, starved, ready and waits, and never "waiting"; it names the
// window, so that more ready results than the buffer read as expected.
func TestStatsWords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s fofi.Stats
		err := fofi.Run(t.Context(), seq(20), sleepWork(time.Millisecond), sleepConsume(5*time.Millisecond),
			fofi.WithConcurrency(4), fofi.WithBuffer(0), fofi.WithLimiter(slowLimiter{time.Microsecond}), fofi.WithStats(&s))
		if err != nil {
			t.Fatal(err)
		}
		got := s.String()
		for _, want := range []string{"buffer 0, a window of 5 results (at most 5 ready at once)", "workers blocked", "consumer starved", "limiter waits"} {
			if !strings.Contains(got, want) {
				t.Errorf("String() = %q, want %q in it", got, want)
			}
		}
		if strings.Contains(got, "waiting") {
			t.Errorf("String() = %q says waiting", got)
		}
	})
}

// TestStatsDefaultBuffer checks that the default buffer stays within the
// range WithBuffer accepts at every concurrency.
func TestStatsDefaultBuffer(t *testing.T) {
	for _, c := range []struct{ concurrency, buffer int }{
		{1, 1024}, {8, 1024}, {100, 12800}, {1 << 17, 1 << 24}, {1 << 24, 1 << 24},
	} {
		var s fofi.Stats
		err := fofi.Run(t.Context(), seq(1), func(_ context.Context, x int) (int, error) { return x, nil },
			func(int) error { return nil }, fofi.WithConcurrency(c.concurrency), fofi.WithStats(&s))
		if err != nil || s.Buffer != c.buffer {
			t.Errorf("Run(WithConcurrency(%d)) = %v, Stats.Buffer %d, want nil, %d", c.concurrency, err, s.Buffer, c.buffer)
		}
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[fofi.Verdict]string{
		0: "none", fofi.StoppedEarly: "stopped early", fofi.PoolBound: "pool-bound", fofi.LimiterBound: "limiter-bound",
		fofi.ConsumerBound: "consumer-bound", fofi.ProducerBound: "producer-bound", fofi.Balanced: "balanced", 99: "Verdict(99)",
	} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), got, want)
		}
	}
}
