package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/fofi-go/fofi"
)

// progressEvery is how often -progress reports: often enough to look live,
// seldom enough that the report costs the consumer nothing to speak of
// (fofi calls the report on the consumer's goroutine).
const progressEvery = 200 * time.Millisecond

// clearLine moves the cursor to the start of the line and erases the line:
// carriage return, then the ANSI "erase in line" sequence.
const clearLine = "\r\033[K"

// tracer writes whole lines of the trace to w and, with -progress, the
// progress reports to status. Producers trace from several goroutines and
// fofi reports progress on the consumer's; the mutex keeps their lines from
// interleaving.
type tracer struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool // drop the per-job lines

	status io.Writer // where progress reports go: stderr
	// redraw is set when status is a terminal: the reports are then one
	// line, redrawn in place and kept below the trace.
	redraw bool
	last   string // the last progress report
	shown  bool   // with redraw, last is on screen, below the trace
}

// job writes a per-job line, unless -quiet.
func (t *tracer) job(format string, args ...any) {
	if !t.quiet {
		t.line(format, args...)
	}
}

// line writes a summary line.
func (t *tracer) line(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shown {
		// stdout and stderr are usually the same terminal: move the
		// progress line out of the way of the trace line, then draw it
		// again below. Were stdout redirected, this only redraws the
		// progress line on stderr.
		io.WriteString(t.status, clearLine)
		defer io.WriteString(t.status, t.last) // before the deferred Unlock
	}
	fmt.Fprintf(t.w, format+"\n", args...)
}

// progress writes a progress report of a run of total jobs, of which
// consumed are consumed: with redraw, over the previous report; otherwise as
// a line of its own, which suits a log file or a pipe. A report that says
// what the previous one said is dropped: fofi's final report often repeats
// the last periodic one. p.Done counts work calls, so a run held back by its
// consumer shows all its jobs done while the consumed count still grows.
func (t *tracer) progress(p fofi.Progress, total, consumed int) {
	line := fmt.Sprintf("progress: %d/%d done, %d failed, %d in flight, %d consumed, %v",
		p.Done, total, p.Failed, p.InFlight, consumed, p.Elapsed.Round(100*time.Millisecond))
	t.mu.Lock()
	defer t.mu.Unlock()
	if line == t.last {
		return
	}
	t.last = line
	if !t.redraw {
		fmt.Fprintln(t.status, line)
		return
	}
	io.WriteString(t.status, clearLine+line)
	t.shown = true
}

// endProgress ends a redrawn progress line with a newline, so that the last
// report stays on screen above whatever is written next. It does nothing
// when no line is drawn.
func (t *tracer) endProgress() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.shown {
		io.WriteString(t.status, "\n")
		t.shown = false
	}
}

// isTerminal reports whether w is a terminal, that is, a character device,
// as os.Stderr is when nothing redirects it. It asks any writer with a Stat
// method, so a test can pass a writer that claims to be a terminal. /dev/null
// is a character device too; redrawing lines there does no harm.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
