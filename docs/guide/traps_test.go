package guide_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fofi-go/fofi/docs/guide"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// traps are run in a child process each, as they crash it or leak.
var traps = map[string]func(){
	"naive/leak": func() {
		_, err := guide.SizesNaive(context.Background(), []string{"bad1", "bad2", "bad3", "bad4"}, fetch)
		fmt.Printf("SizesNaive returned %v; ", err)
		// Every fetch fails; the consumer returned on the first error, so
		// the three other senders have nobody left to receive.
		deadline := time.Now().Add(10 * time.Second)
		for blockedSenders("guide.SizesNaive") < 3 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		fmt.Printf("senders blocked in a channel send: %d\n", blockedSenders("guide.SizesNaive"))
	},
	"naive/panic":   func() { guide.SizesNaive(context.Background(), urls, panicky) },
	"by-hand/panic": func() { guide.SizesByHand(context.Background(), urls, panicky) },
	"fofi/panic": func() {
		defer func() { fmt.Printf("recovered on the caller's goroutine: %v\n", recover()) }()
		guide.SizesFofi(context.Background(), urls, panicky)
	},
}

func panicky(ctx context.Context, url string) (int, error) {
	if url == "c.example" {
		panic("bad input " + url)
	}
	return fetch(ctx, url)
}

// blockedSenders counts the goroutines blocked in a channel send whose
// stack goes through fn.
func blockedSenders(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("[chan send")) && bytes.Contains(g, []byte(fn)) {
			n++
		}
	}
	return n
}

// TestTraps shows the traps of step 2 happening: SizesNaive leaves its
// senders blocked when it returns early, and a panic in fetch kills the
// process under both hand-written versions, while fofi hands it to the
// caller.
func TestTraps(t *testing.T) {
	if name := os.Getenv("GUIDE_TRAP"); name != "" {
		traps[name]() // in the child process
		os.Exit(0)
	}
	tests := []struct {
		trap     string
		wantExit int
		want     []string
	}{
		{"naive/leak", 0, []string{"SizesNaive returned bad", "senders blocked in a channel send: 3\n"}},
		{"naive/panic", 2, []string{"panic: bad input c.example"}},
		{"by-hand/panic", 2, []string{"panic: bad input c.example"}},
		{"fofi/panic", 0, []string{"recovered on the caller's goroutine: fofi: recovered panic: bad input c.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.trap, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTraps$")
			cmd.Env = append(os.Environ(), "GUIDE_TRAP="+tc.trap)
			out, err := cmd.CombinedOutput()
			exit := 0
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tc.wantExit {
				t.Errorf("trap %s: exit status %d, want %d; output:\n%s", tc.trap, exit, tc.wantExit, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("trap %s: output lacks %q:\n%s", tc.trap, want, out)
				}
			}
		})
	}
}

// TestByHandLeavesNothing checks the claim of step 2 that SizesByHand,
// unlike SizesNaive, leaves no goroutine behind when it fails or is
// cancelled (goleak waits a little for goroutines that are exiting).
func TestByHandLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		urls []string
		ctx  func() context.Context
	}{
		{"error", []string{"bad1", "bad2", "bad3", "bad4", "e", "f", "g", "h"}, context.Background},
		{"cancelled", urls, func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := guide.SizesByHand(tc.ctx(), tc.urls, fetch); err == nil {
				t.Fatalf("SizesByHand(...) = _, nil, want an error")
			}
			goleak.VerifyNone(t)
		})
	}
}
