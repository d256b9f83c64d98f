//go:build !linux

package fofi

import "time"

// Elsewhere the runtime's timers are fine already: kqueue and Windows'
// high-resolution timers take timeouts finer than a millisecond.
const fineTimersWork = false

type fineTimer struct{}

func newFineTimer() *fineTimer       { return nil }
func (*fineTimer) set(time.Duration) {}
func (*fineTimer) wait() bool        { return false }
func (*fineTimer) close()            {}
