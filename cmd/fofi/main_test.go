package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The tests that involve time run in a synctest bubble: the producer and
// consumer timers run on a fake clock, so wall times are exact, the tests
// take no real time, and a goroutine left blocked fails the test.

// runDemo calls run with args and returns the exit status and the output.
func runDemo(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errOut strings.Builder
	code = run(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func TestTrace(t *testing.T) {
	const jobs = 6
	base := []string{"-jobs", fmt.Sprint(jobs), "-concurrency", "3", "-work", "1ms-2ms", "-consume", "1ms"}
	for _, tc := range []struct {
		name    string
		args    []string
		ordered bool
	}{
		{"completion order", nil, false},
		{"ordered", []string{"-ordered"}, true},
		{"no buffer", []string{"-buffer", "0"}, false},
		{"one producer", []string{"-concurrency", "1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				args := append(slices.Clone(base), tc.args...)
				code, stdout, stderr := runDemo(t.Context(), args...)
				if code != 0 {
					t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, stderr)
				}
				got := lines(stdout)
				if got[0] != "starting fofi processing" {
					t.Errorf("first line = %q, want %q", got[0], "starting fofi processing")
				}
				n := len(got)
				if got[n-2] != "consumer done" || !strings.HasPrefix(got[n-1], "fofi processing finished in ") {
					t.Errorf("last lines = %q, want consumer done, fofi processing finished in ...", got[n-2:])
				}
				var consumed []int
				for job := 1; job <= jobs; job++ {
					// Every step of every job appears once, in this order.
					prev := -1
					for _, step := range []string{"producer processing", "producer wrote", "consumer processing", "consumer processed"} {
						line := fmt.Sprintf("%s %d", step, job)
						i := slices.Index(got, line)
						if i < 0 || slices.Index(got[i+1:], line) >= 0 {
							t.Fatalf("trace has %q %d times, want once; trace:\n%s", line, count(got, line), stdout)
						}
						if i < prev {
							t.Errorf("%q comes before the previous step of job %d", line, job)
						}
						prev = i
						if step == "consumer processing" {
							consumed = append(consumed, i)
						}
					}
				}
				if tc.ordered && !slices.IsSorted(consumed) {
					t.Errorf("consumer lines are out of job order:\n%s", stdout)
				}
			})
		})
	}
}

func count(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}

func TestQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		code, stdout, stderr := runDemo(t.Context(), "-quiet", "-jobs", "3", "-work", "1ms-2ms", "-consume", "0s")
		if code != 0 {
			t.Fatalf("run(-quiet) = %d, want 0; stderr:\n%s", code, stderr)
		}
		got := lines(stdout)
		if len(got) != 3 || got[0] != "starting fofi processing" || got[1] != "consumer done" ||
			!strings.HasPrefix(got[2], "fofi processing finished in ") {
			t.Errorf("run(-quiet) printed %q, want only the starting, consumer done and finished lines", got)
		}
	})
}

func TestCompare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Four producers of exactly 1s: 4s in a loop, 1s with fofi.
		code, stdout, stderr := runDemo(t.Context(),
			"-compare", "-quiet", "-jobs", "4", "-concurrency", "4", "-work", "1s", "-consume", "0s")
		if code != 0 {
			t.Fatalf("run(-compare) = %d, want 0; stderr:\n%s", code, stderr)
		}
		got := lines(stdout)
		want := []string{"sequential loop: 4s", "fofi, concurrency 4: 1s", "speedup: 4.00x"}
		if tail := got[max(len(got)-3, 0):]; !slices.Equal(tail, want) {
			t.Errorf("run(-compare) ends with %q, want %q; output:\n%s", tail, want, stdout)
		}
		if last := got[len(got)-1]; !regexp.MustCompile(`^speedup: [0-9]+\.[0-9]{2}x$`).MatchString(last) {
			t.Errorf("last line = %q, want speedup: N.NNx", last)
		}
	})
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stderr
	}{
		{[]string{"-jobs", "-1"}, []string{"-jobs", `"-1"`}},
		{[]string{"-jobs", "many"}, []string{"-jobs", `"many"`}},
		{[]string{"-concurrency", "0"}, []string{"-concurrency", `"0"`}},
		{[]string{"-buffer", "-1"}, []string{"-buffer", `"-1"`}},
		{[]string{"-work", "3s-1s"}, []string{"-work", `"3s-1s"`, "greater"}},
		{[]string{"-work", "-1s"}, []string{"-work", `"-1s"`, "negative"}},
		{[]string{"-work", "-1s-2s"}, []string{"-work", `"-1s-2s"`, "negative"}},
		{[]string{"-work", "1s-"}, []string{"-work", `"1s-"`}},
		{[]string{"-work", "slow"}, []string{"-work", `"slow"`}},
		{[]string{"-consume", "-5ms"}, []string{"-consume", `"-5ms"`}},
		{[]string{"-jobs", "3", "extra"}, []string{`"extra"`}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runDemo(t.Context(), tc.args...)
			if code != 2 {
				t.Errorf("run(%q) = %d, want 2", tc.args, code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("run(%q) printed %q to stdout, want nothing", tc.args, stdout)
			}
		})
	}
}

func TestFofiError(t *testing.T) {
	// Beyond fofi's limit on WithConcurrency: fofi rejects it, not the flag.
	code, _, stderr := runDemo(t.Context(), "-concurrency", "1099511627776", "-jobs", "1", "-work", "1ms")
	if code != 1 || !strings.HasPrefix(stderr, "fofi: WithConcurrency(1099511627776)") {
		t.Errorf("run(-concurrency 1<<40) = %d, stderr %q; want 1, fofi: WithConcurrency(1099511627776)...", code, stderr)
	}
}

// cancelWriter collects the trace and, the first time a line contains
// trigger, cancels and notes the time. run writes to it under its tracer's
// mutex.
type cancelWriter struct {
	strings.Builder
	trigger   string
	cancel    context.CancelFunc
	cancelled time.Time
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	if w.cancelled.IsZero() && strings.Contains(string(p), w.trigger) {
		w.cancel()
		w.cancelled = time.Now()
	}
	return w.Builder.Write(p)
}

func TestInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		trigger string // cancel when the trace shows this; "" cancels before run
	}{
		{"before the run", []string{"-work", "1h"}, ""},
		{"while producing", []string{"-work", "1h"}, "producer processing 3"},
		{"while consuming", []string{"-work", "1ms", "-consume", "1h"}, "consumer processing"},
		{"sequential loop", []string{"-compare", "-work", "1h"}, "producer processing 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				stdout := &cancelWriter{trigger: tc.trigger, cancel: cancel}
				if tc.trigger == "" {
					cancel()
					stdout.cancelled = time.Now()
				}
				var stderr strings.Builder
				code := run(ctx, tc.args, stdout, &stderr)
				// The clock is fake: it moves only when every goroutine
				// waits for a timer, so a run that waited for any
				// producer or consumer after the cancellation took an
				// hour more.
				if stdout.cancelled.IsZero() {
					t.Fatalf("the trace never showed %q:\n%s", tc.trigger, stdout.String())
				}
				if elapsed := time.Since(stdout.cancelled); elapsed != 0 {
					t.Errorf("run returned %v after the cancellation, want at once", elapsed)
				}
				if code != 130 || !strings.HasPrefix(stderr.String(), "interrupted") {
					t.Errorf("run = %d, stderr %q; want 130, interrupted...", code, stderr.String())
				}
				if out := stdout.String(); strings.Contains(out, "consumer done") {
					t.Errorf("an interrupted run printed consumer done:\n%s", out)
				}
			})
		})
	}
}
