package fofi_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing/iotest"

	"github.com/fofi-go/fofi"
)

// ForEach is for work done only for its effect: there is no result to
// hand over, so there is no consume function to write. Errors, bounds and
// options are Run's.
func ExampleForEach() {
	var sent atomic.Int64
	notify := func(_ context.Context, user string) error {
		sent.Add(1) // a call to a mail server, say
		return nil
	}
	users := slices.Values([]string{"ann", "bob", "cy", "dee"})
	err := fofi.ForEach(context.Background(), users, notify, fofi.WithConcurrency(2))
	fmt.Println(sent.Load(), "sent, err:", err)
	// Output: 4 sent, err: <nil>
}

// lines returns the lines that r reads, as bufio.Scanner splits them, and
// the scanner's error, if any, as a last pair: the iterator that a file
// read line by line makes.
func lines(r io.Reader) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if !yield(sc.Text(), nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield("", err)
		}
	}
}

// RunSeq2 takes inputs that can fail, such as the lines of a file read
// with bufio.Scanner (here a reader whose next read fails after three
// lines). The read error stops the run as it would stop the loop, and is
// returned as it is; with WithOrdered every line before it is processed
// and consumed first.
func ExampleRunSeq2() {
	file := io.MultiReader(
		strings.NewReader("fan out\nfan in\nbounded and ordered\n"),
		iotest.ErrReader(errors.New("disk read error")))
	countWords := func(_ context.Context, line string) (int, error) {
		return len(strings.Fields(line)), nil
	}
	err := fofi.RunSeq2(context.Background(), lines(file), countWords, func(n int) error {
		fmt.Println(n, "words")
		return nil
	}, fofi.WithOrdered())
	fmt.Println("err:", err)
	// Output:
	// 2 words
	// 2 words
	// 3 words
	// err: disk read error
}

// StreamSeq2 takes another run's Stream as its inputs: one run parses
// numbers, the next squares them, and the second loop sees the first
// run's failure as it is, the *TaskError of the first run, after the
// results of the inputs before it.
func ExampleStreamSeq2() {
	ctx := context.Background()
	parse := func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) }
	square := func(_ context.Context, x int) (int, error) { return x * x, nil }

	parsed := fofi.Stream(ctx, slices.Values([]string{"1", "2", "3", "x", "5"}), parse, fofi.WithOrdered())
	for sq, err := range fofi.StreamSeq2(ctx, parsed, square, fofi.WithOrdered()) {
		if err != nil {
			fmt.Println("error:", err)
			break
		}
		fmt.Println(sq)
	}
	// Output:
	// 1
	// 4
	// 9
	// error: fofi: input 3: strconv.Atoi: parsing "x": invalid syntax
}

// ForEachSeq2 is ForEach over inputs that can fail. With
// WithContinueOnError, neither a failed call nor an input error stops the
// run: both are returned, joined in input order, and every other input is
// processed.
func ExampleForEachSeq2() {
	input := strings.NewReader("a.txt\nb.txt\nlocked.txt\nc.txt\n")
	var removed atomic.Int64
	remove := func(_ context.Context, name string) error {
		if name == "locked.txt" {
			return errors.New("permission denied")
		}
		removed.Add(1)
		return nil
	}
	err := fofi.ForEachSeq2(context.Background(), lines(input), remove, fofi.WithContinueOnError())
	fmt.Println(removed.Load(), "removed")
	fmt.Println(err)
	// Output:
	// 3 removed
	// fofi: input 2: permission denied
}

// TaskError.Input names the input whose call failed, which is what a
// streamed input, with no useful index, is known by.
func ExampleTaskError_input() {
	words := slices.Values([]string{"fan", "out", "", "in"})
	check := func(_ context.Context, w string) error {
		if w == "" {
			return errors.New("empty word")
		}
		return nil
	}
	err := fofi.ForEach(context.Background(), words, check)
	var te *fofi.TaskError
	if errors.As(err, &te) {
		fmt.Printf("input %d (%q): %v\n", te.Index, te.Input, te.Err)
	}
	// Output: input 2 (""): empty word
}

// With WithOrdered, a run that fails stops where the loop would have
// stopped: every input before the first failing one is called and its
// result consumed, in order, and the error is that input's.
func ExampleWithOrdered_failure() {
	half := func(_ context.Context, x int) (int, error) {
		if x%2 != 0 {
			return 0, fmt.Errorf("%d is odd", x)
		}
		return x / 2, nil
	}
	err := fofi.Run(context.Background(), slices.Values([]int{2, 4, 6, 7, 8, 9}), half,
		func(h int) error {
			fmt.Println(h)
			return nil
		}, fofi.WithOrdered(), fofi.WithConcurrency(4))
	fmt.Println("err:", err)
	// Output:
	// 1
	// 2
	// 3
	// err: fofi: input 3: 7 is odd
}
