package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
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

// demoOutput runs the demo with args, fails the test unless it exits 0, and
// returns its standard output, whole and as lines.
func demoOutput(t *testing.T, args ...string) (stdout string, got []string) {
	t.Helper()
	code, stdout, stderr := runDemo(t.Context(), args...)
	if code != 0 {
		t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, stderr)
	}
	return stdout, lines(stdout)
}

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
				stdout, got := demoOutput(t, args...)
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
		_, got := demoOutput(t, "-quiet", "-jobs", "3", "-work", "1ms-2ms", "-consume", "0s")
		if len(got) != 3 || got[0] != "starting fofi processing" || got[1] != "consumer done" ||
			!strings.HasPrefix(got[2], "fofi processing finished in ") {
			t.Errorf("run(-quiet) printed %q, want only the starting, consumer done and finished lines", got)
		}
	})
}

func TestCompare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Four producers of exactly 1s: 4s in a loop, 1s with fofi.
		stdout, got := demoOutput(t,
			"-compare", "-quiet", "-jobs", "4", "-concurrency", "4", "-work", "1s", "-consume", "0s")
		if want := "the sequential loop takes about 4s: every job's producer and consumer time, one after the other"; got[0] != want {
			t.Errorf("run(-compare) starts with %q, want %q", got[0], want)
		}
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
		{[]string{"-concurrency", "0"}, []string{"-concurrency", `"0"`, "fofi: WithConcurrency(0)"}},
		// Beyond fofi's bounds: a usage error too, before anything starts.
		{[]string{"-concurrency", "99999999"}, []string{"-concurrency", `"99999999"`, "at most 16777216"}},
		{[]string{"-concurrency", "1099511627776"}, []string{"-concurrency", `"1099511627776"`}},
		{[]string{"-buffer", "-1"}, []string{"-buffer", `"-1"`}},
		{[]string{"-buffer", "99999999"}, []string{"-buffer", `"99999999"`, "at most 16777216"}},
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

// cancelWriter collects the trace and, the first time a line contains
// trigger, cancels and notes the time. run writes to it under its tracer's
// mutex.
type cancelWriter struct {
	strings.Builder
	trigger   string
	cancel    context.CancelCauseFunc
	cause     error // of the cancellation: a signal, or nil
	cancelled time.Time
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	if w.cancelled.IsZero() && strings.Contains(string(p), w.trigger) {
		w.cancel(w.cause)
		w.cancelled = time.Now()
	}
	return w.Builder.Write(p)
}

func TestInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		trigger string // cancel when the trace shows this; "" cancels before run
		cause   error  // of the cancellation
		code    int
		message string // how stderr starts
	}{
		{"before the run", []string{"-work", "1h"}, "", nil, 130, "interrupted"},
		{"while producing", []string{"-work", "1h"}, "producer processing 3", nil, 130, "interrupted"},
		{"while consuming", []string{"-work", "1ms", "-consume", "1h"}, "consumer processing", nil, 130, "interrupted"},
		{"sequential loop", []string{"-compare", "-work", "1h"}, "producer processing 1", nil, 130, "interrupted"},
		{"SIGINT", []string{"-work", "1h"}, "producer processing 3", signalled{syscall.SIGINT}, 130, "interrupted"},
		{"SIGTERM", []string{"-work", "1h"}, "producer processing 3", signalled{syscall.SIGTERM}, 143, "terminated"},
		{"SIGTERM, sequential loop", []string{"-compare", "-work", "1h"}, "producer processing 1", signalled{syscall.SIGTERM}, 143, "terminated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(t.Context())
				defer cancel(nil)
				stdout := &cancelWriter{trigger: tc.trigger, cancel: cancel, cause: tc.cause}
				if tc.trigger == "" {
					cancel(tc.cause)
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
				if code != tc.code || !strings.HasPrefix(stderr.String(), tc.message+" after ") {
					t.Errorf("run = %d, stderr %q; want %d, %s after ...", code, stderr.String(), tc.code, tc.message)
				}
				if out := stdout.String(); strings.Contains(out, "consumer done") {
					t.Errorf("an interrupted run printed consumer done:\n%s", out)
				}
			})
		})
	}
}

func TestStats(t *testing.T) {
	// The same jobs, 8 of exactly 100ms on 4 producers with no buffer, once
	// with a consumer ten times slower than a producer, once with one that
	// takes no time.
	base := []string{"-quiet", "-stats", "-jobs", "8", "-concurrency", "4", "-work", "100ms", "-buffer", "0"}
	for _, tc := range []struct {
		name    string
		args    []string
		verdict string
	}{
		{"slow consumer", []string{"-consume", "1s"}, "Consumer-bound"},
		{"fast consumer", []string{"-consume", "0s"}, "Producer-bound"},
		// -compare runs a sequential pass first: the statistics are the
		// fofi pass's alone, and come before the comparison.
		{"compare", []string{"-consume", "0s", "-compare"}, "Producer-bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				args := append(slices.Clone(base), tc.args...)
				stdout, got := demoOutput(t, args...)
				i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "stats: ") })
				if i < 1 || !strings.HasPrefix(got[i-1], "fofi processing finished in ") {
					t.Fatalf("run(%q) printed no stats line right after the finished line:\n%s", args, stdout)
				}
				want := len(got) - 1 // the last line
				if slices.Contains(args, "-compare") {
					want -= 3 // then sequential loop, fofi, speedup
				}
				if i != want {
					t.Errorf("run(%q) printed the stats line at %d of %d lines, want %d:\n%s", args, i, len(got), want, stdout)
				}
				if stats := got[i]; !strings.Contains(stats, "8 work calls (0 failed)") || !strings.Contains(stats, tc.verdict) {
					t.Errorf("run(%q) stats = %q, want 8 work calls (0 failed) ... %s", args, stats, tc.verdict)
				}
			})
		})
	}
}

// progressLine matches a -progress report.
var progressLine = regexp.MustCompile(`^progress: ([0-9]+)/([0-9]+) done, [0-9]+ failed, [0-9]+ in flight, [0-9]+ consumed, [0-9.]+(ms|s)$`)

func TestProgressLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Four rounds of two 1s producers: 4s, reported every 200ms.
		args := []string{"-quiet", "-progress", "-jobs", "8", "-concurrency", "2", "-work", "1s", "-consume", "0s"}
		code, stdout, stderr := runDemo(t.Context(), args...)
		if code != 0 {
			t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, stderr)
		}
		if strings.Contains(stderr, "\r") || !strings.HasSuffix(stderr, "\n") {
			t.Errorf("run(%q) stderr = %q, want plain lines, as stderr is not a terminal", args, stderr)
		}
		got := lines(stderr)
		if len(got) < 10 {
			t.Errorf("run(%q) reported %d times in 4s, want about every 200ms:\n%s", args, len(got), stderr)
		}
		done := "0"
		for _, l := range got {
			m := progressLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("run(%q) stderr line %q, want progress: N/8 done, ...", args, l)
			}
			if len(m[1]) < len(done) || len(m[1]) == len(done) && m[1] < done {
				t.Errorf("done went from %s down to %s:\n%s", done, m[1], stderr)
			}
			done = m[1]
		}
		if last, want := got[len(got)-1], "progress: 8/8 done, 0 failed, 0 in flight, 8 consumed, 4s"; last != want {
			t.Errorf("last report = %q, want %q", last, want)
		}
		if n := len(lines(stdout)); n != 3 {
			t.Errorf("run(%q) printed %d lines to stdout, want 3: progress goes to stderr", args, n)
		}
	})
}

// terminal is a writer that says it is a terminal when isTerminal asks.
type terminal struct{ strings.Builder }

func (*terminal) Stat() (os.FileInfo, error) { return ttyInfo{}, nil }

type ttyInfo struct{ os.FileInfo } // isTerminal calls only Mode

func (ttyInfo) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice }

// render returns the lines a terminal shows for out: on each line, only
// what follows the last clearLine.
func render(out string) []string {
	var shown []string
	for _, l := range lines(out) {
		if i := strings.LastIndex(l, clearLine); i >= 0 {
			l = l[i+len(clearLine):]
		}
		shown = append(shown, l)
	}
	return shown
}

func TestProgressTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// stdout and stderr are one terminal, as when nothing is
		// redirected: the progress line must stay below the trace.
		const jobs = 4
		args := []string{"-progress", "-jobs", fmt.Sprint(jobs), "-concurrency", "2", "-work", "1s-2s", "-consume", "500ms"}
		var tty terminal
		if code := run(t.Context(), args, &tty, &tty); code != 0 {
			t.Fatalf("run(%q) = %d, want 0; output:\n%q", args, code, tty.String())
		}
		out := tty.String()
		if strings.Count(out, clearLine) < 10 {
			t.Errorf("run(%q) drew %d times, want the line redrawn with %q about every 200ms:\n%q",
				args, strings.Count(out, clearLine), clearLine, out)
		}
		shown := render(out)
		trace := regexp.MustCompile(`^(starting fofi processing|consumer done|fofi processing finished in .*|(producer processing|producer wrote|consumer processing|consumer processed) [0-9]+)$`)
		var reports []string
		for _, l := range shown {
			switch {
			case progressLine.MatchString(l):
				reports = append(reports, l)
			case !trace.MatchString(l):
				t.Errorf("the terminal shows %q, want a trace line or a progress line; output:\n%q", l, out)
			}
		}
		// The trace lines, then the last report, then the summary lines.
		n := len(shown)
		if len(shown) != 1+4*jobs+3 || len(reports) != 1 || shown[n-3] != reports[0] ||
			!strings.HasPrefix(reports[0], fmt.Sprintf("progress: %d/%d done, 0 failed, 0 in flight, %d consumed, ", jobs, jobs, jobs)) {
			t.Errorf("the terminal shows\n%s\nwant the trace and one final progress line before consumer done", strings.Join(shown, "\n"))
		}
	})
}

func TestProgressInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		stdout := &cancelWriter{trigger: "producer processing 2", cancel: func(error) { cancel() }}
		var tty terminal
		code := run(ctx, []string{"-progress", "-work", "1h"}, stdout, &tty)
		// fofi reports once more as the run ends; the calls it cancelled
		// are done, not failed. The message comes on a line of its own.
		want := regexp.MustCompile(`^` + regexp.QuoteMeta(clearLine) + `progress: [0-9]/5 done, 0 failed, 0 in flight, 0 consumed, 0s\ninterrupted after 0s: 0 of 5 jobs consumed\n$`)
		if code != 130 || !want.MatchString(tty.String()) {
			t.Errorf("run(-progress), interrupted = %d, stderr %q; want 130, %v", code, tty.String(), want)
		}
	})
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tc := range []struct {
		name string
		w    io.Writer
		want bool
	}{
		{"file", f, false},
		{"no Stat", new(strings.Builder), false},
		{"character device", new(terminal), true},
	} {
		if got := isTerminal(tc.w); got != tc.want {
			t.Errorf("isTerminal(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStatsInterrupted checks that -stats prints the statistics of an
// interrupted fofi pass, and none when the interruption came before the
// fofi pass started.
func TestStatsInterrupted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		trigger string
		want    string // in the stats line; "" for no stats line
	}{
		{"while producing", []string{"-work", "1h"}, "producer processing 5", "5 work calls (0 failed, 5 cancelled by the stop)"},
		{"while consuming", []string{"-work", "1ms", "-consume", "1h"}, "consumer processing", "Stopped early"},
		{"sequential loop", []string{"-compare", "-work", "1h"}, "producer processing 1", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancelCause(t.Context())
				defer cancel(nil)
				stdout := &cancelWriter{trigger: tc.trigger, cancel: cancel}
				var stderr strings.Builder
				code := run(ctx, append([]string{"-stats"}, tc.args...), stdout, &stderr)
				if code != 130 {
					t.Fatalf("run = %d, stderr %q; want 130", code, stderr.String())
				}
				got := lines(stdout.String())
				i := slices.IndexFunc(got, func(l string) bool { return strings.HasPrefix(l, "stats: ") })
				switch {
				case tc.want == "" && i >= 0:
					t.Errorf("run printed %q, want no stats: the fofi pass never started", got[i])
				case tc.want != "" && i < 0:
					t.Errorf("run printed no stats line:\n%s", stdout.String())
				case tc.want != "" && (i != len(got)-1 || !strings.Contains(got[i], tc.want) || !strings.Contains(got[i], "Stopped early")):
					t.Errorf("run printed the stats line %q as line %d of %d, want the last, with %q and Stopped early",
						got[i], i+1, len(got), tc.want)
				}
			})
		})
	}
}
