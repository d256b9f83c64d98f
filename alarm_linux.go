package fofi

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

const fineTimersWork = true

// fineTimer is a Linux timerfd, non-blocking, in an os.File, so that a
// read waits in the runtime's netpoller: the goroutine parks, holding no
// processor and no thread, and the netpoller wakes it as soon as the
// timer expires, to the microsecond, however long its own timeout.
type fineTimer struct {
	f   *os.File
	fd  uintptr
	buf [8]byte
}

// The timerfd system calls' flags and clock (linux/timerfd.h).
const (
	clockMonotonic = 1
	tfdNonblock    = syscall.O_NONBLOCK
	tfdCloexec     = syscall.O_CLOEXEC
)

// newFineTimer makes a fine timer, or returns nil if the system refuses.
func newFineTimer() *fineTimer {
	fd, _, errno := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, tfdNonblock|tfdCloexec, 0)
	if errno != 0 {
		return nil
	}
	return &fineTimer{f: os.NewFile(fd, "fofi-alarm"), fd: fd}
}

// itimerspec is struct itimerspec.
type itimerspec struct {
	interval syscall.Timespec
	value    syscall.Timespec
}

// set arms the timer to expire once, d from now; 0 disarms it.
func (t *fineTimer) set(d time.Duration) {
	spec := itimerspec{value: syscall.NsecToTimespec(int64(d))}
	syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, t.fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
}

// wait blocks until the timer expires, and reports false if the read
// failed.
func (t *fineTimer) wait() bool {
	_, err := t.f.Read(t.buf[:])
	return err == nil
}

// close closes the timer's file.
func (t *fineTimer) close() { t.f.Close() }
