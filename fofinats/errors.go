package fofinats

import (
	"errors"
	"fmt"

	"github.com/fofi-go/fofi"
)

// ErrMaxDeliveries is wrapped by the error of a call whose input was
// delivered to workers [WithMaxDeliver] times without an answer: each worker
// that took it died, lost its connection or shut down before it finished.
// The server has given up on the input; a poison input that crashes its
// workers ends this way instead of killing them all in turn. Test for it
// with errors.Is; inside a fofi run it arrives in a *fofi.TaskError naming
// the input.
var ErrMaxDeliveries = errors.New("fofinats: input delivered the maximum number of times without an answer")

// ErrClosed is returned by calls on a [Client] that has been closed, and by
// calls in flight when it closes.
var ErrClosed = errors.New("fofinats: client closed")

// ErrUnavailable is wrapped by the error of a call that waited for the
// server longer than [WithServerTimeout]: its input was not acknowledged in
// time, or the connection stayed down while the call waited for its result;
// and of the calls waiting when a server restart lost the results in flight
// (they are kept in memory).
var ErrUnavailable = errors.New("fofinats: server unavailable")

// RemoteError is the error a work function returned on a worker, carried
// back to the caller as text: the error's type and identity do not cross
// the network, so errors.Is and errors.As see a *RemoteError, not the
// original. Inside a fofi run it arrives in a *fofi.TaskError.
type RemoteError struct {
	Name   string // the handler
	Worker string // the worker that ran the call (see [Serve])
	Msg    string // the error's text, err.Error() on the worker
}

// Error returns "fofinats: <Name> on <Worker>: <Msg>".
func (e *RemoteError) Error() string {
	return fmt.Sprintf("fofinats: %s on %s: %s", e.Name, e.Worker, e.Msg)
}

// RemotePanicError reports a panic in a work function on a worker. The
// worker recovered it, answered the call with it and went on serving: one
// bad input does not take a worker down, and the process that made the call
// gets an error, not a panic, since the panicking goroutine is on another
// machine.
type RemotePanicError struct {
	Name   string // the handler
	Worker string // the worker that ran the call
	Value  string // the panic value, formatted with %v
	Stack  []byte // the panicking goroutine's stack on the worker
}

// Error returns the panic value and the worker's stack.
func (e *RemotePanicError) Error() string {
	return fmt.Sprintf("fofinats: %s on %s: panic: %s\n\n%s", e.Name, e.Worker, e.Value, e.Stack)
}

// invalidOption is a configuration error: its message names the option or
// argument and the value, and it wraps fofi.ErrInvalidOption so that one
// errors.Is test covers fofi's options and these.
type invalidOption struct{ msg string }

func (e *invalidOption) Error() string { return e.msg }
func (e *invalidOption) Unwrap() error { return fofi.ErrInvalidOption }

func optionError(format string, args ...any) error {
	return &invalidOption{"fofinats: " + fmt.Sprintf(format, args...)}
}
