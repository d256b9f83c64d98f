package fofi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidOption is wrapped by every configuration error: a bad option
// value, a nil context, a nil work or consume function, a nil inputs
// iterator or a nil [Limiter]. Such errors are returned before any goroutine
// starts and before any callback runs. Test for it with errors.Is.
var ErrInvalidOption = errors.New("fofi: invalid option")

// optionError is a configuration error. Its message names the option or
// argument and the value, for example
// "fofi: WithConcurrency(0): concurrency must be at least 1", and it wraps
// [ErrInvalidOption].
type optionError struct{ msg string }

func (e *optionError) Error() string { return e.msg }
func (e *optionError) Unwrap() error { return ErrInvalidOption }

func configError(format string, args ...any) error {
	return &optionError{"fofi: " + fmt.Sprintf(format, args...)}
}

// TaskError is the error of one work call: the call for the input at
// position Index (counted from 0 in the order the inputs were pulled) returned
// Err, or the [Limiter] returned Err before that call could start.
//
// Input is the input that call was given, as an In boxed in an any: the
// element of the slice for [Map], the value the iterator yielded for [Run],
// [Stream] and [ForEach], and the value of the (value, nil) pair for
// [RunSeq2], [StreamSeq2] and [ForEachSeq2]. It names an input that has no
// useful index, such as a line of a file or an item of another run's
// results. fofi keeps no other reference to it once the run has returned.
//
// Every entry point wraps every work error in a *TaskError; errors.Is and
// errors.As see through it to Err. An error that a Seq2 iterator yields is
// not a work error and is never wrapped in one (see [RunSeq2]).
type TaskError struct {
	Index int   // position of the input in the input sequence, from 0
	Input any   // the input of the call, an In
	Err   error // the error that work (or the Limiter) returned
}

// Error returns "fofi: input <Index>: <Err>". The chain names fofi once:
// when the text of Err starts with "fofi: " too (the error of a run nested
// in work, or [ErrClosed]), that prefix is left out, so a nested run's
// failure reads "fofi: input 3: input 2: <its error>".
func (e *TaskError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg, _ = strings.CutPrefix(e.Err.Error(), "fofi: ")
	}
	return "fofi: input " + strconv.Itoa(e.Index) + ": " + msg
}

// Unwrap returns Err.
func (e *TaskError) Unwrap() error { return e.Err }

// PanicError is the value that Run, Stream and Map panic with on the caller's
// goroutine when a work call or the inputs iterator panicked on one of the
// goroutines they started. See the package documentation, section Panics.
type PanicError struct {
	Value any    // the value the goroutine panicked with
	Stack []byte // the panicking goroutine's stack, as runtime/debug.Stack formats it
}

// Error returns the panic value followed by the stack of the goroutine that
// panicked, so that a crash report shows where the panic happened.
func (e *PanicError) Error() string {
	return fmt.Sprintf("fofi: recovered panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns Value if it is an error, and nil otherwise, so that
// errors.Is and errors.As see the error a goroutine panicked with.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
